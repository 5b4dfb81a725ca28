"""Presets come from the data and the machine; the memory estimate says when a job will not fit and why."""
import dataclasses

import pytest

from core.config import JobConfig
from core.hardware import Hardware
from core.memory import ModelShape, estimate_memory, out_of_memory_advice
from core.presets import RECIPES, choose_max_length, estimated_steps, fill_presets

CPU = Hardware("cpu", "CPU", 2, 24.0, 20.0, None, False)
SMALL_CPU = dataclasses.replace(CPU, available_memory_gb=2.0)
GPU = Hardware("cuda", "H100", 16, 128.0, 120.0, 80.0, True)


def test_every_task_and_strategy_has_a_recipe():
    from core.strategies import STRATEGIES_BY_TASK
    for task, strategies in STRATEGIES_BY_TASK.items():
        for strategy in strategies:
            assert (task, strategy) in RECIPES


def test_presets_fill_only_what_the_user_left_empty():
    config = JobConfig(task="chat", strategy="lora")
    config.train.learning_rate = 5e-4
    filled = fill_presets(config, n_train=200, hardware=CPU, token_lengths={"p99": 150, "max": 400})
    t = filled.train
    assert t.learning_rate == 5e-4  # the user's value stays
    assert t.batch_size == 4 and t.lora_r == 8 and t.lora_alpha == 16 and t.epochs == 2.0
    assert t.max_length == 160  # p99 rounded up to 32, not the longest row
    assert t.threads == CPU.train_threads
    assert 1 <= t.eval_every <= estimated_steps(t, 200)
    assert config.train.batch_size is None  # the input is not modified


def test_presets_scale_with_the_preset_and_the_machine():
    config = JobConfig(task="text-classification", strategy="lora")
    quick = fill_presets(dataclasses.replace(config, train=dataclasses.replace(config.train, preset="quick")),
                         300, CPU)
    thorough = fill_presets(dataclasses.replace(config, train=dataclasses.replace(config.train, preset="thorough")),
                            300, CPU)
    assert quick.train.epochs < thorough.train.epochs
    assert fill_presets(config, 300, GPU).train.batch_size > fill_presets(config, 300, CPU).train.batch_size
    assert fill_presets(config, 3, CPU).train.batch_size == 3  # never larger than the data


def test_max_length_is_capped_per_device():
    assert choose_max_length({"p99": 5000}, "cpu", "chat") == 512
    assert choose_max_length({"p99": 5000}, "cuda", "chat") == 2048
    assert choose_max_length(None, "cpu", "chat") == 256
    assert choose_max_length({"p99": 10}, "cpu", "text-classification") == 64


def test_a_small_model_fits_and_a_full_fine_tune_of_a_big_one_does_not():
    small = ModelShape(135, 576, 30, 49152)
    fits = estimate_memory(small, "lora", "chat", 4, 256, CPU)
    assert fits.fits and 2 < fits.total_gb < 6  # measured: 2.5 GB peak RSS at ~100 tokens a row
    big = ModelShape(1700, 2048, 24, 49152)
    full = estimate_memory(big, "full", "chat", 8, 1024, SMALL_CPU)
    assert not full.fits
    assert "lower the batch size to 4" in full.advice and "use LoRA instead" in full.advice
    assert "does NOT fit" in full.describe()
    # QLoRA stores the projections in about an eighth of the fp32 memory; the vocabulary matrix stays fp32
    # (peft's prepare_model_for_kbit_training), a sixth of this model's weights.
    qlora = estimate_memory(big, "qlora", "chat", 1, 256, CPU).breakdown["weights"]
    lora = estimate_memory(big, "lora", "chat", 1, 256, CPU).breakdown["weights"]
    vocabulary = 49152 * 2048 * 4 / 2**30
    assert qlora == pytest.approx(vocabulary + (lora - vocabulary) * 0.56 / 4, rel=0.01) and qlora < lora / 4
    untied = estimate_memory(ModelShape(1700, 2048, 24, 49152, tied=False), "qlora", "chat", 1, 256, CPU)
    assert untied.breakdown["weights"] == pytest.approx(qlora + vocabulary * (1 - 0.56 / 4), rel=0.01)


def test_qlora_on_a_small_model_on_a_cpu_says_it_does_not_pay():
    estimate = estimate_memory(ModelShape(135, 576, 30, 49152), "qlora", "chat", 4, 256, CPU)
    assert "slower than LoRA" in estimate.advice


