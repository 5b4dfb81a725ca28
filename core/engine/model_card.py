"""A model card a stranger can use: ``README.md`` (Hugging Face metadata + Markdown) in the run's model folder.

It says what was trained and how well (the tuned model against its base and the simple baselines, on held-out
rows), on what data, with the exact settings, and how to use it: load it in Python, run it in Ollama or llama.cpp
(GGUF), call it over an OpenAI-compatible API, or label a whole file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..catalog import get_entry
from ..config import JobConfig
from ..runs import RunDir
from ..strategies import get_strategy
from ..tasks import get_task

EXAMPLE_CHARS = 300


def write_model_card(run: RunDir, config: JobConfig, report: dict | None, summary: dict | None) -> None:
    """Write ``run.model/README.md``.

    Args:
        run: the run folder; the card goes into its model folder.
        config: the filled-in job (what config.yaml holds).
        report: eval.json content (tuned, base, baselines), or None when evaluation did not run.
        summary: the data summary (rows, classes, token lengths).
    """
    run.model.mkdir(parents=True, exist_ok=True)
    run.card.write_text(model_card(run, config, report or {}, summary or {}), encoding="utf-8")


def model_card(run: RunDir, config: JobConfig, report: dict, summary: dict) -> str:
    """The card's text (see ``write_model_card``)."""
    chosen, asked = trained_strategy(run, config), get_strategy(config.strategy)
    how = chosen.title if chosen is asked else f"{asked.title}, which chose {chosen.title}"
    lines = [
        "---", yaml.safe_dump(_metadata(run, config, report), sort_keys=False, allow_unicode=True).strip(), "---",
        "", f"# {config.name or run.name}", "",
        f"Fine-tuned from `{base_model_id(config.model)}` for **{get_task(config.task).title.lower()}** with "
        f"**{how}** in Finetune Studio (run `{run.name}`).", "",
        *_results(config, report), *_use(run, config), *_elsewhere(run, config), *_data(run, config, summary),
        *_settings(run, config),
    ]
    return "\n".join(lines).rstrip() + "\n"


def trained_strategy(run: RunDir, config: JobConfig):
    """The strategy the saved weights come from: for an automatic search, the one that won (classifier.json)."""
    from .. import saved

    strategy = get_strategy(config.strategy)
    if getattr(strategy, "searches", False):
        try:
            return get_strategy(saved.read_info(run.model)[0]["strategy"])
        except (OSError, ValueError, KeyError):  # nothing saved (stopped early): the card says what was asked
            pass
    return strategy


def base_model_id(model: str) -> str:
    """The hub id of a catalog model, else the name or folder the job gave."""
    entry = get_entry(model)
    return entry.hub_id if entry and entry.hub_id else str(model)


def _metadata(run: RunDir, config: JobConfig, report: dict) -> dict[str, Any]:
    base = base_model_id(config.model)
    metadata: dict[str, Any] = {}
    if "/" in base and not base.startswith((".", "/", "~")):
        metadata["base_model"] = base  # the hub wants a repository id here, not a local folder
    entry = get_entry(config.model)
    if entry is not None and entry.licence:
        metadata["license"] = entry.licence
    metadata.update({
        "library_name": "peft" if trained_strategy(run, config).adapter else "transformers",
        "tags": ["finetune-studio", config.task, config.strategy],
        "pipeline_tag": get_task(config.task).pipeline_tag,
        "model-index": [{"name": run.name, "results": [{
            "task": {"type": get_task(config.task).pipeline_tag or config.task},
            "dataset": {"name": Path(str(config.data.path)).name, "type": "custom"},
            "metrics": [{"type": k, "value": v} for k, v in _numbers(report.get("tuned")).items()],
        }]}],
    })
    return metadata


def _numbers(values) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


