"""Preference pairs from normalised rows to split, checked, summarised datasets (``load_data`` for
``task: preference``).

The split is grouped by prompt: pairs that answer the same prompt stay on one side, so the held-out preference
accuracy is measured on prompts the model never trained on. A separate validation file loses the pairs whose
prompt is also in training (leakage), said in a warning.

``train``/``validation`` hold ``prompt`` (role/content turns ending with the user's), ``chosen`` and ``rejected``
(the two final answers).
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import pandas as pd

from . import checks, preference, sanity
from .report import describe_rows
from .split import default_fraction, split_indices
from .stats import length_summary, render_chat, token_lengths

PREVIEW_ROWS = 20
FEW_PAIRS = 20


def assemble(prepared, source, validation_path, fraction: float | None, seed: int, tokenizer, max_length,
             read: Callable) -> None:
    """Check, split and summarise ``source``'s pairs into ``prepared`` (problems land on its report).

    Args:
        prepared: the ``PreparedData`` being built (task, columns and detection already set).
        source: the training file's ``normalise.Source`` (rows from ``preference.pair_rows``).
        validation_path: a separate file of pairs to hold out instead of a split, or None.
        fraction: the share of prompts held out (chosen from the size when None).
        seed: fixes the split and the token-length sample.
        tokenizer: the model's tokenizer (token lengths, truncation, the rendered example), or None.
        max_length: the training max length; longer pairs are counted as truncated.
        read: reads another file the same way as the training file (a ``Source`` or None).
    """
    report, name, unit = prepared.report, source.name, source.unit
    train = checks.drop_duplicates(source.rows, report, unit, name).reset_index(drop=True)
    preference.check_pairs(train, report, unit, name)
    validation = _validation_file(prepared, train, validation_path, read) if validation_path else None
    if len(train) < 2 and validation is None:
        report.error("too_few_rows", f"{name} has only {len(train)} usable pair(s).",
                     "Add pairs: a few hundred give reliable results, a few dozen at the very least.")
    elif len(train) < FEW_PAIRS:
        report.warn("few_rows", f"{name} has only {len(train)} usable pairs.",
                    "Add more pairs; a few hundred give far more reliable results.")
    if not report.ok:
        prepared.summary["rows"] = {"usable": int(len(train))}
        return
    prepared.preview = preview(train)
    train, validation = _split(prepared, train, validation, fraction, seed, validation_path)
    if len(validation) < sanity.MEANINGFUL_VALIDATION:
        report.warn("tiny_validation", f"{name}: only {len(validation)} pair(s) are held out, so the preference "
                    f"accuracy moves in steps of {100 / max(len(validation), 1):.0f} % and means little.",
                    "Add pairs (a few hundred), or give a separate validation file of pairs.")
    _statistics(prepared, train, validation, tokenizer, max_length, seed, source)
    prepared.train, prepared.validation = dataset(train), dataset(validation)


def _validation_file(prepared, train: pd.DataFrame, path, read) -> pd.DataFrame | None:
    report = prepared.report
    other = read(path)
    if other is None or other.rows.empty:
        if report.ok:
            report.error("no_rows", f"The validation file {path.name} has no usable pairs.", "Fill it in.")
        return None
    prepared.detection.append(f"Validation pairs come from {path.name} ({len(other.rows)} pairs).")
    rows = checks.drop_duplicates(other.rows, report, other.unit, other.name)
    return checks.drop_leakage(train, rows, report, other.unit, other.name).reset_index(drop=True)


def _split(prepared, train, validation, fraction, seed, validation_path):
    """Training and validation pairs: the file's, or a seeded split of the prompts."""
    if validation is not None:
        prepared.summary["validation"] = {"source": "file", "path": str(validation_path)}
        return train, validation
    prompts = pd.factorize(train["_leak"])[0]
    fraction = fraction or default_fraction(int(prompts.max()) + 1)
    train_groups, val_groups = split_indices(int(prompts.max()) + 1, fraction, seed)
    held_out = np.isin(prompts, val_groups)
    prepared.summary["validation"] = {"source": "split", "fraction": round(fraction, 4), "seed": seed,
                                      "grouped_by": "prompt"}
    if len(train_groups) < len(train) - int(held_out.sum()):
        prepared.detection.append("Pairs that share a prompt were kept on the same side of the split, so every "
                                  "held-out prompt is new to the model.")
    return train[~held_out].reset_index(drop=True), train[held_out].reset_index(drop=True)


