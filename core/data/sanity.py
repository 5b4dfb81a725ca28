"""The last look before training: do the classes, rows and columns look like what the user meant?

Each check catches a misreading that would otherwise train without a word: split folders taken as classes,
a label that is really the text, a text column of identifiers, answers that are all the same, or so few
validation examples that any accuracy means nothing.
"""
from __future__ import annotations

import pandas as pd

from .columns import PROFILE_ROWS, profile_columns
from .folders import split_of
from .report import DataReport, quoted

MEANINGFUL_VALIDATION = 20


def check_understanding(task: str, rows: pd.DataFrame, labels: list[str] | None, columns: dict[str, str],
                        report: DataReport, name: str) -> None:
    """Add a problem for every sign that the data was read differently from what the user meant.

    Args:
        task: the task.
        rows: the usable training rows (before the split).
        labels: the class names, None for chat.
        columns: role -> column (for tables).
        report: collects problems.
        name: the file name, for messages.
    """
    if task == "chat":
        _check_chat(rows, report, name)
        return
    _check_split_names(task, labels or [], columns, report, name)
    if task == "text-classification":
        _check_text(rows, columns, report, name)


def check_validation_size(task: str, count: int, classes: int, report: DataReport, name: str) -> None:
    """Warn when the validation split is too small for its scores to mean anything.

    Args:
        task: the task.
        count: validation rows.
        classes: the number of classes (0 for chat).
        report: collects problems.
        name: the data, for messages.
    """
    if task == "chat" or count >= MEANINGFUL_VALIDATION:
        return
    step = 100 / max(count, 1)
    report.warn("tiny_validation", f"{name}: only {count} example(s) are held out for validation, so accuracy "
                f"moves in steps of {step:.0f} % and even 100 % would mean little"
                f"{f' with {classes} classes' if classes else ''}.", "Add examples (at least a few dozen per "
                "class) before trusting the scores.")


def _check_split_names(task, labels, columns, report, name) -> None:
    splits = [c for c in labels if split_of(c)]
    if len(splits) < 2 or not any(split_of(c) == "train" for c in splits):
        return  # "dev" and "test" alone can be real classes (of a bug tracker, say); with "train" they are not
    if task == "image-classification":
        fix = ("Put one folder per class inside each split folder (train/cat, train/dog, test/cat, ...), or "
               "drop the split folders and keep one folder per class.")
        where = "folders"
    else:
        fix = (f"The label column '{columns.get('label')}' says which split each row belongs to; choose the column "
               "that holds the classes as the label.")
        where = "label values"
    report.error("split_names_as_classes", f"{name}: the classes would be {quoted(labels)}, but "
                 f"{quoted(splits)} are the names of data splits (training, validation, test), not classes: the "
                 f"model would learn which split a {'picture' if where == 'folders' else 'row'} came from.", fix)


def _check_text(rows: pd.DataFrame, columns: dict[str, str], report, name) -> None:
    head = rows.head(PROFILE_ROWS)
    text, label = head["text"], head["label_name"]
    if len(rows) >= 2 and (rows["text"] == rows["text"].iloc[0]).all():
        report.error("constant_text", f"{name}: the text column '{columns['text']}' holds the same text "
                     f"({text.iloc[0][:60]!r}) in every row; there is nothing to learn from.",
                     "Choose the column that holds the text of each example.")
        return
    if len(rows) >= 2 and (text == label).mean() >= 0.5:
        report.error("label_is_text", f"{name}: in most rows the label equals the text, so the text and label "
                     f"columns ('{columns['text']}', '{columns['label']}') are the same data.",
                     "Choose different columns for the text and the label.")
        return
    profiles = profile_columns(pd.DataFrame({"text": text, "label": label}))
    if profiles["label"].kind == "text" and profiles["text"].categorical:
        report.error("swapped_columns", f"{name}: the label column '{columns['label']}' holds sentences and the "
                     f"text column '{columns['text']}' holds a few short values ({quoted(profiles['text'].examples)}): "
                     "the two look swapped.", f"Choose '{columns['label']}' as the text and '{columns['text']}' as "
                     "the label (or rename the columns in the file).")
        return
    profile = profiles["text"]
    if profile.kind in ("number", "id", "date", "email", "url", "rating", "boolean"):
        report.warn("text_not_text", f"{name}: the text column '{columns['text']}' holds "
                    f"{_kind_words(profile.kind)} (e.g. {quoted(profile.examples[:3])}), not sentences.",
                    "Choose the column with the words to classify as the text.")
    label_profile = profiles["label"]
    if label_profile.kind in ("date", "email", "url", "id"):
        report.warn("label_looks_like_metadata", f"{name}: the label column '{columns['label']}' holds "
                    f"{_kind_words(label_profile.kind)} (e.g. {quoted(label_profile.examples[:3])}), not classes.",
                    "Choose the column with the classes as the label.")


def _kind_words(kind: str) -> str:
    return {"number": "numbers", "id": "identifiers", "date": "dates or times", "email": "e-mail addresses",
            "url": "links", "rating": "small numbers", "boolean": "yes/no values"}.get(kind, kind)


def _check_chat(rows: pd.DataFrame, report, name) -> None:
    if len(rows) < 5:
        return
    answers = rows["messages"].map(lambda turns: turns[-1]["content"] if turns else "")
    prompts = rows["messages"].map(lambda turns: next((t["content"] for t in turns if t["role"] == "user"), ""))
    if answers.nunique() == 1:
        report.warn("constant_response", f"{name}: every conversation ends with the same answer "
                    f"({answers.iloc[0][:60]!r}); the model would learn to say only that.",
                    "Check that the response column holds the answers.")
    elif (answers == prompts).mean() >= 0.5:
        report.warn("response_copies_prompt", f"{name}: in most rows the answer is the prompt itself; the model "
                    "would learn to repeat the question.", "Check that the prompt and response columns differ.")