# --- results --------------------------------------------------------------------------------------------------
def _results(config: JobConfig, report: dict) -> list[str]:
    head = ["## Results", ""]
    tuned = _numbers(report.get("tuned"))
    if not tuned:
        return head + [report.get("message") or "No evaluation was run (the run stopped before it).", ""]
    if config.task == "preference":
        return head + _preference_results(report)
    if config.task == "text-completion":
        return head + _completion_results(report)
    count = report.get("rows") if config.task == "chat" else report.get("examples")
    where = f"{count if isinstance(count, int) else '?'} held-out rows ({report.get('split', 'validation')} split)"
    if config.task == "chat":
        return head + [f"Loss on the answer tokens of {where}; lower is better.", "",
                       *_table(["tuned", "base"], {"tuned": tuned, "base": _numbers(report.get("base"))},
                               {"tuned": "tuned", "base": "base model"}),
                       "", *_chat_examples(report.get("examples") or []), ""]
    sides = ["tuned"] + [b["key"] for b in report.get("baselines", []) if isinstance(report.get(b["key"]), dict)]
    titles = {"tuned": "tuned", **{b["key"]: b["title"] for b in report.get("baselines", [])}}
    values = {side: _numbers(report.get(side)) for side in sides}
    notes = [f"- **{b['title']}**: {b['description']}" for b in report.get("baselines", [])]
    refit = [str(report["final_fit"]), ""] if report.get("final_fit") else []
    return head + [f"Scored on {where}; the tuned model against its base and simple baselines fitted on the "
                   "same training rows.", "", *_table(sides, values, titles), "", *notes, "", *refit,
                   *_per_class(report.get("per_class") or []), ""]


def _base_and_tuned(report: dict, metrics: tuple[str, ...]) -> list[str]:
    values = {side: {k: v for k, v in _numbers(report.get(side)).items() if k in metrics} for side in ("tuned", "base")}
    return _table(["tuned", "base"], values, {"tuned": "tuned", "base": "base model"})


def _preference_results(report: dict) -> list[str]:
    objective, beta = str(report.get("objective") or "").upper(), report.get("beta")
    how = f" Trained with {objective} (beta {beta:g})." if objective and isinstance(beta, (int, float)) else ""
    lines = [f"Scored on {report.get('pairs', '?')} held-out preference pairs (validation split; their prompts never "
             "trained). Preference accuracy is how often the model gives the chosen answer a higher log-probability "
             f"than the rejected one after the same prompt; reward margin is the mean of that gap in nats.{how}", "",
             *_base_and_tuned(report, ("preference_accuracy", "reward_margin", "implicit_reward_accuracy",
                                       "implicit_reward_margin")), ""]
    examples = [{**e, "reference": e.get("chosen")} for e in report.get("examples") or []]
    return lines + _chat_examples(examples) + [""] + _probe(report)


def _completion_results(report: dict) -> list[str]:
    lines = [f"Perplexity on {report.get('blocks', '?')} held-out blocks of {report.get('block_length', '?')} tokens "
             "(text the model never trained on); lower is better.", "",
             *_base_and_tuned(report, ("perplexity", "eval_loss")), ""]
    examples = report.get("examples") or []
    if examples:
        lines += ["Held-out passages continued by each model (greedy):", ""]
        for e in examples[:2]:
            lines += [f"- **Text:** {_short(e.get('prompt'))}", f"  - the document goes on: {_short(e.get('reference'))}",
                      f"  - base: {_short(e.get('base')) or '(empty)'}", f"  - tuned: {_short(e.get('tuned')) or '(empty)'}"]
        lines.append("")
    return lines + _probe(report)


def _probe(report: dict) -> list[str]:
    message = (report.get("probe") or {}).get("message")
    return [f"Did it forget? {message}", ""] if message else []


def _table(sides: list[str], values: dict[str, dict], titles: dict[str, str]) -> list[str]:
    metrics = [m for m in values[sides[0]]]
    rows = ["| metric | " + " | ".join(titles.get(s, s) for s in sides) + " |", "|---" * (len(sides) + 1) + "|"]
    for metric in metrics:
        cells = [f"{values[s][metric]:.4g}" if metric in values[s] else "" for s in sides]
        rows.append(f"| {metric} | " + " | ".join(cells) + " |")
    return rows


def _per_class(per_class: list[dict]) -> list[str]:
    if not per_class:
        return []
    rows = ["Per class (tuned):", "", "| class | precision | recall | F1 | examples |", "|---|---|---|---|---|"]
    rows += [f"| {c['label']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
             for c in per_class]
    return rows


def _chat_examples(examples: list[dict]) -> list[str]:
    if not examples:
        return []
    out = ["Answers to held-out prompts (greedy):", ""]
    for e in examples[:3]:
        out += [f"- **Prompt:** {_short(e.get('prompt'))}", f"  - expected: {_short(e.get('reference'))}",
                f"  - base: {_short(e.get('base')) or '(empty)'}", f"  - tuned: {_short(e.get('tuned')) or '(empty)'}"]
    return out


def _short(text) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 1] + "…"


