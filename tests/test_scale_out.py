"""Scale-out is real: a saved config.yaml trains under `accelerate launch` with two processes (gloo on CPU).

accelerate 1.15 starts only one process for `--cpu --num_processes 2` (its multi-CPU path needs mpirun), so the
test launches with `--multi_gpu --num_processes 2` (torchrun underneath); with no GPU the studio tells
accelerate to use the CPU and the ranks talk over gloo.
"""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from core.config import JobConfig
from core.runs import list_runs
from tests.conftest import REPO
from tests.test_classify_support import text_rows, tiny_bert


@pytest.mark.slow
def test_a_saved_config_trains_one_model_on_two_ranks(tmp_path):
    model = tiny_bert(tmp_path / "tiny-bert")
    rows = text_rows(64, 3)
    csv = tmp_path / "topics.csv"
    names = ["sport", "weather", "food"]
    pd.DataFrame({"text": rows["text"], "topic": [names[i] for i in rows["label"]]}).to_csv(csv, index=False)
    config = JobConfig(task="text-classification", model=str(model), strategy="full", name="ddp")
    config.data.path = str(csv)
    config.train.max_steps = 4
    config.train.batch_size = 4
    config.train.learning_rate = 1e-3
    config.train.max_length = 32
    config.train.threads = 1
    config_path = config.save(tmp_path / "config.yaml")
    home = tmp_path / "home"

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "core.cli", "train", str(config_path), "--home", str(home)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MASTER_PORT": "29533"}
    result = subprocess.run(launch, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    runs = list_runs(home / "runs")
    assert len(runs) == 1, "both ranks must share one run folder"
    run = runs[0]
    assert result.stdout.strip().splitlines()[-1] == str(run.path)
    assert run.read_status()["status"] == "completed"
    ranks = [json.loads((run.path / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    # DDP keeps one model: the two ranks end with the same weights.
    assert ranks[0]["trainable_checksum"] == pytest.approx(ranks[1]["trainable_checksum"], rel=1e-6)
    assert (run.model / "model.safetensors").is_file() or (run.model / "config.json").is_file()
    assert (run.eval).is_file()


# --- studio train CONFIG --gpus N: the accelerate config and the launch line (core/launch.py) -------------------
def _hardware(device="cuda", gpu_gb=24.0):
    from core.hardware import Hardware

    return Hardware(device, "test", 16, 128.0, 100.0, gpu_gb if device == "cuda" else None, True)


def test_a_job_that_fits_one_gpu_runs_a_copy_on_each_and_one_that_does_not_is_sharded():
    from core.launch import plan_scale_out
    from core.memory import CATALOG_SHAPES

    seven_b = CATALOG_SHAPES["qwen2.5-7b-instruct"]
    lora = JobConfig(task="chat", strategy="lora", model="qwen2.5-7b-instruct")
    ddp = plan_scale_out(lora, 4, _hardware(gpu_gb=80.0), seven_b)
    assert ddp.processes == 4 and not ddp.sharded and "DDP" in ddp.reason
    full = JobConfig(task="chat", strategy="full", model="qwen2.5-7b-instruct")
    fsdp = plan_scale_out(full, 4, _hardware(gpu_gb=40.0), seven_b)
    assert fsdp.sharded and "FSDP" in fsdp.reason
    cpu = plan_scale_out(lora, 2, _hardware("cpu"), seven_b)
    assert cpu.on_cpu and not cpu.sharded and "gloo" in cpu.reason
    with pytest.raises(ValueError):
        plan_scale_out(lora, 0, _hardware(), seven_b)


def test_the_fsdp_config_follows_the_peft_and_bitsandbytes_recipes(tmp_path):
    import yaml

    from core.launch import ScaleOut, accelerate_config, decoder_layer_class, write_accelerate_config
    from tests.test_chat_support import tiny_model_folder

    sharded = ScaleOut(4, sharded=True, reason="")
    qlora = accelerate_config(sharded, JobConfig(task="chat", strategy="qlora"), "LlamaDecoderLayer")
    assert qlora["distributed_type"] == "FSDP" and qlora["num_processes"] == 4 and qlora["mixed_precision"] == "bf16"
    fsdp = qlora["fsdp_config"]
    assert fsdp["fsdp_use_orig_params"] is False and fsdp["fsdp_offload_params"] is True
    assert fsdp["fsdp_cpu_ram_efficient_loading"] and fsdp["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    full = accelerate_config(sharded, JobConfig(task="chat", strategy="full"))["fsdp_config"]
    assert full["fsdp_use_orig_params"] is True and full["fsdp_offload_params"] is False
    ddp = accelerate_config(ScaleOut(2, sharded=False, reason="", on_cpu=True), JobConfig())
    assert ddp["distributed_type"] == "MULTI_GPU" and "fsdp_config" not in ddp and ddp["mixed_precision"] == "no"
    path = write_accelerate_config(tmp_path / "a.yaml", qlora)
    assert yaml.safe_load(path.read_text()) == qlora
    assert decoder_layer_class(tiny_model_folder(tmp_path)) == "LlamaDecoderLayer"
    assert decoder_layer_class(tmp_path / "missing") is None


def test_qlora_under_fsdp_stores_its_4bit_weights_in_the_compute_dtype(monkeypatch):
    import torch

    from core.strategies import quantization_config, quantized_device_map

    config = quantization_config(torch.bfloat16, sharded=True)
    assert config.bnb_4bit_compute_dtype == torch.bfloat16 and config.bnb_4bit_quant_storage == torch.bfloat16
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert quantization_config().bnb_4bit_compute_dtype == torch.float32  # the CPU default
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert quantized_device_map(_hardware()) == {"": 3}
    assert quantized_device_map(_hardware(), sharded=True) is None
    assert quantized_device_map(_hardware("cpu")) == "cpu"


@pytest.mark.slow
def test_studio_train_gpus_prints_and_runs_the_launch_line_on_cpu_processes(tmp_path):
    """No GPU here: `--gpus 2` starts two CPU processes over gloo, one run folder, the accelerate config kept."""
    from tests.test_chat_support import conversations, tiny_model_folder

    csv = tmp_path / "chat.csv"
    pairs = [(c[-2]["content"], c[-1]["content"]) for c in conversations(48)]
    pd.DataFrame(pairs, columns=["question", "answer"]).to_csv(csv, index=False)
    config = JobConfig(task="chat", model=str(tiny_model_folder(tmp_path)), strategy="lora", name="gpus")
    config.data.path = str(csv)
    config.train.max_steps = 3
    config.train.batch_size = 2
    config.train.threads = 1
    config.train.precision = "fp32"
    config_path = config.save(tmp_path / "config.yaml")
    home = tmp_path / "home"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MASTER_PORT": "29541"}
    result = subprocess.run([sys.executable, "-m", "core.cli", "train", str(config_path), "--gpus", "2", "--home",
                             str(home)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any("accelerate.commands.launch" in line and "--config_file" in line for line in lines)
    runs = list_runs(home / "runs")
    assert len(runs) == 1 and runs[0].read_status()["status"] == "completed"
    kept = runs[0].path / "accelerate.yaml"
    assert kept.is_file() and "num_processes: 2" in kept.read_text()
    ranks = [json.loads((runs[0].path / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["trainable_checksum"] == pytest.approx(ranks[1]["trainable_checksum"], rel=1e-6)
