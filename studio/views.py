"""Small HTML/Markdown renderings shared by the tabs: notices, problem lists, badges, the progress bar."""
from __future__ import annotations

import html
import math
from typing import Any, Iterable

from core.tasks import get_task

STATUS_WORDS = {
    "queued": ("Waiting in the queue", "info"),
    "preparing": ("Preparing", "info"),
    "training": ("Training", "info"),
    "evaluating": ("Evaluating base and tuned models", "info"),
    "completed": ("Finished", "ok"),
    "stopped": ("Stopped: what was trained so far is kept", "warn"),
    "failed": ("Failed", "error"),
    "interrupted": ("Interrupted", "warn"),
}
ENDED_EARLY = ("stopped", "failed", "interrupted")
MODEL_BADGES = {
    "ready": ("Ready offline", "ok"),
    "packaged": ("Ships with the studio (converts once, offline)", "ok"),
    "download": ("Needs a download", "warn"),
}


def esc(text: Any) -> str:
    return html.escape(str(text))


def notice(text: str, kind: str = "info", title: str | None = None) -> str:
    """A coloured box; ``kind`` is info | ok | warn | error. ``text`` is escaped."""
    head = f"<strong>{esc(title)}</strong> " if title else ""
    return f'<div class="st-notice st-{kind}">{head}{esc(text)}</div>'


def badge(text: str, kind: str) -> str:
    return f'<span class="st-badge st-{kind}">{esc(text)}</span>'


def problems_html(errors: Iterable[Any], warnings: Iterable[Any]) -> str:
    """Errors (which block training) then warnings (which do not), each with its fix."""
    errors, warnings = list(errors), list(warnings)
    if not errors and not warnings:
        return notice("No problems found: the data is ready to train on.", "ok", "Checks passed.")
    parts = []
    if errors:
        parts.append(f'<div class="st-notice st-error"><strong>{len(errors)} problem(s) block training.</strong>'
                     f'<ul>{"".join(_problem_item(p) for p in errors)}</ul></div>')
    if warnings:
        parts.append(f'<div class="st-notice st-warn"><strong>{len(warnings)} warning(s): training can go '
                     f'ahead, but read them.</strong><ul>{"".join(_problem_item(p) for p in warnings)}</ul></div>')
    return "".join(parts)


def _problem_item(problem: Any) -> str:
    fix = getattr(problem, "fix", "")
    fix_html = f'<br><span class="st-fix">Fix: {esc(fix)}</span>' if fix else ""
    return f"<li>{esc(getattr(problem, 'message', problem))}{fix_html}</li>"


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_html(progress: dict[str, Any] | None, status: str) -> str:
    """A progress bar with the step count and ETA; during a slow phase, that phase's own progress."""
    progress = progress or {}
    step, total = progress.get("step") or 0, progress.get("total_steps") or 0
    current, sub_total = progress.get("current"), progress.get("total")
    phase_message = progress.get("phase_message") or ""
    if status in ("completed",):
        scored = progress.get("candidates")
        fraction, label = 1.0, (f"Done: {step or total} steps" if step or total else
                                f"Done: {scored} candidate(s) scored" if scored else "Done.")
    elif status == "training" and total:
        fraction = min(1.0, step / total)
        eta = progress.get("eta_s")
        epoch = progress.get("epoch")
        epoch_text = f" · epoch {epoch:.2f}" if isinstance(epoch, (int, float)) else ""
        label = f"Step {step} of {total}{epoch_text} · about {duration(eta)} left" if eta is not None \
            else f"Step {step} of {total}{epoch_text}"
    elif status in ENDED_EARLY:  # the last phase's message ("Saving the trained weights.") no longer holds
        fraction = min(1.0, step / total) if total else 0.0
        word = STATUS_WORDS[status][0].split(":")[0]
        label = f"{word} at step {step} of {total}" if total else word
    elif current is not None and sub_total:
        fraction = min(1.0, current / sub_total)
        unit = f" {progress['unit']}" if progress.get("unit") else ""
        label = f"{phase_message} ({current} of {sub_total}{unit})"
    else:
        fraction = 0.0 if status in ("queued", "preparing") else (step / total if total else 0.0)
        label = phase_message or STATUS_WORDS.get(status, (status, ""))[0]
    moving = " st-moving" if status in ("preparing", "evaluating", "queued") and not sub_total else ""
    return (f'<div class="st-progress{moving}" role="progressbar" aria-valuenow="{fraction * 100:.0f}" '
            f'aria-valuemin="0" aria-valuemax="100"><div class="st-bar" style="width:{fraction * 100:.1f}%">'
            f'</div></div><div class="st-progress-label">{esc(label)}</div>')


def status_html(status: str | None, message: str | None, queue_position: int | None = None,
                error: str | None = None) -> str:
    if not status:
        return notice("No job yet. Choose data, a model and settings, then press Start training.", "info")
    word, kind = STATUS_WORDS.get(status, (status, "info"))
    text = message or ""
    if status == "queued" and queue_position:
        text = f"Position {queue_position} in the queue. {text}".strip()
    if status == "failed" and error:
        text = error
    if text.lower().startswith(word.lower()):
        return notice(text, kind)  # the engine's message already says it ("Finished: accuracy ...")
    return notice(text, kind, f"{word}.")


def headline_metric(eval_data: dict | None) -> str:
    """One figure for the run list, with its change: the task's headline metric (``core.tasks``: accuracy for
    classifiers, MAE for regressions, preference accuracy, perplexity), else accuracy or eval loss."""
    if not eval_data:
        return ""
    base, tuned = eval_data.get("base") or {}, eval_data.get("tuned") or {}
    try:
        keys = (get_task(str(eval_data.get("task"))).metric, "accuracy", "eval_loss")
    except KeyError:
        keys = ("accuracy", "eval_loss")
    for key in keys:
        if isinstance(tuned.get(key), (int, float)):
            name, fmt = HEADLINE_FORMATS.get(key, (key.replace("_", " "), "{:.3f}"))
            text = f"{name} {fmt.format(tuned[key])}"
            if isinstance(base.get(key), (int, float)):
                text += f" (base {fmt.format(base[key])})"
            return text
    return ""


HEADLINE_FORMATS = {"accuracy": ("accuracy", "{:.1%}"), "preference_accuracy": ("chosen preferred", "{:.0%}"),
                    "mae": ("MAE", "{:.4g}"), "perplexity": ("perplexity", "{:.2f}"),
                    "eval_loss": ("eval loss", "{:.3f}")}