def test_the_out_of_memory_message_names_the_settings_to_lower():
    message = out_of_memory_advice(16, 1024)
    assert "batch size 16 -> 8" in message and "max length 1024 -> 512" in message


def test_compile_is_chosen_for_long_cpu_chat_runs_and_left_to_the_kernel_cache_in_between(monkeypatch):
    import dataclasses

    from core import hardware as hw
    from core.config import JobConfig
    from core.presets import COMPILE_MIN_MICRO_BATCHES_COLD, COMPILE_MIN_MICRO_BATCHES_WARM, fill_presets

    cpu = dataclasses.replace(hw.detect_hardware(), device="cpu")
    monkeypatch.setattr(hw, "cxx_compiler", lambda: "/usr/bin/g++")
    chat = JobConfig(task="chat", strategy="lora")
    # the bundled example (144 rows: 36 steps x 2 micro-batches): compiled when the kernels are cached
    assert fill_presets(chat, 144, cpu).train.compile is None
    assert COMPILE_MIN_MICRO_BATCHES_WARM > 20 and fill_presets(chat, 40, cpu).train.compile is False  # 20: too short
    rows = COMPILE_MIN_MICRO_BATCHES_COLD * 2  # batch 4, accumulation 2, 2 epochs: pays even a cold compile
    assert fill_presets(chat, rows, cpu).train.compile is True
    assert fill_presets(chat.with_overrides(["train.compile=false"]), rows, cpu).train.compile is False
    assert fill_presets(chat.with_overrides(["train.compile=true"]), 8, cpu).train.compile is True
    assert fill_presets(JobConfig(task="text-classification", strategy="lora"), rows, cpu).train.compile is False
    monkeypatch.setattr(hw, "cxx_compiler", lambda: None)  # no compiler (a slim Docker image): never
    assert fill_presets(chat, rows, cpu).train.compile is False
    gpu = dataclasses.replace(cpu, device="cuda")
    assert fill_presets(chat, rows, gpu).train.compile is False


def test_precision_is_bf16_where_the_cpu_multiplies_bf16_and_the_job_is_chat_lora():
    import dataclasses

    from core.config import JobConfig
    from core.presets import bf16_weights, choose_precision, fill_presets

    units = dataclasses.replace(CPU, bf16=True)
    chat = JobConfig(task="chat", strategy="lora")
    assert fill_presets(chat, 144, units).train.precision == "bf16"
    assert fill_presets(chat, 144, CPU).train.precision == "fp32"  # no bf16 units: emulated bf16 is slower
    assert choose_precision(JobConfig(task="text-classification", strategy="lora"), units) == "fp32"
    assert choose_precision(JobConfig(task="chat", strategy="full"), units) == "fp32"
    assert choose_precision(JobConfig(task="text-classification", strategy="full"), GPU) == "bf16"
    assert choose_precision(chat.with_overrides(["train.precision=fp32"]), units) == "fp32"
    assert choose_precision(chat, None) == "fp32"
    assert bf16_weights(chat, units) and not bf16_weights(chat, CPU)
    full_bf16 = JobConfig(task="chat", strategy="full").with_overrides(["train.precision=bf16"])
    assert not bf16_weights(full_bf16, units)  # a full fine-tune on a CPU keeps fp32 weights for its optimiser
    assert bf16_weights(full_bf16, GPU)
    problems = JobConfig().with_overrides(["train.precision=fp16"]).problems()
    assert any("train.precision is 'fp16'" in p for p in problems)


def test_cpu_bf16_units_are_read_from_the_cpu_flags(tmp_path):
    from core.hardware import cpu_has_bf16_units

    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    skylake = tmp_path / "skylake"
    skylake.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    assert cpu_has_bf16_units(str(zen4)) and not cpu_has_bf16_units(str(skylake))
    assert not cpu_has_bf16_units(str(tmp_path / "missing"))


def test_memory_estimate_halves_the_weights_in_bf16():
    shape = ModelShape(135, 576, 30, 49152)
    fp32 = estimate_memory(shape, "lora", "chat", 4, 256, CPU).breakdown["weights"]
    assert estimate_memory(shape, "lora", "chat", 4, 256, CPU, bf16_weights=True).breakdown["weights"] == \
        pytest.approx(fp32 / 2, rel=0.01)


