"""Preference tuning on the tiny chat model: DPO and ORPO through TRL end to end (CLI, run folder, eval.json,
model card, playground, export), and the pair scoring checked against a plain computation."""
from __future__ import annotations

import json

import pytest
import torch

from core.cli import main
from core.config import JobConfig
from core.engine.events import read_events
from core.engine.preference.scoring import answer_logps, encode_answer, side_scores
from core.engine.preference.trainers import trl_pairs
from core.engine.runner import run_job
from core.home import Home
from core.runs import RunDir
from tests.test_chat_support import COLOURS, THINGS, save_tiny_tokenizer, tiny_model_folder


def write_pairs(path, n=80, offset=0):
    """Colour questions: the right colour is chosen, another colour rejected (learnable by a tiny model)."""
    rows = [{"prompt": f"What colour is the {THINGS[i % 8]}? ({i + offset})",
             "chosen": f"The {THINGS[i % 8]} is {COLOURS[i % 8]}.",
             "rejected": f"The {THINGS[i % 8]} is {COLOURS[(i + 3) % 8]}."} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def job(root, strategy="dpo", **train) -> JobConfig:
    config = JobConfig(task="preference", model=str(tiny_model_folder(root)), strategy=strategy,
                       name=f"colours {strategy}")
    config.data.path = str(write_pairs(root / "pairs.jsonl"))
    settings = dict(threads=1, epochs=3.0, learning_rate=5e-3, eval_every=10)
    settings.update(train)
    for key, value in settings.items():
        setattr(config.train, key, value)
    return config


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory):
    """A DPO run of the tiny model, trained through the CLI from a config file (shared by the tests below)."""
    root = tmp_path_factory.mktemp("dpo")
    home = Home.resolve(root / "home")
    path = root / "job.yaml"
    job(root).save(path)
    assert main(["train", str(path), "--home", str(home.root)]) == 0
    (run,) = [RunDir(p) for p in home.runs.iterdir()]
    return root, home, run


def test_dpo_trains_and_compares_base_and_tuned(dpo_run):
    _, _, run = dpo_run
    assert run.read_status()["status"] == "completed"
    assert run.read_status()["message"].startswith("Finished: preference accuracy")
    report = run.read_eval()
    assert report["task"] == "preference" and report["objective"] == "dpo" and report["beta"] == 0.1
    base, tuned = report["base"], report["tuned"]
    for side in (base, tuned):
        assert {"preference_accuracy", "reward_margin", "logp_chosen", "logp_rejected"} <= set(side)
    assert tuned["preference_accuracy"] > base["preference_accuracy"]
    assert tuned["preference_accuracy"] >= 0.9 and tuned["reward_margin"] > base["reward_margin"]
    assert tuned["implicit_reward_accuracy"] >= 0.9 and tuned["implicit_reward_margin"] > 0
    assert report["pairs"] == 16 and len(report["examples"]) == 4
    assert {"prompt", "chosen", "rejected", "base", "tuned"} <= set(report["examples"][0])
    assert report["probe"]["questions"] > 0 and "message" in report["probe"]
    assert report["pairs_detail"]["now_right_count"] >= 1
    assert (run.model / "adapter_config.json").is_file() and not (run.model / "ref").exists()


