"""The model card: the load lines in it really load the model, and it carries the GGUF/Ollama, API and predict
lines, the evaluation against the base and the baselines, the data summary and the exact config."""
from __future__ import annotations

import json
import re

import yaml

from core.config import JobConfig
from core.engine.model_card import model_card
from tests import support_runs


def _card(run) -> str:
    return run.card.read_text(encoding="utf-8")


def _python_blocks(card: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card, flags=re.S)


def _section(card: str, title: str) -> str:
    return card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_a_chat_card_loads_its_adapter_in_two_lines_and_says_how_to_run_it_elsewhere(tmp_path_factory):
    run = support_runs.chat_run(tmp_path_factory)
    card = _card(run)
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["library_name"] == "peft" and metadata["tags"] == ["finetune-studio", "chat", "lora"]
    assert "base_model" not in metadata  # a local folder is not a hub id
    scope: dict = {}
    exec(_python_blocks(_section(card, "Use it in Python"))[0], scope)  # noqa: S102 - the card's own lines
    assert type(scope["model"]).__name__.startswith("PeftModel") and scope["tokenizer"].chat_template
    elsewhere = _section(card, "Use it elsewhere")
    assert f"studio export {run.path} --gguf tiny-chat-gguf/" in elsewhere
    assert "ollama create tiny-chat -f Modelfile && ollama run tiny-chat" in elsewhere
    assert "curl http://127.0.0.1:8000/v1/chat/completions" in elsewhere
    assert 'OpenAI(base_url="http://127.0.0.1:8000/v1"' in elsewhere and f"studio predict {run.path}" in elsewhere
    results = _section(card, "Results")
    report = run.read_eval()
    assert f"| eval_loss | {report['tuned']['eval_loss']:.4g} | {report['base']['eval_loss']:.4g} |" in results
    assert "**Prompt:**" in results
    settings = _section(card, "Training settings")
    assert JobConfig.load(run.config).to_yaml().strip() in settings and "tensorboard --logdir" in settings
    data = _section(card, "Data")
    assert "Training rows: " in data and "Columns: messages = `messages`" in data


def test_a_classifier_card_compares_with_every_baseline_and_per_class(tmp_path_factory):
    run = support_runs.head_only_text_run(tmp_path_factory)
    card = _card(run)
    report = run.read_eval()
    results = _section(card, "Results")
    header = results.split("| metric | ", 1)[1].split("\n", 1)[0]
    for baseline in report["baselines"]:
        assert baseline["title"] in header and baseline["description"] in results
    assert f"| accuracy | {report['tuned']['accuracy']:.4g} |" in results
    assert "| class | precision | recall | F1 | examples |" in results
    summary = json.loads(run.data_summary.read_text())
    for row in summary["classes"]:
        assert f"{row['label']} ({row['train']}/{row['validation']})" in _section(card, "Data")
    scope: dict = {}
    code = _python_blocks(_section(card, "Use it in Python"))[0].replace("Classifier.from_run(", "answer = "
                                                                         "Classifier.from_run(")
    exec(code, scope)  # noqa: S102
    assert scope["answer"][0][0] in summary["labels"]
    elsewhere = _section(card, "Use it elsewhere")
    assert "/v1/classify" in elsewhere and "--gguf" not in elsewhere


def test_a_fully_fine_tuned_text_classifier_loads_in_a_pipeline(tmp_path_factory):
    run = support_runs.full_text_run(tmp_path_factory)
    scope: dict = {}
    exec(_python_blocks(_section(_card(run), "Use it in Python"))[0], scope)  # noqa: S102
    answer = scope["classify"]("goal match team the a we")[0]
    assert answer["label"] in json.loads(run.data_summary.read_text())["labels"]


def test_a_card_without_an_evaluation_or_a_gguf_architecture_says_so(tmp_path_factory, tmp_path):
    from transformers import GPT2Config

    run = support_runs.chat_run(tmp_path_factory)
    config = JobConfig.load(run.config)
    GPT2Config(n_layer=1, n_embd=32, n_head=2).save_pretrained(tmp_path)
    config.model = str(tmp_path)
    card = model_card(run, config, {}, {})
    assert "No evaluation was run" in card
    assert "GGUF export (llama.cpp, Ollama, LM Studio) supports llama and qwen2 models; this base is 'gpt2'" in card