def test_the_gpu_catalog_entries_say_what_the_estimate_says_they_need():
    """Each 3B-9B entry names the GPU memory QLoRA (and LoRA, where it says) fits in; the estimate agrees."""
    import re

    from core.catalog import CATALOG
    from core.memory import CATALOG_SHAPES, gpu_needs

    big = [e for e in CATALOG if e.task == "chat" and e.params_m > 2000]
    assert {e.key for e in big} >= {"qwen2.5-3b-instruct", "qwen2.5-7b-instruct", "llama-3.1-8b-instruct",
                                    "mistral-7b-instruct", "gemma-2-2b-it", "gemma-2-9b-it"}
    for entry in big:
        needs = gpu_needs(CATALOG_SHAPES[entry.key])
        assert needs["qlora"] < needs["lora"] < needs["full"]
        said = re.findall(r"(QLoRA|LoRA)(?: or LoRA)? on a(?: GPU with)? (?:\d+-)?(\d+) GB", entry.description)
        for strategy, gb in said:
            assert needs[strategy.lower()] <= float(gb), (entry.key, strategy, needs)
    assert get_entry_gated("llama-3.1-8b-instruct") and get_entry_gated("gemma-2-9b-it")
    assert not get_entry_gated("qwen2.5-7b-instruct")


def get_entry_gated(key: str) -> bool:
    from core.catalog import get_entry

    return get_entry(key).gated


def test_when_a_job_does_not_fit_the_estimate_tries_checkpointing_then_8bit_states():
    from core.memory import CATALOG_SHAPES

    seven_b = CATALOG_SHAPES["qwen2.5-7b-instruct"]
    gpu24 = dataclasses.replace(GPU, gpu_memory_gb=24.0)
    qlora = estimate_memory(seven_b, "qlora", "chat", 1, 1024, gpu24, bf16_weights=True)
    assert qlora.fits and not qlora.gradient_checkpointing  # 4 bits: room for one row's activations
    lora = estimate_memory(seven_b, "lora", "chat", 4, 1024, gpu24, bf16_weights=True)
    assert lora.fits and lora.gradient_checkpointing and "checkpointing will be on" in lora.advice
    gpu64 = dataclasses.replace(GPU, gpu_memory_gb=64.0)
    full = estimate_memory(seven_b, "full", "chat", 4, 1024, gpu64, bf16_weights=True)
    assert full.fits and full.gradient_checkpointing and full.optimizer == "paged_adamw_8bit"
    assert "8-bit paged states" in full.advice
    too_big = estimate_memory(seven_b, "full", "chat", 4, 1024, gpu24, bf16_weights=True)
    assert not too_big.fits and "--gpus N" in too_big.advice and too_big.optimizer == "adamw_torch"


def test_an_image_job_is_estimated_at_the_input_side_it_will_train_at(home, tmp_path):
    from core.plan import image_side
    from core.memory import CATALOG_SHAPES, IMAGE_TOKENS, estimate_job
    from core.models import resolve_model
    from tests.test_classify_support import image_data

    data = image_data(tmp_path)  # 24 px images: the recipes feed them at 64 px, not EfficientNet's 224
    config = fill_presets(JobConfig(task="image-classification", model="efficientnet-lite0", strategy="full"),
                          len(data.train), CPU)
    resolved = resolve_model("efficientnet-lite0", home, task="image-classification")
    side = image_side(config, data, resolved)
    assert side == 64
    at_side = estimate_job(config, resolved, CPU, image_side=side).breakdown["activations"]
    at_native = estimate_job(config, resolved, CPU).breakdown["activations"]
    cnn = CATALOG_SHAPES["efficientnet-lite0"]  # a CNN's saved maps scale with the input's area
    per_image = [cnn.pixel_bytes * s * s + cnn.image_bytes for s in (64, 224)]
    assert at_side == pytest.approx(at_native * per_image[0] / per_image[1], rel=0.05)
    assert 0.08 < at_side < 0.2  # GB: batch 16 at 64 px, ~8.5 MB an image (saved-tensor hooks)
    vit = ModelShape(86, 768, 12, 0)  # a vision transformer's tokens scale the same way
    tokens = [estimate_memory(vit, "full", "image-classification", 8, 0, CPU, image_side=s).breakdown["activations"]
              for s in (112, 224)]
    assert tokens[0] == pytest.approx(tokens[1] * (1 + (IMAGE_TOKENS - 1) / 4) / IMAGE_TOKENS, rel=0.02)
    text = JobConfig(task="text-classification", model="efficientnet-lite0", strategy="full")
    assert image_side(text, data, resolved) is None  # only image jobs have an input side
