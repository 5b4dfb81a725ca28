"""Which task a table is for and which column plays which role, with the reasons in plain sentences.

Roles come from what the user chose, then from header names when exactly one column carries a usual name,
then from the values. When two columns could each be the label (or the text) the studio does not guess: the
load stops with a problem naming the candidates and why, and ``Detection.candidates`` lists them for the page.
Columns that look like metadata (identifiers, dates, channels, priorities, counts) are never picked as the
label while another column could be.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import pandas as pd

from . import preference, regression
from .columns import METADATA_WORDS, Profile, head_word, label_name, profile_columns, text_name
from .readers import header_key
from .turns import find_turn_columns
from ..tasks import TASKS as TASK_KEYS
from . import groups
from .report import DataReport, quoted

TASKS = TASK_KEYS  # every task the studio knows (core/tasks.py); the loader refuses others
CHAT_ROLES = ("prompt", "input", "response", "system", "messages", "speaker", "content", "conversation")
CLASSIFICATION_ROLES = ("text", "label")
PREFERENCE_ROLES = ("chosen", "rejected")  # with prompt and system (core/data/preference.py)
REGRESSION_ROLES = ("target",)  # with text (core/data/regression.py)
GROUP_ROLES = (groups.ROLE,)  # optional, for classification and regression (core/data/groups.py); never guessed
ROLES = CHAT_ROLES + CLASSIFICATION_ROLES + PREFERENCE_ROLES + REGRESSION_ROLES + GROUP_ROLES

# Recognised chat header names, most specific first; matched on the whole header, then on one of its words.
NAMES = {
    "messages": ("messages", "conversations", "conversation", "contents", "dialogue", "dialog", "chat", "turns"),
    "prompt": ("instruction", "prompt", "question", "query", "user", "human", "input"),
    "input": ("input", "context", "passage", "background", "reference"),
    "response": ("output", "response", "answer", "completion", "reply", "assistant", "gpt", "chosen"),
    "system": ("system", "system_prompt", "system_message"),
    "text": ("text", "sentence", "content", "review", "body", "message", "comment", "description", "tweet",
             "ticket", "document", "utterance", "query", "question"),
    "label": ("label", "labels", "class", "category", "target", "intent", "sentiment", "department", "tag",
              "topic", "class_name", "y"),
}
ML_LABELS = {"label", "labels", "class", "classes", "target", "y", "class_name", "label_name", "label_text"}
CLEARLY_LONGER = 2.0  # a text column this many times longer than the next is the text


@dataclass
class Detection:
    """The task, role -> column mapping, the reasons behind them and, where the studio would not choose,
    the candidate columns per role (most likely first)."""

    task: str | None
    columns: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    candidates: dict[str, list[str]] = field(default_factory=dict)


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
        report: unknown, missing or ambiguous columns are reported here.
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
    profiles = profile_columns(frame)
    profiles.pop(found.columns.get(groups.ROLE), None)  # the group column is no candidate for another role
    if task is None:
        found.task = _guess_task(frame, given, profiles, found.reasons)
        if found.task is None:
            _no_task(frame, profiles, report, name)
            return found
    else:
        found.reasons.append(f"The task is {task}, as you chose.")
    _check_group(found, report, name)
    if found.task == "preference":
        preference.fill_columns(frame, found.columns, found.reasons, report, name)
    elif found.task == "chat":
        if not _fill_turns(frame, profiles, found):
            _fill_chat(frame, found, report, name)
    elif found.task == "text-classification":
        _fill_classification(frame, profiles, found, report, name)
    elif found.task == "text-regression":
        _fill_regression(frame, profiles, found, report, name)
    if found.task in ("text-classification", "text-regression"):
        groups.offer(found, profiles, len(frame))
    return found


def _no_task(frame, profiles, report, name) -> None:
    """Why no task fits: a table without any text (measurements, codes) gets its own words, since no column
    choice would make it one the studio can tune a language model on."""
    if profiles and not any(p.kind in ("text", "short_text") or text_name(p.column) for p in profiles.values()):
        kinds: dict[str, list[str]] = {}
        for p in profiles.values():
            kind = ("numbers" if p.kind in ("number", "rating") else "a few distinct values" if p.categorical
                    else f"{p.kind}s" if p.kind in ("date", "email", "url", "id") else "other values")
            kinds.setdefault(kind, []).append(p.column)
        held = "; ".join(f"{cols[0]!r} holds {kind}" if len(cols) == 1 else
                         f"{len(cols)} hold {kind} ({quoted(cols, shown=4)})" for kind, cols in kinds.items())
        of_its = f"of its {len(profiles)} columns, " if len(profiles) > 1 else ""
        report.error("no_text", f"{name} has no column of text to learn from: {of_its}{held}. The studio tunes "
                     "language and vision models, which learn from words or pictures, and these columns hold "
                     "neither.",
                     "Add a column of text (a description, a message, a note) for each row and choose it as the "
                     "text; or, for numbers alone, fit a tabular model (scikit-learn's gradient boosting, for "
                     "example) outside the studio.")
        return
    report.error("no_task", f"Could not tell what {name} is for from its columns ({_names(frame)}).",
                 "Name the columns (e.g. question/answer for chat, text/label for classification) or "
                 "choose the task and the columns yourself.")


def _check_group(found: Detection, report, name) -> None:
    """A group column serves the tasks that split rows (classifiers, regressors) and no other role."""
    column = found.columns.get(groups.ROLE)
    if column is None:
        return
    if found.task not in ("text-classification", "text-regression"):
        found.columns.pop(groups.ROLE)
        found.reasons.append(f"'{column}' is not used as the group: {found.task} keeps no groups apart.")
        return
    groups.refuse_shared_role(found.columns, column, report, name)


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
    # "Conversation ID" and "question_date" are about the conversation, not the conversation itself
    free = [c for c in frame.columns if c not in taken and head_word(c) not in METADATA_WORDS]
    if role == "messages":
        free = [c for c in free if _conversations_like(frame[c])]
    for pattern in NAMES[role]:
        for col in free:
            if header_key(col) == pattern:
                return col
    for pattern in NAMES[role]:
        for col in free:
            if pattern in header_key(col).split("_") and len(pattern) > 1:
                return col
    return None


def _conversations_like(values: pd.Series) -> bool:
    """Whether a column holds turn lists (or their JSON text), judged from its first filled values."""
    sample = [v for v in values.head(200).tolist() if v is not None and not (isinstance(v, float) and v != v)][:50]
    if not sample:
        return False
    listish = [hasattr(v, "__len__") and not isinstance(v, str) or str(v).lstrip()[:1] in ("[", "{") for v in sample]
    return sum(listish) >= len(sample) / 2


def _guess_task(frame, given, profiles, reasons) -> str | None:
    pairs = preference.looks_like_pairs(frame, given)  # before chat: "chosen" is also a usual response name
    if pairs is not None:
        chosen, rejected = pairs
        reasons.append(f"The task is preference tuning: '{chosen}' and '{rejected}' hold a preferred and a "
                       "rejected answer." if chosen and rejected else
                       "The task is preference tuning because you chose a chosen or rejected column.")
        return "preference"
    if set(given) & set(CHAT_ROLES):
        reasons.append("The task is chat because you chose chat columns.")
        return "chat"
    if set(given) & set(REGRESSION_ROLES):
        reasons.append("The task is text regression because you chose a target column.")
        return "text-regression"
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
    named = [p for p in profiles.values() if label_name(p.column) and p.categorical]
    if not named and find_turn_columns(frame, profiles) is not None:  # who spoke + what was said: a chat log
        return "chat"
    labels = [p for p in profiles.values() if label_name(p.column) or p.categorical]
    texts = [p for p in profiles.values() if p.kind in ("text", "short_text") or text_name(p.column)]
    numeric = regression.guess_task(profiles, [p for p in labels if p.categorical], texts, reasons)
    if numeric is not None:
        return numeric
    if labels and len(frame.columns) >= 2 and (texts or len(frame.columns) == 2):
        reasons.append("The task is text classification: some column holds text and another has few "
                       "distinct values, like classes.")
        return "text-classification"
    return None


def _fill_turns(frame, profiles, found: Detection) -> bool:
    """Take the speaker/content/conversation columns of a turn-per-row log; False when the table is not one."""
    cols = found.columns
    if {"messages", "prompt", "response"} & set(cols):
        return False
    turns = find_turn_columns(frame, profiles, taken=set(cols.values()))
    if turns is None:
        return False
    cols.setdefault("speaker", turns.speaker)
    cols.setdefault("content", turns.content)
    if turns.conversation and "conversation" not in cols:
        cols["conversation"] = turns.conversation
    found.reasons += turns.reasons
    return True


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
        if "input" not in cols and "prompt" in cols:
            col = _by_name(frame, "input", taken)
            if col is not None:
                cols["input"] = col
                taken.add(col)
                found.reasons.append(f"'{col}' is joined after '{cols['prompt']}' in the user turn (its name "
                                     "says it is context for the prompt).")
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
    _note_unused_labels(frame, found)


def _note_unused_labels(frame, found: Detection) -> None:
    """Chat uses only the turns: say so when a column named like a label (a FAQ's 'category') is left out."""
    used = set(found.columns.values())
    labels = [c for c in frame.columns if c not in used and label_name(c)]
    if labels:
        found.reasons.append(f"Not used: {', '.join(map(repr, labels))} (chat tuning learns the answers only); to "
                             f"classify the prompts by {labels[0]!r} instead, choose the text-classification task.")


# --- classification ---------------------------------------------------------------------------------------

def _fill_classification(frame, profiles: dict[str, Profile], found: Detection, report, name) -> None:
    cols = found.columns
    if "label" not in cols:
        taken = {cols.get("text"), cols.get(groups.ROLE)}
        col = _choose_label(profiles, taken, found, report, name)
        if col is not None:
            cols["label"] = col
    if "text" not in cols:
        col = _choose_text(profiles, {cols.get("label"), cols.get(groups.ROLE)}, found, report, name)
        if col is not None:
            cols["text"] = col
    _note_constants(profiles, cols, found)
    if "label" in cols and cols["label"] in profiles:
        regression.offer_other_reading(profiles[cols["label"]], found, "text-classification")
    missing = [r for r in ("text", "label") if r not in cols and r not in found.candidates]
    free_text = [p for p in profiles.values() if label_name(p.column) and p.kind in ("text", "short_text")]
    if "label" in missing and free_text:
        p = free_text[0]
        report.error("label_not_classes", f"{name}: '{p.column}' is named like a label but holds free text "
                     f"({p.distinct} different values in {p.filled} rows), not a few classes.", "For prompt -> "
                     "answer pairs choose the chat task (or name the columns prompt and response); for "
                     "classification choose the column that holds the classes as the label.")
        return
    if missing:
        report.error("missing_column", f"No {' or '.join(missing)} column found in {name} (columns: "
                     f"{_names(frame)}).", "Name the columns text and label, or choose them yourself.")


def _fill_regression(frame, profiles: dict[str, Profile], found: Detection, report, name) -> None:
    """The target (a column of numbers, ``core.data.regression``) and the text, as for classification."""
    cols = found.columns
    if "target" not in cols and "label" in cols:  # a label chosen for a regression task is its target
        cols["target"] = cols.pop("label")
    if "target" not in cols:
        col = regression.choose_target(profiles, {cols.get("text"), cols.get(groups.ROLE)}, found, report, name)
        if col is not None:
            cols["target"] = col
    if "target" in cols:
        regression.offer_other_reading(profiles[cols["target"]], found, "text-regression",
                                       regression.numbers(frame[cols["target"]]))
    if "text" not in cols:
        col = _choose_text(profiles, {cols.get("target"), cols.get(groups.ROLE)}, found, report, name)
        if col is not None:
            cols["text"] = col
        elif "target" in cols:
            report.error("missing_column", f"No text column found in {name} (columns: {_names(frame)}).",
                         "Name the column with the text 'text', or choose it yourself.")


def _choose_label(profiles, taken, found: Detection, report, name) -> str | None:
    """The one column that is the label, or None with an ``ambiguous_label`` problem naming the candidates.

    A usual label name decides when exactly one column has one; otherwise the columns of few values that do
    not look like metadata; a metadata-like column only when it is the only column of few values at all."""
    free = [p for p in profiles.values() if p.column not in taken]
    # a column named like text (Subject, Title, Notes) is text even when its values repeat
    plausible = [p for p in free if p.categorical and not text_name(p.column) and not text_name(p.column, True)]
    named = _distinct_classes([p for p in free if label_name(p.column) and _label_content(p)])
    topical = _distinct_classes([p for p in plausible if not p.metadata])
    meta = [p for p in plausible if p.metadata]
    explicit = [p for p in named if header_key(p.column) in ML_LABELS]
    if len(explicit) == 1:  # a column called "label" or "target" is the label
        named = explicit
    elif named:  # "sentiment" beside "airline": a usual name decides only when no other column could be classes
        named = _distinct_classes(named + [p for p in topical if not label_name(p.column)])
    if named:
        return _take(named, plausible, found, report, name,
                     lambda p: f"its name says so ('{label_name(p.column)}'); {p.distinct} distinct values")
    if topical:
        return _take(topical, meta, found, report, name,
                     lambda p: f"it has only {p.distinct} distinct values in {p.filled} rows, like classes, and no "
                               "other column does")
    if len(meta) == 1:  # the only candidate looks like metadata: train on it only when the user says so
        column = meta[0].column
        found.candidates["label"] = [column]
        flag = f'--set "data.columns.label={column}"' if " " in column else f"--set data.columns.label={column}"
        report.error("label_guess", f"{name}: the only column with few distinct values is {meta[0].describe()}, "
                     f"but {meta[0].metadata}, which is rarely what a model should predict; the studio will not "
                     "train on it without your say.", f"If that is what you want to predict, choose it as the label "
                     f"(in the page, in the 'label' list; on the command line, {flag}); otherwise add a column "
                     "with the classes.", options=[column])
        return None
    return _take(meta, [], found, report, name, lambda p: p.metadata)


def _take(candidates, others, found, report, name, why) -> str | None:
    """The only candidate, with the reason and the other columns considered; several: ``ambiguous_label``."""
    if len(candidates) > 1:
        _ambiguous(found, report, name, "label", candidates, [p for p in others if p.metadata], _label_why)
        return None
    if not candidates:
        return None
    chosen = candidates[0]
    found.reasons.append(f"'{chosen.column}' is the label: {why(chosen)}.")
    _note_others(found, chosen, others)
    return chosen.column


def _label_content(p: Profile) -> bool:
    """Whether a column named like a label holds values that can be classes (a 'score' of floats cannot)."""
    if header_key(p.column) in ML_LABELS:
        return p.kind not in ("text", "short_text") or header_key(p.column) in ("label", "labels", "class")
    return p.categorical


def _distinct_classes(candidates: list[Profile]) -> list[Profile]:
    """Candidates, with columns that split the rows into the same classes under other names (``label`` and
    ``label_text``, a code and its name) kept once: the one with words rather than numbers."""
    kept: list[Profile] = []
    for p in sorted(candidates, key=lambda p: p.kind == "rating"):
        if not any(p.partition is not None and p.partition == k.partition for k in kept):
            kept.append(p)
    return kept


def _label_why(p: Profile) -> str:
    why = p.describe()
    if label_name(p.column):
        why += f", named like a label ('{label_name(p.column)}')"
    return why


def _note_others(found: Detection, chosen: Profile, others: list[Profile]) -> None:
    others = [p for p in others if p.column != chosen.column]
    if not others:
        found.candidates["label"] = [chosen.column]
        return
    found.candidates["label"] = [chosen.column] + [p.column for p in others]
    listed = "; ".join(f"{p.describe()}{', ' + p.metadata if p.metadata else ''}" for p in others[:6])
    found.reasons.append(f"Other columns with few values were not taken as the label: {listed}.")


def _ambiguous(found, report, name, role, candidates, skipped, why) -> None:
    found.candidates[role] = [p.column for p in candidates]
    listed = "; ".join(why(p) for p in candidates[:8])
    also = ""
    if skipped:
        also = " Not considered, as they look like metadata: " + "; ".join(
            f"{p.column!r} ({p.metadata})" for p in skipped[:6]) + "."
    what = "predict" if role == "label" else "learn from"
    example = candidates[0].column
    flag = f'--set "data.columns.{role}={example}"' if " " in example else f"--set data.columns.{role}={example}"
    report.error(f"ambiguous_{role}", f"{name}: more than one column could be the {role}: {listed}. The studio "
                 f"will not guess which one you want to {what}.{also}",
                 f"Choose the {role} column: in the page, pick it in the '{role}' list; on the command line, add "
                 f"{flag} (with the column you mean).", options=found.candidates[role])


def _choose_text(profiles, taken, found: Detection, report, name) -> str | None:
    """The column with the text: the only free-text column, the one named like text, or a clearly longer one."""
    free = [p for p in profiles.values() if p.column not in taken]
    # long text is text whatever its name ("customer_message", "agent_notes"); short text named like
    # metadata ("customer_name") is not
    texts = [p for p in free if p.kind not in ("empty", "constant") and not (p.metadata and p.kind != "text")
             and (p.kind in ("text", "short_text") or text_name(p.column) or text_name(p.column, short=True))]
    if not texts:
        texts = [p for p in free if text_name(p.column) and p.kind not in ("empty", "constant")]
    if not texts:
        return None
    texts.sort(key=lambda p: -p.mean_length)
    if len(texts) == 1:
        chosen, why = texts[0], "it is the only column of free text"
    else:
        named = [p for p in texts if text_name(p.column)]
        if len(named) == 1:
            chosen, why = named[0], f"its name says so ('{text_name(named[0].column)}')"
        elif texts[0].mean_length >= CLEARLY_LONGER * texts[1].mean_length:
            chosen, why = texts[0], (f"it has by far the longest values ({texts[0].mean_length:.0f} characters "
                                     "on average)")
        else:
            _ambiguous(found, report, name, "text", texts, [],
                       lambda p: f"{p.column!r} ({p.mean_length:.0f} characters on average)")
            return None
    found.reasons.append(f"'{chosen.column}' is the text: {why}.")
    others = [p for p in texts if p is not chosen]
    found.candidates["text"] = [chosen.column] + [p.column for p in others]
    if others:
        found.reasons.append(f"Not used as text: {', '.join(repr(p.column) for p in others[:6])} (choose the text "
                             "column to use another one).")
    return chosen.column


def _note_constants(profiles, cols, found: Detection) -> None:
    used = set(cols.values())
    constant = [p for p in profiles.values() if p.kind == "constant" and p.column not in used and p.filled > 1]
    if constant:
        found.reasons.append("Ignored, as they hold the same value in every row: " + quoted(
            [f"{p.column} = {p.examples[0]}" for p in constant]) + ".")
