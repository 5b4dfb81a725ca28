"""Class names as the user meant them: spelling variants merged, several labels in one cell detected.

``Billing``, ``billing`` and ``BILLING `` are one class; so are ``1`` and ``1.0``, ``cat`` and ``cats``,
``customer_service`` and ``customer service``. Each merge is listed in a warning, so nothing is merged
without the user seeing it. A cell holding several known labels (``billing, shipping`` or ``["a", "b"]``)
is multi-label, which the classifiers do not support yet.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pandas as pd

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SEPARATORS = (";", "|", ",", "/", " & ", " + ")
_QUOTED = re.compile(r"""'([^']*)'|"([^"]*)\"""")


@dataclass
class LabelFixes:
    """What normalising a label column found.

    ``mapping`` sends every original value to its class name; ``merges`` lists, per class name that
    absorbed variants, each variant with its row count; ``multi`` maps a multi-label cell to its labels.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    merges: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)
    multi: dict[str, list[str]] = field(default_factory=dict)


def normalise_labels(labels: pd.Series) -> LabelFixes:
    """Find the class name of every distinct label (variants merged) and the multi-label cells.

    Args:
        labels: stripped, non-empty label strings, one per row.
    """
    counts = Counter(labels.tolist())
    fixes = LabelFixes()
    single = {}
    for value in counts:
        parts = _list_items(value)
        if parts is not None and len(parts) == 1:
            single[value] = parts[0]
        elif parts is not None and len(parts) > 1:
            fixes.multi[value] = parts
        else:
            single[value] = unicodedata.normalize("NFC", value)  # macOS writes "é" as "e" + an accent
    _find_separated(single, counts, fixes)
    groups: dict[str, list[str]] = defaultdict(list)
    keys = {value: label_key(name) for value, name in single.items()}
    keys = _merge_plurals(keys)
    for value, key in keys.items():
        groups[key].append(value)
    for key, values in groups.items():
        name = _canonical([single[v] for v in values], [counts[v] for v in values])
        for value in values:
            fixes.mapping[value] = name
        if len({single[v] for v in values} | {name}) > 1 or any(single[v] != v for v in values):
            shown = sorted(((v, counts[v]) for v in values), key=lambda vc: -vc[1])
            fixes.merges.append((name, shown))
    fixes.merges.sort(key=lambda m: -sum(c for _, c in m[1]))
    return fixes


def label_key(value: str) -> str:
    """The form labels are compared in: case-folded, spaces/underscores/dashes as one space, without quotes or
    end punctuation, numbers as numbers.

    Args:
        value: a label.
    """
    text = value.strip()
    if _NUMBER.match(text):
        number = float(text)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return re.sub(r"[\s_\-]+", " ", text.casefold()).strip(" .,;:!?\"'")


def merges_text(merges, shown: int = 6) -> str:
    """``'Billing' (12), 'billing' (3) -> 'Billing'; ...`` for messages.

    Args:
        merges: ``LabelFixes.merges``.
    """
    parts = []
    for name, variants in merges[:shown]:
        listed = ", ".join(f"{v!r} ({c})" for v, c in variants)
        parts.append(f"{listed} -> {name!r}")
    more = f"; and {len(merges) - shown} more" if len(merges) > shown else ""
    return "; ".join(parts) + more


def _list_items(value: str) -> list[str] | None:
    """The items of a cell written as a list (``["a", "b"]``, ``['a']``); None when it is not one."""
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        items = [a or b for a, b in _QUOTED.findall(text)] or [p for p in text[1:-1].split(",")]
    if not isinstance(items, list):
        return None
    items = [str(i).strip() for i in items if str(i).strip()]
    return items or None


def _find_separated(single: dict[str, str], counts: Counter, fixes: LabelFixes) -> None:
    """Cells like ``billing, shipping`` whose every part is also a label somewhere else are multi-label.

    A part must occur outside this cell (alone or in another combination): ``Yes, definitely`` stays one
    class unless ``definitely`` is a label elsewhere, and ``Returns/Refunds`` stays one class.
    """
    whole = {label_key(v) for v in single.values()}
    for sep in _SEPARATORS:
        split = {v: [p.strip() for p in name.split(sep) if p.strip()] for v, name in single.items() if sep in name}
        split = {v: parts for v, parts in split.items() if len(parts) > 1}
        if not split:
            continue
        seen_in: dict[str, set] = defaultdict(set)
        for v, parts in split.items():
            for part in parts:
                seen_in[label_key(part)].add(v)
        for v, parts in split.items():
            if all(label_key(p) in whole or len(seen_in[label_key(p)]) > 1 for p in parts):
                fixes.multi[v] = parts
                single.pop(v)


def _merge_plurals(keys: dict[str, str]) -> dict[str, str]:
    """``cats`` joins ``cat`` and ``boxes`` joins ``box`` when both forms are present."""
    present = set(keys.values())
    out = {}
    for value, key in keys.items():
        for cut in (1, 2):
            stem = key[:-cut]
            ending = key[-cut:]
            if ending in ("s", "es") and len(stem) >= 3 and stem in present and not stem[-1].isdigit() \
                    and not key.endswith("ss"):
                key = stem
                break
        out[value] = key
    return out


def _canonical(names: list[str], counts: list[int]) -> str:
    """The spelling most rows use; for numbers the plain integer form; ties go to the shorter, then first."""
    numeric = [n for n in names if _NUMBER.match(n)]
    if numeric and len(numeric) == len(names):
        return label_key(names[0])
    totals: Counter = Counter()
    for name, count in zip(names, counts):
        totals[name] += count
    return sorted(totals, key=lambda n: (-totals[n], len(n), n))[0]


_COPY_SUFFIX = re.compile(r"^[\s_\-.]*(\(\d+\)|copy|kopie|copie|\d+|old|new|v\d+|final)$", re.IGNORECASE)
MAX_COMPARED = 300  # classes; more than that are not compared pairwise


def similar_names(names: list[str]) -> list[tuple[str, str]]:
    """Pairs of class names that look like one class written two ways: a typo (``shiping``/``shipping``), an
    abbreviation (``neg``/``negative``) or a copy (``cat``/``cat (1)``, ``dogs copy``). Numbers never pair.

    Args:
        names: the class names (already merged for case, spacing and plurals).
    """
    words = [n for n in names if not _NUMBER.match(n)][:MAX_COMPARED]
    keys = {n: label_key(n) for n in words}
    pairs = []
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            if _look_alike(keys[a], keys[b]):
                pairs.append((a, b))
    return pairs


def _look_alike(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    if len(short) < 3 or re.sub(r"\d+", "#", short) == re.sub(r"\d+", "#", long):
        return False  # 'cat0' and 'cat1', 'tier1' and 'tier10' are numbered classes, not typos
    if long.startswith(short):
        rest = long[len(short):]
        return bool(_COPY_SUFFIX.match(rest)) or (" " not in long and len(short) <= 4)
    return len(short) >= 4 and len(long) - len(short) <= 1 and _one_edit(short, long)


def _one_edit(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with one letter changed, added, removed or two neighbours swapped."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and (a[diff[0]], a[diff[1]]) == (b[diff[1]], b[diff[0]])
        return len(diff) == 1 or swapped
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]
