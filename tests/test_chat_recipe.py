"""ChatRecipe end to end on a tiny Llama: lora, full and qlora train, save, reload and evaluate; Stop and resume."""
from __future__ import annotations

import json

import pytest
import torch

from core.engine.chat import ChatRecipe
from tests.test_chat_support import context

torch.set_num_threads(1)


def _losses(sink) -> list[float]:
    return [e["loss"] for e in sink.of_type("train") if "loss" in e]


def _train(tmp_path, strategy, **train):
    ctx, sink = context(tmp_path, strategy, **train)
    recipe = ChatRecipe(ctx)
    recipe.setup()
    outcome = recipe.train()
    recipe.save()
    return ctx, sink, recipe, outcome


@pytest.mark.parametrize("strategy,lr,expected", [
    ("lora", 1e-2, ["adapter_config.json", "adapter_model.safetensors"]),
    ("full", 3e-3, ["config.json", "model.safetensors"]),
    ("qlora", 1e-2, ["adapter_config.json", "adapter_model.safetensors"]),
])
def test_recipe_trains_saves_and_evaluates(tmp_path, strategy, lr, expected):
    ctx, sink, recipe, outcome = _train(tmp_path, strategy, learning_rate=lr)
    losses = _losses(sink)
    assert outcome.global_step == 36 and not outcome.stopped
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3
    assert sink.of_type("eval") and all("eval_loss" in e for e in sink.of_type("eval"))
    assert any(e.get("tokens_per_s") for e in sink.of_type("train"))
    files = {p.name for p in ctx.run.model.iterdir()}
    assert set(expected) | {"tokenizer.json", "tokenizer_config.json"} <= files
    report = recipe.evaluate()
    json.dumps(report)  # eval.json must be plain JSON
    assert report["tuned"]["eval_loss"] < report["base"]["eval_loss"]
    assert report["change"]["eval_loss"] < 0
    assert 3 <= len(report["examples"]) <= 5
    assert {"prompt", "reference", "base", "tuned"} <= set(report["examples"][0])
    recipe.cleanup()
    assert recipe.model is None


def test_load_trained_reproduces_the_tuned_loss(tmp_path):
    ctx, _, recipe, _ = _train(tmp_path, "lora", learning_rate=1e-2, epochs=1.0)
    before = recipe.evaluate()["tuned"]["eval_loss"]
    recipe.cleanup()
    again = ChatRecipe(ctx)
    again.load_trained()
    assert again.evaluate()["tuned"]["eval_loss"] == pytest.approx(before, rel=1e-4)


class _StopAfter:
    """A sink that presses Stop once step ``n`` is logged."""

    def __init__(self, stop, n):
        self.stop, self.n = stop, n

    def log(self, event):
        if event.get("type") == "train" and event.get("step", 0) >= self.n:
            self.stop.set()

    def close(self):
        pass


def test_stop_ends_within_one_step_and_keeps_the_model(tmp_path):
    ctx, sink = context(tmp_path, "lora")
    ctx.reporter.sinks.append(_StopAfter(ctx.stop, 2))
    recipe = ChatRecipe(ctx)
    recipe.setup()
    outcome = recipe.train()
    recipe.save()
    assert outcome.stopped and outcome.global_step <= 3
    assert (ctx.run.model / "adapter_model.safetensors").is_file()
    assert ctx.run.last_checkpoint() is not None  # a stop keeps a checkpoint to resume from


def test_resume_continues_the_step_count(tmp_path):
    ctx, sink = context(tmp_path, "lora", max_steps=8, save_every=100)
    ctx.reporter.sinks.append(_StopAfter(ctx.stop, 4))
    first = ChatRecipe(ctx)
    first.setup()
    stopped_at = first.train().global_step
    assert stopped_at <= 5  # the stop seen in step 4's log ends step 5 at the latest
    checkpoint = ctx.run.last_checkpoint()
    assert checkpoint.name == f"checkpoint-{stopped_at}"
    first.cleanup()

    ctx.stop.clear()
    ctx.reporter.sinks.pop()
    ctx.resume_from = checkpoint
    sink.events.clear()
    second = ChatRecipe(ctx)
    second.setup()
    outcome = second.train()
    steps = [e["step"] for e in sink.of_type("train") if "loss" in e]
    assert outcome.global_step == 8 and steps[0] == stopped_at + 1


