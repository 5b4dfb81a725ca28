"""Documents to split, checked, summarised datasets of text sections (``load_data`` for ``task: text-completion``).

Text is held out by document when there are enough documents (so the held-out perplexity is measured on
documents the model never read), else by sections of each document. ``train``/``validation`` hold ``text`` (a
section of about one block), ``document`` and ``start`` (its first character in the document); the recipe packs
them into blocks with ``core.data.blocks``, as the summary counts them here.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Callable

import numpy as np
import pandas as pd

from . import blocks, checks
from .split import default_fraction, split_indices

MIN_DOCUMENTS_TO_HOLD_OUT = 4  # with fewer documents, sections of every document are held out instead
FEW_TOKENS = 5_000  # below this the model can only memorise, not learn a domain's language
MEANINGFUL_BLOCKS = 4
EXAMPLE_CHARS = 1200


def assemble(prepared, source, validation_path, fraction: float | None, seed: int, tokenizer, max_length,
             read: Callable) -> None:
    """Check, split and summarise ``source``'s documents into ``prepared`` (problems land on its report).

    Args:
        prepared: the ``PreparedData`` being built.
        source: the documents (rows from ``documents.read_documents``).
        validation_path: documents to hold out instead of a split, or None.
        fraction: the share of text held out (chosen from the size when None).
        seed: fixes the split.
        tokenizer: the model's tokenizer: sections are sized and blocks counted with it; characters / 4 without.
        max_length: tokens per training block (``blocks.DEFAULT_BLOCK_TOKENS`` when None).
        read: reads another file or folder of documents (a ``Source`` or None).
    """
    report, name = prepared.report, source.name
    docs = checks.drop_duplicates(source.rows, report, "file", name).reset_index(drop=True)
    length = max_length or blocks.DEFAULT_BLOCK_TOKENS
    count = blocks.token_counter(tokenizer)
    if validation_path:
        train, validation = _with_file(prepared, docs, validation_path, read, length, count)
    elif len(docs) >= MIN_DOCUMENTS_TO_HOLD_OUT:
        train, validation = _by_document(prepared, docs, fraction, seed, length, count)
    else:
        train, validation = _by_section(prepared, docs, fraction, seed, length, count)
    if train is not None and (train.empty or validation.empty) and report.ok:
        report.error("too_little_text", f"{name} is too short to keep some text apart for measuring: it makes "
                     f"{len(train) + len(validation)} section(s) of about {length} tokens.", "Add more text (a "
                     "few pages at least), or give a separate validation file.")
    if not report.ok or train is None:
        prepared.summary["rows"] = {"usable": int(len(docs))}
        return
    prepared.preview = _preview(docs, train, validation)
    _statistics(prepared, docs, train, validation, tokenizer, length, source)
    prepared.train, prepared.validation = dataset(train), dataset(validation)


def _with_file(prepared, docs, path, read, length, count):
    report = prepared.report
    other = read(path)
    if other is None or other.rows.empty:
        if report.ok:
            report.error("no_rows", f"The validation documents {path.name} hold no text.", "Give documents with "
                         "text in them.")
        return None, None
    val_docs = checks.drop_duplicates(other.rows, report, "file", other.name)
    val_docs = checks.drop_leakage(docs, val_docs, report, "file", other.name).reset_index(drop=True)
    prepared.summary["validation"] = {"source": "file", "path": str(path)}
    prepared.detection.append(f"Held-out text comes from {path.name} ({len(val_docs)} document(s)).")
    return sectioned(docs, length, count), sectioned(val_docs, length, count)


def _by_document(prepared, docs, fraction, seed, length, count):
    sizes = docs["text"].str.len().to_numpy()
    fraction = fraction or default_fraction(len(docs))
    held = held_out_documents(sizes, fraction, seed)
    mask = np.zeros(len(docs), dtype=bool)
    mask[held] = True
    names = docs["document"][mask].tolist()
    share = sizes[mask].sum() / max(sizes.sum(), 1)
    prepared.summary["validation"] = {"source": "split", "by": "document", "fraction": round(float(share), 4),
                                      "seed": seed, "documents": names}
    prepared.detection.append(f"Held out {len(names)} whole document(s) ({share:.0%} of the text: "
                              f"{', '.join(names[:5])}{', ...' if len(names) > 5 else ''}), so perplexity is "
                              "measured on documents the model never read.")
    return sectioned(docs[~mask], length, count), sectioned(docs[mask], length, count)


def held_out_documents(sizes: np.ndarray, fraction: float, seed: int) -> list[int]:
    """Positions of the documents to hold out: taken in a seeded random order until about ``fraction`` of the
    text, skipping a document that would overshoot it by a quarter; always at least one, never all.

    Args:
        sizes: characters per document.
        fraction: the share of text wanted in validation.
        seed: fixes the order.
    """
    goal = fraction * sizes.sum()
    held, got = [], 0
    for i in np.random.default_rng(seed).permutation(len(sizes)).tolist():
        if got >= goal or len(held) == len(sizes) - 1:
            break
        if got + sizes[i] <= 1.25 * goal:
            held.append(i)
            got += sizes[i]
    return held or [int(np.argmin(sizes))]


def _by_section(prepared, docs, fraction, seed, length, count):
    rows = sectioned(docs, length, count)
    fraction = fraction or default_fraction(len(rows))
    train_pos, val_pos = split_indices(len(rows), fraction, seed) if len(rows) > 1 else (np.arange(len(rows)), [])
    prepared.summary["validation"] = {"source": "split", "by": "section", "fraction": round(fraction, 4),
                                      "seed": seed}
    prepared.detection.append(f"With {len(docs)} document(s), {len(val_pos)} of {len(rows)} sections (about "
                              f"{length} tokens each) were held out at random to measure perplexity; with "
                              f"{MIN_DOCUMENTS_TO_HOLD_OUT} or more documents whole documents are held out.")
    return rows.iloc[train_pos].reset_index(drop=True), rows.iloc[val_pos].reset_index(drop=True)


def sectioned(docs: pd.DataFrame, length: int, count=None) -> pd.DataFrame:
    """Every document cut into sections of about ``length`` tokens: ``text``, ``document``, ``start``."""
    out = {"text": [], "document": [], "start": []}
    for name, text in zip(docs["document"], docs["text"]):
        for start, piece in blocks.sections(text, length, count):
            out["text"].append(piece)
            out["document"].append(name)
            out["start"].append(start)
    return pd.DataFrame(out)


def _statistics(prepared, docs, train, validation, tokenizer, length, source) -> None:
    summary = prepared.summary
    summary["rows"] = {"read": int(source.read), "train": int(len(train)), "validation": int(len(validation))}
    formats = Counter(docs["format"])
    words = int(docs["text"].str.split().str.len().sum())
    summary["documents"] = [{"name": d, "format": f, "pages": None if p != p else p, "characters": len(t)}
                            for d, f, p, t in zip(docs["document"], docs["format"], docs["pages"], docs["text"])]
    prepared.detection.insert(0, f"Read {len(docs)} document(s) ({', '.join(f'{n} {f}' for f, n in formats.items())}"
                              f"): {words:,} words.")
    summary["example"] = {"document": train["document"].iloc[0], "text": train["text"].iloc[0][:EXAMPLE_CHARS]}
    if tokenizer is None:
        return
    packed = {side: blocks.pack(tokenizer, stretches(rows), length) for side, rows in
              (("train", train), ("validation", validation))}
    summary["blocks"] = {"length": length, "train": len(packed["train"].blocks),
                         "validation": len(packed["validation"].blocks), "train_tokens": packed["train"].tokens,
                         "validation_tokens": packed["validation"].tokens,
                         "dropped_tokens": packed["train"].dropped + packed["validation"].dropped}
    if packed["train"].blocks:
        first = packed["train"].blocks[0]  # exactly what the model reads first
        summary["example"].update({"rendered": tokenizer.decode(first), "tokens": len(first)})
    b = summary["blocks"]
    summary["rows"].update({"train": b["train"], "validation": b["validation"], "unit": "block"})
    prepared.detection.append(f"Training text: {b['train_tokens']:,} tokens in {b['train']} blocks of {length} "
                              f"tokens; held out: {b['validation_tokens']:,} tokens in {b['validation']} blocks "
                              "(documents end with the end-of-text token; blocks are cut from the joined text, "
                              "so no position is padding).")
    _warn_small(prepared, b, source.name)


def _warn_small(prepared, counts: dict, name: str) -> None:
    report = prepared.report
    if counts["train_tokens"] < FEW_TOKENS:
        report.warn("little_text", f"{name} holds only {counts['train_tokens']:,} tokens of training text: the "
                    "model can memorise it but will hardly learn the domain's language from it.",
                    "Add more documents: tens of thousands of tokens (a few dozen pages) or more.")
    if counts["validation"] < MEANINGFUL_BLOCKS:
        report.warn("tiny_validation", f"{name}: only {counts['validation']} block(s) are held out, so the "
                    "perplexity measured on them moves a lot from run to run.", "Add documents, or give a separate "
                    "validation file of a few pages.")


def stretches(rows: pd.DataFrame) -> list[str]:
    """The rows' contiguous stretches of text, as ``blocks.stretches`` joins them."""
    return blocks.stretches(rows["document"].tolist(), rows["start"].tolist(), rows["text"].tolist())


def _preview(docs, train, validation) -> pd.DataFrame:
    in_train, in_val = set(train["document"]), set(validation["document"])
    split = ["both" if d in in_train and d in in_val else "validation" if d in in_val else "train"
             for d in docs["document"]]
    return pd.DataFrame({"document": docs["document"], "format": docs["format"],
                         "pages": docs["pages"], "words": docs["text"].str.split().str.len(),
                         "split": split})


def dataset(rows: pd.DataFrame):
    """A ``datasets.Dataset`` of sections: ``text``, ``document``, ``start``, fingerprinted from its content."""
    import datasets  # heavy; imported where used
    import pyarrow as pa

    features = datasets.Features({"text": datasets.Value("string"), "document": datasets.Value("string"),
                                  "start": datasets.Value("int64")})
    digest = hashlib.sha256()
    for document, start, text in zip(rows["document"], rows["start"], rows["text"]):
        digest.update(f"{document}\x1f{start}\x1f{text}\x1e".encode("utf-8", "surrogatepass"))
    schema = features.arrow_schema
    table = pa.table({k: pa.array(rows[k].tolist(), type=schema.field(k).type) for k in ("text", "document", "start")},
                     schema=schema)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features),
                            fingerprint=digest.hexdigest()[:16])
