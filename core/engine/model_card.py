"""A Hugging Face model card (README.md with YAML metadata) for the run's model folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..config import JobConfig
from ..strategies import get_strategy
from ..tasks import get_task
from ..runs import RunDir


def write_model_card(run: RunDir, config: JobConfig, report: dict | None, summary: dict | None) -> None:
    """Write ``run.model/README.md``: metadata for the Hub, then what was trained, on what, and how well.

    Args:
        run: the run folder; the card goes into its model folder.
        config: the filled-in job.
        report: eval.json content (before/after), or None when evaluation did not run.
        summary: the data summary (rows, classes).
    """
    run.model.mkdir(parents=True, exist_ok=True)
    report = report or {}
    summary = summary or {}
    base = _base_model_id(config.model)
    rows = summary.get("rows", {})
    metadata: dict[str, Any] = {
        "base_model": base,
        "library_name": "peft" if get_strategy(config.strategy).adapter else "transformers",
        "tags": ["finetune-studio", config.task, config.strategy],
        "pipeline_tag": get_task(config.task).pipeline_tag,
        "model-index": [{"name": run.name, "results": [{
            "task": {"type": config.task},
            "dataset": {"name": Path(str(config.data.path)).name, "type": "custom"},
            "metrics": [{"type": k, "value": v} for k, v in _tuned_metrics(report).items()],
        }]}],
    }
    hyper = {k: v for k, v in config.train.__dict__.items() if v is not None}
    lines = [
        "---", yaml.safe_dump(metadata, sort_keys=False).strip(), "---", "",
        f"# {config.name or run.name}", "",
        f"Fine-tuned from `{base}` for **{config.task}** with **{get_strategy(config.strategy).title}** "
        "in Finetune Studio.", "",
        "## Data", "",
        f"- Source: `{config.data.path}`",
        f"- Training rows: {rows.get('train', '?')}, validation rows: {rows.get('validation', '?')}",
    ]
    if summary.get("classes"):
        lines.append("- Classes (train/validation): " + ", ".join(
            f"{c['label']} ({c.get('train', '?')}/{c.get('validation', '?')})" for c in summary["classes"]))
    lines += ["", "## Results on the validation split", "", *_results_table(report), "",
              "## Training settings", "", "```yaml", yaml.safe_dump(hyper, sort_keys=True).strip(), "```", "",
              "## Reproduce", "", "```bash", "studio train config.yaml", "```", ""]
    run.card.write_text("\n".join(lines), encoding="utf-8")


def _base_model_id(model: str) -> str:
    from ..catalog import get_entry

    entry = get_entry(model)
    return entry.hub_id if entry else model


def _tuned_metrics(report: dict) -> dict[str, float]:
    tuned = report.get("tuned", {})
    return {k: round(float(v), 4) for k, v in tuned.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _results_table(report: dict) -> list[str]:
    tuned = _tuned_metrics(report)
    if not tuned:
        return ["No evaluation was run."]
    sides = [k for k, v in report.items() if isinstance(v, dict) and k != "tuned" and
             any(m in v for m in tuned)]
    header = "| metric | tuned | " + " | ".join(sides) + " |"
    rows = [header, "|" + "---|" * (2 + len(sides))]
    for metric, value in tuned.items():
        others = [report[s].get(metric) for s in sides]
        rows.append(f"| {metric} | {value:.4g} | " +
                    " | ".join(f"{o:.4g}" if isinstance(o, (int, float)) else "" for o in others) + " |")
    return rows
