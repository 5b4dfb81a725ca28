"""Unseen real data for measuring preference tuning and domain adaptation (not the bundled examples).

Both sets come from real text that ships with Python itself (the Python Software Foundation licence), so they
build offline, the same on every machine with the same Python:

- preference pairs from the standard library's docstrings: "What does the Python function os.path.abspath do?",
  chosen: the first sentence of its docstring; rejected: the first sentence of another function's docstring from
  the same module (a real, plausible, wrong answer). The modules are split between training and test, so the test
  asks about functions of modules the model never saw in training; a test pair whose chosen or rejected sentence is
  also in a training pair (one function re-exported under another module's name) is left out.
- documents from the language reference topics (``pydoc_data.topics``, what ``help("if")`` prints): each topic is
  a document; the documents are split into training and test documents.

    .venv/bin/python scripts/real_tuning_sets.py OUT_DIR
"""
from __future__ import annotations

import csv
import importlib
import inspect
import random
import re
import sys
from pathlib import Path

TRAIN_MODULES = ["os.path", "shutil", "string", "textwrap", "json", "re", "math", "statistics", "random",
                 "itertools", "functools", "operator", "heapq", "bisect", "glob", "fnmatch", "tempfile", "base64",
                 "hashlib", "zlib", "gzip", "csv", "datetime", "calendar", "time", "copy", "pprint", "difflib",
                 "html", "urllib.parse", "ipaddress", "uuid", "secrets", "struct", "array", "collections",
                 "dataclasses", "inspect", "keyword", "locale", "platform", "pathlib", "posixpath", "stat",
                 "sysconfig", "token", "types", "typing", "warnings", "weakref", "zipfile", "tarfile", "shlex",
                 "socket", "ssl", "subprocess", "threading", "traceback", "unicodedata", "codecs", "contextlib",
                 "email.utils", "http.cookies", "logging", "mimetypes", "numbers", "quopri", "sched", "select",
                 "signal", "site", "smtplib", "sqlite3", "string", "binascii", "cmath", "colorsys", "decimal",
                 "fractions", "gettext", "graphlib", "imghdr", "linecache", "netrc", "optparse", "pickle",
                 "pkgutil", "py_compile", "queue", "reprlib", "runpy", "selectors", "shelve", "statistics",
                 "textwrap", "timeit", "tokenize", "wave", "xml.sax.saxutils", "zipimport", "filecmp", "os"]
MAX_CHARS = 110  # short answers keep a CPU run short


def first_sentence(doc: str | None) -> str | None:
    """The docstring's first sentence, when it reads as a description (not a signature or a bare name)."""
    if not doc:
        return None
    text = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = (match.group(1) if match else text).strip()
    if len(sentence) < 20 or len(sentence) > MAX_CHARS or "(" in sentence[:15] or not sentence[0].isupper():
        return None
    return sentence


def functions(module_name: str) -> list[tuple[str, str]]:
    """(qualified name, description) of a module's public functions with a usable docstring."""
    try:
        module = importlib.import_module(module_name)
    except Exception:  # a module missing on this Python is left out
        return []
    out, seen = [], set()
    for name, value in sorted(vars(module).items()):
        if name.startswith("_") or not callable(value) or inspect.isclass(value):
            continue
        sentence = first_sentence(getattr(value, "__doc__", None))
        if sentence and sentence not in seen:
            seen.add(sentence)
            out.append((f"{module_name}.{name}", sentence))
    return out


QUESTIONS = ["What does the Python function {f} do?", "What is {f} for?", "Explain {f} in one sentence.",
             "In Python, what does {f} do?"]


def preference_rows(modules: list[str], rng: random.Random) -> list[tuple[str, str, str]]:
    rows = []
    for module in modules:
        found = functions(module)
        if len(found) < 3:
            continue
        for name, sentence in found:
            other = rng.choice([s for n, s in found if n != name])
            rows.append((rng.choice(QUESTIONS).format(f=name), sentence, other))
    return rows


def unseen_rows(rows: list[tuple[str, str, str]], seen: set[str]) -> list[tuple[str, str, str]]:
    """The test pairs whose chosen and rejected answers are both absent from the training pairs (a module that
    re-exports another's functions, ``os.path`` being ``posixpath``, would otherwise test what was trained)."""
    return [row for row in rows if row[1] not in seen and row[2] not in seen]


def write_pairs(out: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    modules = sorted(set(TRAIN_MODULES))
    rng.shuffle(modules)
    cut = int(len(modules) * 0.7)
    seen: set[str] = set()
    for split, chosen in (("train", modules[:cut]), ("test", modules[cut:])):
        rows = preference_rows(chosen, rng)
        if split == "train":
            seen = {text for _, good, bad in rows for text in (good, bad)}
        else:  # one function under two names (os.path is posixpath, secrets.choice is random's) is no unseen pair
            rows = unseen_rows(rows, seen)
        with open(out / f"pairs_{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("prompt", "chosen", "rejected"))
            writer.writerows(rows)
        print(f"{split}: {len(rows)} pairs from {len(chosen)} modules")


def write_documents(out: Path, seed: int = 0, low: int = 1500, high: int = 6000) -> None:
    from pydoc_data.topics import topics

    chosen = sorted(k for k, v in topics.items() if low <= len(v) <= high)
    rng = random.Random(seed)
    rng.shuffle(chosen)
    test = set(chosen[: max(2, len(chosen) // 5)])
    for split in ("train", "test"):
        folder = out / f"reference_{split}"
        folder.mkdir(parents=True, exist_ok=True)
        for key in chosen:
            if (key in test) == (split == "test"):
                (folder / f"{key}.txt").write_text(topics[key], encoding="utf-8")
    print(f"documents: {len(chosen) - len(test)} for training, {len(test)} for test")


def main(argv: list[str]) -> None:
    out = Path(argv[0] if argv else "real-sets")
    out.mkdir(parents=True, exist_ok=True)
    write_pairs(out)
    write_documents(out)


if __name__ == "__main__":
    main(sys.argv[1:])
