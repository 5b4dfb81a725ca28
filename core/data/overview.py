"""What the studio understood from the data, in plain lines for a console, a log or the page.

Printed before any training starts, so a misreading (the wrong label column, a split folder taken as a
class, a sheet left out) is seen while it costs nothing.
"""
from __future__ import annotations

from pathlib import Path

from . import groups
from .regression import target_lines

TASK_NAMES = {"chat": "chat (instruction tuning)", "text-classification": "text classification",
              "image-classification": "image classification", "text-regression": "text regression (a number per "
              "text)", "image-regression": "image regression (a number per image)"}
DROP_REASONS = {
    "empty_cells": "empty cells", "duplicates": "duplicates", "leakage": "also in training",
    "multi_label": "several labels in one cell", "template_markers": "chat-template markers",
    "bad_messages": "unusable conversations", "bad_lines": "lines with the wrong number of fields",
    "repeated_header": "repeated header rows", "bad_json_line": "invalid JSON lines",
    "unknown_validation_label": "validation classes unknown to training",
    "unknown_test_label": "test classes unknown to training", "not_image": "not images",
    "unreadable_image": "unreadable images", "truncated_image": "cut-short images",
    "image_too_large": "images over the pixel limit", "nested_archive": "archives inside the data",
    "unsupported_image": "images of an unsupported format", "unknown_speaker": "turns by other speakers",
    "totals_row": "totals rows", "not_a_number": "targets that are not numbers",
    "missing_image": "images named in metadata.csv but missing",
}
SHOWN_CLASSES = 30


def understood_lines(prepared, problems: bool = True) -> list[str]:
    """Task, columns and their roles with the reasons, classes with counts, merges, rows dropped, problems.

    Args:
        prepared: a ``PreparedData`` from ``load_data`` (with or without errors).
        problems: end with the errors and warnings and whether it is ready (False when the caller reports the
            problems itself, as a failed job does in its failure message).
    """
    summary = prepared.summary or {}
    lines = [f"Data: {summary.get('source', '?')}"]
    lines += [f"  {note}" for note in summary.get("notes") or []]
    lines.append(f"Task: {_task_name(prepared.task)}")
    if prepared.columns and prepared.task != "image-classification":
        lines.append("Columns: " + ", ".join(f"{role} = {col!r}" for role, col in prepared.columns.items()))
    lines += [f"  - {reason}" for reason in prepared.detection]
    for role, names in (prepared.candidates or {}).items():
        if names and role not in (prepared.columns or {}):
            lines.append(f"Could be the {role}: {', '.join(map(repr, names))} (choose one).")
    lines += _rows(summary)
    lines += _classes(summary)
    lines += target_lines(summary)
    lines += _merges(prepared.report.merged)
    lines += _dropped(prepared.report.dropped)
    if problems:
        lines += prepared.report.lines()
        lines.append("Ready to train." if prepared.report.ok else "Not ready: fix the error(s) above first.")
    return lines


def _task_name(task: str | None) -> str:
    """The task in words: this module's phrase, else the task registry's title."""
    from ..tasks import get_task

    try:
        return TASK_NAMES.get(task) or get_task(task).title.lower()
    except KeyError:
        return "not recognised"


def scored_on(summary: dict) -> str:
    """Where a report's scores were measured, in words: "on the validation split", "on test.csv" (a validation
    file of the user's, or the file `studio eval --data` scores), "on the validation folder"."""
    validation = summary.get("validation") or {}
    if validation.get("source") == "file" and validation.get("path"):
        return f"on {Path(str(validation['path'])).name}"
    if validation.get("source") == "folder":
        return "on the validation folder"
    return f"on the validation split ({groups.each(validation['group'])} on one side)" if validation.get("group") \
        else "on the validation split"


def _rows(summary: dict) -> list[str]:
    rows = summary.get("rows") or {}
    if "train" not in rows:
        return [f"Rows: {rows['usable']:,} usable."] if "usable" in rows else []
    parts = [f"{rows['train']:,} for training", f"{rows['validation']:,} for validation"]
    if rows.get("test"):
        parts.append(f"{rows['test']:,} held out as the test set")
    how = (summary.get("validation") or {}).get("source")
    stratified = ", stratified by class" if summary.get("classes") else ", stratified by value" \
        if summary.get("target") else ""
    group = (summary.get("validation") or {}).get("group")
    whole = f", {groups.each(group)} on one side" if group else ""
    source = {"split": f" (split at random{stratified}{whole})",
              "file": " (from the validation file)", "folder": " (from the validation folder)"}.get(how, "")
    return [f"Rows: {rows.get('read', 0):,} read; {', '.join(parts)}{source}."]


def _classes(summary: dict) -> list[str]:
    classes = summary.get("classes") or []
    if not classes:
        return []
    lines = [f"Classes ({len(classes)}), training / validation examples:"]
    for entry in sorted(classes, key=lambda c: -c["train"])[:SHOWN_CLASSES]:
        lines.append(f"  {entry['label']!r}: {entry['train']} / {entry['validation']}")
    if len(classes) > SHOWN_CLASSES:
        lines.append(f"  ... and {len(classes) - SHOWN_CLASSES} more")
    return lines


def _merges(merged) -> list[str]:
    if not merged:
        return []
    lines = ["Class names merged (variants of one name):"]
    for name, variants in merged[:20]:
        lines.append(f"  {name!r} <- " + ", ".join(f"{v!r} ({c})" for v, c in variants))
    return lines


def _dropped(dropped: dict[str, int]) -> list[str]:
    if not dropped:
        return []
    parts = [f"{count:,} {DROP_REASONS.get(code, code.replace('_', ' '))}" for code, count in dropped.items()]
    return [f"Left out: {'; '.join(parts)}."]
