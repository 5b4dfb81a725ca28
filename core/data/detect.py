"""Which task a table is for and which column plays which role, with the reasons in plain sentences."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import pandas as pd

from .readers import header_key
from .report import DataReport
from .text import as_text

TASKS = ("chat", "text-classification", "image-classification")
CHAT_ROLES = ("prompt", "input", "response", "system", "messages")
CLASSIFICATION_ROLES = ("text", "label")
ROLES = CHAT_ROLES + CLASSIFICATION_ROLES

# Recognised header names, most specific first; matched on the whole header, then on one of its words.
NAMES = {
    "messages": ("messages", "conversations", "conversation", "dialogue", "dialog", "chat"),
    "prompt": ("instruction", "prompt", "question", "query", "user", "human", "input"),
    "input": ("input", "context"),
    "response": ("output", "response", "answer", "completion", "reply", "assistant", "gpt", "chosen"),
    "system": ("system", "system_prompt", "system_message"),
    "text": ("text", "sentence", "content", "review", "body", "message", "comment", "description", "tweet",
             "ticket", "document", "utterance", "query", "question", "title"),
    "label": ("label", "labels", "class", "category", "target", "intent", "sentiment", "department", "tag",
              "topic", "class_name", "y"),
}


@dataclass
class Detection:
    """The task, role -> column mapping and the reasons behind them."""

    task: str | None
    columns: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def find_column(frame: pd.DataFrame, wanted: str) -> str | None:
    """The frame column whose header matches ``wanted`` ignoring case, spaces, quotes and BOMs."""
    key = header_key(wanted)
    for col in frame.columns:
        if header_key(col) == key:
            return col
    return None


def detect(frame: pd.DataFrame, report: DataReport, task: str | None = None,
           columns: dict[str, str] | None = None, name: str = "the file") -> Detection:
    """Choose the task and column roles, honouring what the user gave.

    Args:
        frame: the table.
        report: unknown or missing columns are reported here.
        task: the user's task, or None to detect it.
        columns: the user's role -> column choices; the rest is detected.
        name: the file name, for messages.
    """
    found = Detection(task)
    given = _resolve_given(frame, columns or {}, report, name)
    if given is None:
        return found
    found.columns.update(given)
    for role, col in given.items():
        found.reasons.append(f"'{col}' is the {role} column, as you chose.")
    if task is None:
        found.task = _guess_task(frame, given, found.reasons)
        if found.task is None:
            report.error("no_task", f"Could not tell what {name} is for from its columns ({_names(frame)}).",
                         "Name the columns (e.g. question/answer for chat, text/label for classification) or "
                         "choose the task and the columns yourself.")
            return found
    else:
        found.reasons.append(f"The task is {task}, as you chose.")
    if found.task == "chat":
        _fill_chat(frame, found, report, name)
    elif found.task == "text-classification":
        _fill_classification(frame, found, report, name)
    return found


def _resolve_given(frame, columns, report, name) -> dict[str, str] | None:
    out, ok = {}, True
    for role, wanted in columns.items():
        if role not in ROLES:
            report.error("unknown_role", f"'{role}' is not a column role.", f"Use one of {', '.join(ROLES)}.")
            ok = False
            continue
        if wanted in (None, ""):
            continue
        col = find_column(frame, str(wanted))
        if col is None:
            report.error("unknown_column", f"The {role} column '{wanted}' is not in {name}; its columns are "
                         f"{_names(frame)}.{_close(frame, str(wanted))}", "Pick one of the listed columns.")
            ok = False
        else:
            out[role] = col
    return out if ok else None


def _close(frame, wanted: str) -> str:
    keys = {header_key(c): c for c in frame.columns}
    close = difflib.get_close_matches(header_key(wanted), list(keys), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(keys[k]) for k in close)}?" if close else ""


def _names(frame) -> str:
    return ", ".join(repr(c) for c in frame.columns) or "none"


def _by_name(frame, role: str, taken) -> str | None:
    free = [c for c in frame.columns if c not in taken]
    for pattern in NAMES[role]:
        for col in free:
            if header_key(col) == pattern:
                return col
    for pattern in NAMES[role]:
        for col in free:
            if pattern in header_key(col).split("_") and len(pattern) > 1:
                return col
    return None


def _guess_task(frame, given, reasons) -> str | None:
    if set(given) & set(CHAT_ROLES):
        reasons.append("The task is chat because you chose chat columns.")
        return "chat"
    if set(given) & set(CLASSIFICATION_ROLES):
        reasons.append("The task is text classification because you chose a text or label column.")
        return "text-classification"
    messages = _by_name(frame, "messages", ())
    if messages is not None:
        reasons.append(f"The task is chat: the column '{messages}' holds conversations.")
        return "chat"
    prompt = _by_name(frame, "prompt", ())
    response = _by_name(frame, "response", (prompt,))
    if prompt is not None and response is not None:
        reasons.append(f"The task is chat: '{prompt}' and '{response}' look like prompts and responses.")
        return "chat"
    label = _by_name(frame, "label", ()) or _label_by_content(frame, ())
    if label is not None and len(frame.columns) >= 2:
        reasons.append(f"The task is text classification: '{label}' has few distinct values, like labels.")
        return "text-classification"
    return None


def _fill_chat(frame, found: Detection, report, name) -> None:
    cols, taken = found.columns, set(found.columns.values())
    if "messages" not in cols and not ({"prompt", "response"} <= set(cols)):
        col = _by_name(frame, "messages", taken)
        if col is not None and "prompt" not in cols:
            cols["messages"] = col
            taken.add(col)
            found.reasons.append(f"'{col}' holds whole conversations (role/content or from/value turns).")
    if "messages" not in cols:
        for role in ("prompt", "response"):
            if role not in cols:
                col = _by_name(frame, role, taken)
                if col is not None:
                    cols[role] = col
                    taken.add(col)
                    found.reasons.append(f"'{col}' is the {role}: its name is a usual {role} name.")
        if "input" not in cols and header_key(cols.get("prompt", "")) == "instruction":
            col = _by_name(frame, "input", taken)
            if col is not None:
                cols["input"] = col
                taken.add(col)
                found.reasons.append(f"'{col}' is joined to the instruction in the user turn.")
        missing = [r for r in ("prompt", "response") if r not in cols]
        if missing:
            report.error("missing_column", f"No {' or '.join(missing)} column found in {name} (columns: "
                         f"{_names(frame)}).", "Name the columns prompt/response (or question/answer, "
                         "instruction/output), add a 'messages' column, or choose the columns yourself.")
            return
    if "system" not in cols:
        col = _by_name(frame, "system", taken)
        if col is not None:
            cols["system"] = col
            found.reasons.append(f"'{col}' is the system prompt, put first in every conversation.")


def _fill_classification(frame, found: Detection, report, name) -> None:
    cols, taken = found.columns, set(found.columns.values())
    if "label" not in cols:
        col = _by_name(frame, "label", taken)
        if col is not None:
            found.reasons.append(f"'{col}' is the label: its name is a usual label name.")
        else:
            col = _label_by_content(frame, taken)
            if col is not None:
                found.reasons.append(f"'{col}' is the label: it has only {frame[col].nunique()} distinct "
                                     f"values in {len(frame)} rows.")
        if col is not None:
            cols["label"] = col
            taken.add(col)
    if "text" not in cols:
        col = _by_name(frame, "text", taken)
        if col is not None:
            found.reasons.append(f"'{col}' is the text: its name is a usual text name.")
        else:
            col = _longest_text(frame, taken)
            if col is not None:
                found.reasons.append(f"'{col}' is the text: it has the longest values.")
        if col is not None:
            cols["text"] = col
    missing = [r for r in ("text", "label") if r not in cols]
    if missing:
        report.error("missing_column", f"No {' or '.join(missing)} column found in {name} (columns: "
                     f"{_names(frame)}).", "Name the columns text and label, or choose them yourself.")


def _label_by_content(frame, taken) -> str | None:
    """The column with the fewest distinct short values, if few enough to be classes."""
    n = len(frame)
    best = None
    for col in frame.columns:
        if col in taken:
            continue
        values = as_text(frame[col].head(20000)).str.strip()
        distinct = values[values != ""].nunique()
        if distinct < 2 or distinct > max(2, min(200, n // 2)) or values.str.len().mean() > 40:
            continue
        if best is None or distinct < best[0]:
            best = (distinct, col)
    return best[1] if best else None


def _longest_text(frame, taken) -> str | None:
    lengths = {c: as_text(frame[c].head(20000)).str.len().mean() for c in frame.columns if c not in taken}
    return max(lengths, key=lengths.get) if lengths else None