@pytest.mark.slow
def test_a_compiled_run_trains_saves_and_evaluates(tmp_path):
    """train.compile: the decoder layers are compiled after the first step (inductor on the CPU); then the same
    save/evaluate as eager, the evaluation running the layers eagerly (no second compilation for no-grad)."""
    from core.hardware import cxx_compiler

    if cxx_compiler() is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    from torch._dynamo.utils import counters

    counters.clear()
    ctx, sink, recipe, outcome = _train(tmp_path, "lora", learning_rate=1e-2, epochs=1.0, compile=True)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1  # dynamo really traced the layers (not eager under a flag)
    assert any("Compiling the model's 2 layers" in e["message"] for e in sink.of_type("log"))
    losses = _losses(sink)
    assert outcome.global_step == 12 and losses[-1] < losses[0]
    assert (ctx.run.model / "adapter_model.safetensors").is_file()
    report = recipe.evaluate()
    assert report["tuned"]["eval_loss"] < report["base"]["eval_loss"]
    assert counters["stats"]["unique_graphs"] == graphs  # evaluation and generation ran eagerly
    recipe.cleanup()


def test_a_bf16_lora_run_keeps_fp32_adapters_and_scores_in_fp32(tmp_path):
    """train.precision=bf16 on a CPU: the frozen base in bf16, adapters (and their checkpoint) in fp32, autocast;
    the comparison reloads the base in fp32, as the playground and the export do."""
    from safetensors.torch import load_file

    ctx, sink, recipe, outcome = _train(tmp_path, "lora", learning_rate=1e-2, epochs=1.0, precision="bf16")
    frozen = {p.dtype for p in recipe.model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in recipe.model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}
    assert recipe.trainer.args.bf16
    losses = _losses(sink)
    assert outcome.global_step == 12 and losses[-1] < losses[0]
    saved = load_file(ctx.run.model / "adapter_model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.float32}
    report = recipe.evaluate()
    assert {p.dtype for p in recipe.model.parameters()} == {torch.float32}
    assert report["tuned"]["eval_loss"] < report["base"]["eval_loss"]
    again = ChatRecipe(ctx)
    again.load_trained()  # a later re-evaluation scores the same fp32 model
    assert again.evaluate()["tuned"]["eval_loss"] == pytest.approx(report["tuned"]["eval_loss"], rel=1e-4)
    recipe.cleanup()


def test_a_4bit_model_on_the_cpu_keeps_no_weight_in_the_checkpoint_file(tmp_path):
    """The weights QLoRA leaves unquantised (embeddings, norms) are the model's own copies, so the checkpoint file's
    memory mapping, with every page quantisation read, can go once loading ends."""
    import re

    from core.models import load_causal_lm
    from core.strategies import quantization_config
    from tests.test_chat_support import resolved, tiny_model_folder

    folder = tiny_model_folder(tmp_path)
    model = load_causal_lm(resolved(folder), quantization_config=quantization_config(torch.float32),
                           device_map="cpu")
    files = [str(p) for p in folder.glob("*.safetensors")]
    ranges = []
    for line in open("/proc/self/maps", encoding="utf-8"):
        if any(line.rstrip().endswith(f) for f in files):
            low, high = (int(x, 16) for x in re.match(r"([0-9a-f]+)-([0-9a-f]+)", line).groups())
            ranges.append((low, high))
    tensors = [*model.parameters(), *model.buffers()]
    assert any(type(t).__name__ == "Params4bit" for t in tensors)  # it is a 4-bit model
    inside = [t.shape for t in tensors if any(low <= t.untyped_storage().data_ptr() < high for low, high in ranges)]
    assert not inside, f"weights still read from the checkpoint file: {inside}"


def test_general_replay_trains_the_base_answers_beside_the_rows_and_keeps_them_for_the_next_job(tmp_path, monkeypatch):
    from core.engine.chat import replay

    # The tiny random model answers with whitespace only: nothing is replayed, and the log says why.
    ctx, sink = context(tmp_path / "silent", "lora", replay=0.25, max_steps=2)
    recipe = ChatRecipe(ctx)
    recipe.setup()
    n_train = len(ctx.data.train)
    assert recipe.replayed == [] and len(recipe.train_rows) == n_train and not ctx.run.replay.exists()
    assert any("gave no answer to the 12 everyday instructions" in e.get("message", "") for e in sink.events)
    assert [e["current"] for e in sink.events if e["type"] == "phase" and e.get("total") == 12] == [12]  # a batch
    recipe.cleanup()

    calls = []

    def answering(model, tokenizer, questions, max_new_tokens, batch, progress):
        calls.append(list(questions))
        progress(len(questions), len(questions))
        return [replay.Answer(f"Here is a careful answer about {q.lower()}", finished=True) for q in questions]

    monkeypatch.setattr(replay, "generate_answers", answering)
    ctx, sink = context(tmp_path / "answering", "lora", replay=0.25, max_steps=2)
    recipe = ChatRecipe(ctx)
    recipe.setup()
    count = replay.replay_count(0.25, n_train, len(replay.load_prompts()))
    assert count == 12 and len(recipe.replayed) == count and len(calls[0]) == count
    assert len(recipe.train_rows) == n_train + count
    assert len(recipe.val_rows) == len(ctx.data.validation)  # the validation split stays the user's rows
    cached = list((ctx.home.cache / "replay").glob("*.json"))
    assert len(cached) == 1 and len(json.loads(cached[0].read_text())) == count
    assert any("General replay: 12 answers" in e.get("message", "") for e in sink.events)
    assert any(e["type"] == "phase" and e.get("current") == 12 and e.get("total") == 12 for e in sink.events)
    kept = [json.loads(line)["messages"] for line in ctx.run.replay.read_text().splitlines()]
    assert len(kept) == count and kept[0][1]["content"].startswith("Here is a careful answer")  # in the run folder
    from core.engine.model_card import model_card
    assert "General replay: 12 answers of the base model" in model_card(ctx.run, ctx.config, {}, {})
    assert recipe.train().extra["replay_rows"] == count
    recipe.cleanup()

    again_ctx, _ = context(tmp_path / "answering", "lora", replay=0.25, max_steps=2)  # same home, same base
    again = ChatRecipe(again_ctx)
    again.setup()
    assert len(calls) == 1  # the cached answers were reused
    assert [r["input_ids"] for r in again.replayed] == [r["input_ids"] for r in recipe.replayed]
    again.cleanup()
    other = "bf16" if again_ctx.config.train.precision != "bf16" else "fp32"
    precise_ctx, _ = context(tmp_path / "answering", "lora", replay=0.25, max_steps=2, precision=other)
    precise = ChatRecipe(precise_ctx)
    precise.setup()  # the same base in another precision answers anew (its greedy answers can differ)
    assert len(calls) == 2 and len(list((ctx.home.cache / "replay").glob("*.json"))) == 2
    precise.cleanup()


def test_the_replay_prompts_are_not_the_probe_questions():
    from core.engine.chat import probe, replay

    def words(text):
        return " ".join("".join(c for c in text.lower() if c.isalnum() or c == " ").split())

    questions = {words(i["q"]) for i in probe.load_probe()}
    prompts = [words(p) for p in replay.load_prompts()]
    assert len(prompts) == len(set(prompts)) >= 48
    assert not any(q in p or p in q for p in prompts for q in questions)
    assert replay.replay_count(0.0, 300, 64) == 0 and replay.replay_count(0.2, 300, 64) == 60
    assert replay.replay_count(0.2, 1000, 64) == 64 and replay.replay_count(0.01, 10, 64) == 1
    # an answer the token limit cut off keeps its whole sentences or lines only
    assert replay.whole_sentences("First sentence. Second one is cu") == "First sentence."
    assert replay.whole_sentences("1. Pack water\n2. Pack food\n3. Bring a") == "1. Pack water\n2. Pack food"
    assert replay.whole_sentences("No sentence ends here") == ""