# --- how to use it --------------------------------------------------------------------------------------------
def _use(run: RunDir, config: JobConfig) -> list[str]:
    folder = str(run.model)
    base = base_model_id(config.model)
    strategy = trained_strategy(run, config)
    lines = ["## Use it in Python", ""]
    if strategy.on_features or _model_kind(config) == "efficientnet":
        return lines + _studio_python(run, config)
    if _generates(config) and strategy.adapter:
        code = ["from peft import PeftModel; from transformers import AutoModelForCausalLM, AutoTokenizer",
                f'model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), "{folder}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{folder}")  # carries the chat template it was trained with']
        merged = ["Or as one standalone model: `studio export " + f"{run.path} --merged merged/`, then "
                  '`AutoModelForCausalLM.from_pretrained("merged")`.', ""] if strategy.mergeable else \
            [f"{strategy.title} cannot be merged into the weights: keep the adapter beside its base.", ""]
        return lines + ["The adapter on its base:", "", "```python", *code, "```", "", *_packaged_note(config),
                        *merged, *_next_step(run, config)]
    if _generates(config):
        code = ["from transformers import AutoModelForCausalLM, AutoTokenizer",
                f'model, tokenizer = AutoModelForCausalLM.from_pretrained("{folder}"), '
                f'AutoTokenizer.from_pretrained("{folder}")']
        return lines + ["```python", *code, "```", "", *_next_step(run, config)]
    if strategy.adapter:
        raw = ', function_to_apply="none")  # the raw output is the number' \
            if get_task(config.task).kind == "regression" else ")"
        code = ["from transformers import pipeline",
                f'classify = pipeline("{get_task(config.task).pipeline_tag}", model="merged"{raw}']
        return lines + [f"Merge the adapter into a standalone model first: `studio export {run.path} --merged merged/`,"
                        " then:", "", "```python", *code, "```", "", *_studio_python(run, config)]
    if config.task == "text-classification":
        code = ["from transformers import pipeline", f'classify = pipeline("text-classification", model="{folder}")']
        return lines + ["```python", *code, "```", ""]
    return lines + _studio_python(run, config)


def _generates(config: JobConfig) -> bool:
    """A chat model comes out (chat, preference pairs, documents): it answers, exports to GGUF, serves chat."""
    return get_task(config.task).kind == "generation"


def _next_step(run: RunDir, config: JobConfig) -> list[str]:
    if config.task != "text-completion":
        return []
    return ["## Go on to chat tuning", "", "This model has read the domain's documents; to teach it to answer "
            "questions about them in your style, tune it on question/answer pairs starting from this run's weights:",
            "", "```bash", f"studio export {run.path} --merged domain-model/",
            "studio train chat.yaml --set model=domain-model/   # a chat job (task: chat) on your Q&A file", "```",
            "", "The merged folder is a complete chat model with the chat template, so any studio strategy (LoRA, "
            "QLoRA, full) can start from it.", ""]


def _studio_python(run: RunDir, config: JobConfig) -> list[str]:
    task = get_task(config.task)
    example = '"Where is my order?"' if task.modality == "text" else '"photo.jpg"'
    if task.kind == "regression":
        return ["With the studio installed (`pip install` this repository), for any regression run:", "",
                "```python", "from core.inference.regress import Regressor",
                f'Regressor.from_run("{run.path}").predict({example})  # a number, in the target\'s units',
                "```", "", "Its answers are kept within the training values (`model/target.json`: `min`, `max`); the "
                "exported model's raw output is not, so clip it to that range as the studio does.", ""]
    return ["With the studio installed (`pip install` this repository), for any classifier run:", "", "```python",
            "from core.inference.classify import Classifier",
            f'Classifier.from_run("{run.path}").predict({example})  # [(class, probability), ...] best first',
            "```", ""]


def _packaged_note(config: JobConfig) -> list[str]:
    entry = get_entry(config.model)
    if entry is None or not entry.packaged:
        return []
    return [f"This run trained on the copy of {entry.title} that ships inside a Python package (converted from a "
            "4-bit GGUF), so on the hub's full-precision base the adapter behaves nearly, not exactly, the same; "
            "the merged and GGUF exports carry exactly the trained weights.", ""]


def _model_kind(config: JobConfig) -> str:
    entry = get_entry(config.model)
    return entry.architecture if entry is not None else ""


def _architecture(config: JobConfig) -> str:
    """The chat model's transformers model_type: from the catalog, else from a local folder's config.json."""
    if _model_kind(config):
        return _model_kind(config)
    path = Path(str(config.model)).expanduser() / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type", "")
    except (OSError, ValueError):
        return ""