def _statistics(prepared, train, validation, tokenizer, max_length, seed, source) -> None:
    summary = prepared.summary
    summary["rows"] = {"read": int(source.read), "train": int(len(train)), "validation": int(len(validation))}
    summary["pairs"] = {
        "prompts": int(train["_leak"].nunique()),
        "chosen_longer": round(float((train["chosen"].str.len() > train["rejected"].str.len()).mean()), 4),
        "multi_turn": int(sum(sum(t["role"] == "user" for t in p) > 1 for p in train["prompt"])),
    }
    first = train.iloc[0]
    summary["example"] = {"prompt": first["prompt"], "chosen": first["chosen"], "rejected": first["rejected"]}
    if tokenizer is None:
        return
    chosen, rejected = conversations(train, "chosen"), conversations(train, "rejected")
    rendered, templated = render_chat(tokenizer, [chosen[0], rejected[0]])
    summary["example"].update({"rendered_chosen": rendered[0], "rendered_rejected": rendered[1],
                               "chat_template": templated})
    long_c, positions, _ = token_lengths(tokenizer, "chat", chosen, seed)
    long_r, _, _ = token_lengths(tokenizer, "chat", rejected, seed)
    lengths = np.maximum(long_c, long_r)
    summary["token_lengths"] = length_summary(lengths, len(train))
    if max_length:
        _truncation(prepared, lengths, train["_row"].to_numpy()[positions], len(train), max_length, source)


def _truncation(prepared, lengths, rows, total, max_length, source) -> None:
    over = lengths > max_length
    sampled = len(lengths) < total
    count = int(round(over.mean() * total)) if sampled else int(over.sum())
    prepared.summary["truncated"] = {"max_length": int(max_length), "count": count, "estimated": sampled}
    if count:
        shown = rows[over].tolist()
        prepared.report.warn("too_long", f"{count:,} pairs are longer than {max_length} tokens with the chat "
                             f"template applied, and their answers would be cut short, e.g. "
                             f"{describe_rows(shown, source.unit)}.", f"Raise the max length (the longest is "
                             f"{int(lengths.max())} tokens) or shorten those answers.", rows=shown)


def conversations(rows: pd.DataFrame, side: str) -> list[list[dict]]:
    """Each pair's prompt followed by its ``side`` (``chosen`` or ``rejected``) answer, as one conversation."""
    return [list(p) + [{"role": "assistant", "content": a}] for p, a in zip(rows["prompt"], rows[side])]


def preview(rows: pd.DataFrame) -> pd.DataFrame:
    """The first pairs as a table for the page: row, prompt (the last user turn), chosen, rejected."""
    head = rows.head(PREVIEW_ROWS)
    return pd.DataFrame({"row": head["_row"].tolist(), "prompt": [p[-1]["content"] for p in head["prompt"]],
                         "chosen": head["chosen"].tolist(), "rejected": head["rejected"].tolist()})


def dataset(rows: pd.DataFrame):
    """A ``datasets.Dataset`` of pairs: ``prompt`` (turns), ``chosen`` and ``rejected`` (text), built straight from
    Arrow and fingerprinted from the pairs' keys (as the loader's datasets are)."""
    import datasets  # heavy; imported where used
    import pyarrow as pa

    turn = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    features = datasets.Features({"prompt": [turn], "chosen": datasets.Value("string"),
                                  "rejected": datasets.Value("string")})
    columns = {"prompt": [list(p) for p in rows["prompt"]], "chosen": rows["chosen"].tolist(),
               "rejected": rows["rejected"].tolist()}
    schema = features.arrow_schema
    table = pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in columns.items()}, schema=schema)
    digest = hashlib.sha256("\x1e".join(rows["_key"].tolist()).encode("utf-8", "surrogatepass")).hexdigest()
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features),
                            fingerprint=digest[:16])