def test_dpo_curves_carry_the_reward_metrics(dpo_run):
    _, _, run = dpo_run
    events = read_events(run.metrics)
    train = [e for e in events if e["type"] == "train" and e.get("loss") is not None]
    evals = [e for e in events if e["type"] == "eval"]
    assert train and train[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # log 2: the adapter starts at zero
    assert evals and {"eval_loss", "reward_accuracy", "reward_margin"} <= set(evals[-1])
    assert any(e.get("tokens_per_s") for e in train)


def test_the_card_and_the_summary_say_what_was_measured(dpo_run):
    _, _, run = dpo_run
    card = run.card.read_text()
    assert "preference accuracy is how often the model gives the chosen answer" in card.lower()
    assert "| preference_accuracy |" in card and "base model" in card and "Trained with DPO (beta 0.1)" in card
    assert "studio export" in card and "ollama" in card.lower()
    summary = json.loads(run.data_summary.read_text())
    assert summary["task"] == "preference" and summary["example"]["rendered_chosen"].startswith("<|im_start|>")


def test_studio_eval_on_another_file(dpo_run, capsys, monkeypatch):
    from core.engine.preference import recipe

    monkeypatch.setattr(recipe, "EVAL_PAIRS_FINAL", 10)  # the cap after training; --data scores every pair
    root, home, run = dpo_run
    other = write_pairs(root / "other.jsonl", n=24, offset=1000)
    assert main(["eval", str(run.path), "--data", str(other), "--home", str(home.root)]) == 0
    report = json.loads((run.path / "eval-other.json").read_text())
    assert report["pairs"] == 24 and report["tuned"]["preference_accuracy"] >= 0.9
    assert "pairs_held_out" not in report


def test_the_playground_and_the_export_take_the_tuned_model(dpo_run, tmp_path):
    from transformers import AutoModelForCausalLM

    from core.export import export_merged
    from core.inference.chat import ChatModel

    _, home, run = dpo_run
    chat = ChatModel.from_run(run.path, home)
    assert chat.has_tuned
    question = [{"role": "user", "content": "What colour is the snow?"}]
    assert isinstance(chat.generate(question, max_new_tokens=4, temperature=0), str)
    assert isinstance(chat.generate(question, use_tuned=False, max_new_tokens=4, temperature=0), str)
    merged = export_merged(run.path, tmp_path / "merged", home)
    assert AutoModelForCausalLM.from_pretrained(merged).config.model_type == "llama"


def test_orpo_trains_through_its_own_trainer(tmp_path):
    run = run_job(job(tmp_path, "orpo", epochs=1.0, eval_every=100), Home.resolve(tmp_path / "home"))
    report = run.read_eval()
    assert run.read_status()["status"] == "completed" and report["objective"] == "orpo"
    assert report["tuned"]["logp_chosen"] > report["base"]["logp_chosen"]  # ORPO also learns the chosen answers
    assert (run.model / "adapter_config.json").is_file()


def test_pairs_reach_each_trainer_in_its_own_shape(tmp_path):
    from datasets import Dataset

    tokenizer = save_tiny_tokenizer(tmp_path)
    pairs = Dataset.from_list([{"prompt": [{"role": "user", "content": "Sky?"}], "chosen": "blue", "rejected": "red"}])
    dpo = trl_pairs(pairs, "dpo", tokenizer)[0]
    assert dpo["chosen"] == [{"role": "assistant", "content": "blue"}] and dpo["prompt"][0]["content"] == "Sky?"
    orpo = trl_pairs(pairs, "orpo", tokenizer)[0]
    assert orpo["prompt"].endswith("<|im_start|>assistant\n")
    assert orpo["chosen"] == "blue<|im_end|>" and orpo["rejected"] == "red<|im_end|>"


def test_scoring_sums_the_answer_tokens_only(tmp_path):
    from transformers import AutoModelForCausalLM

    folder = tiny_model_folder(tmp_path)
    tokenizer = save_tiny_tokenizer(tmp_path / "tok")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    prompt = [{"role": "user", "content": "What colour is the sky?"}]
    row = encode_answer(tokenizer, prompt, "The sky is blue.", None)
    labelled = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert tokenizer.decode(labelled) == "The sky is blue.<|im_end|>"  # the answer through its end-of-turn token
    other = encode_answer(tokenizer, prompt, "The sky is green and grey.", None)
    scores = answer_logps(model, [row, other], tokenizer.pad_token_id, batch_size=2)
    with torch.no_grad():
        ids = torch.tensor([row["input_ids"]])
        logps = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        targets = torch.tensor(row["input_ids"][1:])
        mask = torch.tensor(row["labels"][1:]) != -100
        expected = logps[torch.arange(len(targets)), targets][mask].sum().item()
    assert scores[0] == pytest.approx(expected, abs=1e-3)
    assert side_scores([scores[0]], [scores[1]])["preference_accuracy"] == float(scores[0] > scores[1])