def _elsewhere(run: RunDir, config: JobConfig) -> list[str]:
    lines = ["## Use it elsewhere", ""]
    if _generates(config) and trained_strategy(run, config).mergeable:  # GGUF files hold merged weights
        lines += _gguf(run, config)
    if get_task(config.task).kind != "regression":  # the API serves chat models and classifiers
        lines += _api(run, config)
    lines += ["Label a whole file (every input column is kept; predictions are added as columns):", "", "```bash",
              f"studio predict {run.path} --data FILE.csv --out predictions.csv", "```", ""]
    return lines


def _gguf(run: RunDir, config: JobConfig) -> list[str]:
    from ..export.gguf import SUPPORTED_ARCHITECTURES, ollama_name

    arch = _architecture(config)
    if arch not in SUPPORTED_ARCHITECTURES:
        return [f"GGUF export (llama.cpp, Ollama, LM Studio) supports {' and '.join(SUPPORTED_ARCHITECTURES)} models; "
                f"this base is '{arch or 'unknown'}'. Convert the merged export with llama.cpp's "
                "convert_hf_to_gguf.py.", ""]

    name = ollama_name(config.name or run.name)
    return ["Ollama, llama.cpp and LM Studio (GGUF files with the chat template and an Ollama Modelfile):", "",
            "```bash", f"studio export {run.path} --gguf {name}-gguf/",
            f"cd {name}-gguf && ollama create {name} -f Modelfile && ollama run {name}",
            f"llama-cli -m {name}-gguf/{name}-q8_0.gguf -cnv   # or llama.cpp directly", "```", ""]


def _api(run: RunDir, config: JobConfig) -> list[str]:
    lines = ["An API for other programs (`studio serve` listens on http://127.0.0.1:8000):", "", "```bash",
             f"studio serve {run.path} --port 8000"]
    if _generates(config):
        body = json.dumps({"model": run.name, "messages": [{"role": "user", "content": "Hello!"}]})
        lines += [f"curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{body}'",
                  "```", "", "```python", "from openai import OpenAI",
                  'client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")',
                  f'print(client.chat.completions.create(model="{run.name}", messages=[{{"role": "user", '
                  '"content": "Hello!"}]).choices[0].message.content)', "```", ""]
    else:
        sample = '"Where is my order?"' if config.task == "text-classification" else '"<base64 of a PNG or JPEG>"'
        body = f'{{"input": [{sample}], "top_k": 3}}'
        lines += [f"curl http://127.0.0.1:8000/v1/classify -H 'Content-Type: application/json' -d '{body}'",
                  "```", ""]
    return lines


# --- data and settings ----------------------------------------------------------------------------------------
def _data(run: RunDir, config: JobConfig, summary: dict) -> list[str]:
    rows = summary.get("rows") or {}
    lines = ["## Data", "", f"- Source: `{config.data.path}`" + (f" ({summary['format']})" if summary.get("format") else ""),
             f"- Training rows: {rows.get('train', '?')}, validation rows: {rows.get('validation', '?')}"
             + (f", read: {rows['read']}" if rows.get("read") else "")]
    columns = summary.get("columns") or config.data.columns
    if columns:
        lines.append("- Columns: " + ", ".join(f"{role} = `{column}`" for role, column in columns.items()))
    if summary.get("classes"):
        lines.append("- Classes (train/validation): " + ", ".join(
            f"{c['label']} ({c.get('train', '?')}/{c.get('validation', '?')})" for c in summary["classes"]))
    tokens = summary.get("token_lengths") or {}
    if tokens.get("mean") is not None:
        lines.append(f"- Tokens per example: mean {tokens['mean']}, 95th percentile {tokens.get('p95')}, longest "
                     f"{tokens.get('max')}")
    truncated = summary.get("truncated") or {}
    if truncated.get("count"):
        lines.append(f"- Cut at {truncated['max_length']} tokens: {truncated['count']} examples")
    dropped = {k: v for k, v in (summary.get("dropped") or {}).items() if v}
    if dropped:
        lines.append("- Rows left out: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in dropped.items()))
    if run.replay.is_file():
        count = sum(1 for line in run.replay.read_text(encoding="utf-8").splitlines() if line.strip())
        lines.append(f"- General replay: {count} answers of the base model to everyday instructions were trained "
                     f"beside the training rows (`train.replay: {config.train.replay:g}`; they are in the run's "
                     f"`{run.replay.name}`), so the model keeps its general behaviour")
    return lines + [""]


def _settings(run: RunDir, config: JobConfig) -> list[str]:
    return ["## Training settings", "", "The exact job (the run's `config.yaml`, every preset filled in):", "",
            "```yaml", config.to_yaml().strip(), "```", "", "Reproduce it, and see its curves:", "", "```bash",
            "studio train config.yaml", f"tensorboard --logdir {run.path.parent}", "```", ""]
