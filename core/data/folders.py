"""How people lay out image datasets: which folder holds the classes, and which folders are splits.

Understood layouts (any number of single wrapping folders above them is looked through):

- ``<class>/<image>``: one folder per class (images may sit in subfolders of a class folder);
- ``train/<class>/...``, ``validation/<class>/...``, ``test/<class>/...``: splits used as given
  (``val``, ``valid``, ``dev``, ``training``, ``testing``... are recognised);
- ``<class>/train/...``, ``<class>/test/...``: the same splits, inside each class folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

IGNORED_NAMES = {"thumbs.db", "desktop.ini", "__macosx", ".ds_store"}
SPLIT_NAMES = {
    "train": "train", "training": "train", "trn": "train", "train_set": "train", "trainset": "train",
    "val": "validation", "valid": "validation", "validation": "validation", "dev": "validation",
    "eval": "validation", "evaluation": "validation", "validate": "validation", "val_set": "validation",
    "test": "test", "testing": "test", "tst": "test", "holdout": "test", "test_set": "test", "testset": "test",
}
MAX_WRAPPERS = 10


@dataclass
class Layout:
    """Where the class folders are: per split, a list of (class name, folder)."""

    root: Path
    splits: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
    loose: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    by_split: bool = False
    nested: list[tuple[str, list[str]]] = field(default_factory=list)  # class -> its subfolders, when all have some
    unlabelled: list[str] = field(default_factory=list)  # split folders of images without class folders
    grouped: list[str] = field(default_factory=list)  # top folders whose same-named class folders were gathered


def ignored(name: str) -> bool:
    """Hidden files and the desktop clutter operating systems add: never data."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def split_of(name: str) -> str | None:
    """``"train"``, ``"validation"`` or ``"test"`` when a folder name names a split, else None.

    Args:
        name: a folder name.
    """
    return SPLIT_NAMES.get(name.strip().lower().replace(" ", "_").replace("-", "_"))


def find_layout(root: Path, image_like) -> Layout:
    """The class folders under ``root``, per split, looking through single wrapping folders.

    Args:
        root: the folder the user gave (or the unpacked archive).
        image_like: a function telling whether a file may be an image (suffix test, cheap).
    """
    layout = Layout(root)
    root = _look_through(root, image_like, layout)
    layout.root = root
    dirs = _dirs(root)
    layout.loose += [f for f in _files(root)]
    splits = {d: split_of(d.name) for d in dirs}
    if dirs and all(splits.values()) and any(_dirs(d) for d in dirs if splits[d] == "train"):
        layout.by_split = True
        for folder in dirs:
            if not _dirs(folder):  # Kaggle's test/ of unlabelled images: nothing to learn or score with
                layout.unlabelled.append(folder.name)
                continue
            layout.splits.setdefault(splits[folder], [])
            layout.splits[splits[folder]] += [(c.name, c) for c in _dirs(folder)]
            layout.loose += _files(folder)
        used = [d.name for d in dirs if d.name not in layout.unlabelled]
        layout.notes.append(f"The folders {', '.join(map(repr, used))} are splits; each holds one folder per class."
                            if len(used) > 1 else f"The folder {used[0]!r} is a split; it holds one folder per class.")
        layout.nested = _nested([folder for _, folder in layout.splits.get("train", [])], image_like)
        return layout
    if dirs and all(_dirs(d) and all(split_of(s.name) for s in _dirs(d)) and not _files(d) for d in dirs):
        layout.by_split = True  # <class>/<split>/...: the splits sit inside each class folder
        for folder in dirs:
            for sub in _dirs(folder):
                layout.splits.setdefault(split_of(sub.name), []).append((folder.name, sub))
        layout.notes.append("Each class folder holds split folders (train/validation/test); they are used as "
                            "given.")
        return layout
    layout.splits["train"] = [(d.name, d) for d in dirs]
    layout.nested = _nested(dirs, image_like)
    if len(layout.nested) > 1 and len({frozenset(s.lower() for s in subs) for _, subs in layout.nested}) == 1:
        # 2023/cat, 2023/dog, 2024/cat, 2024/dog: the same classes under every top folder are the classes
        layout.grouped = [d.name for d in dirs]
        layout.splits["train"] = [(sub.name, sub) for d in dirs for sub in _dirs(d)]
        layout.nested = []
    return layout


def _nested(dirs: list[Path], image_like) -> list[tuple[str, list[str]]]:
    """Class folders that hold no images themselves, only two or more subfolders: the subfolders might be
    the classes (``animals/cat``, ``animals/dog``); listed so the user is told which level was used."""
    out = []
    for folder in dirs:
        subs = _dirs(folder)
        if len(subs) >= 2 and not any(image_like(f) for f in _files(folder)):
            out.append((folder.name, [d.name for d in subs]))
    return out if len(out) == len(dirs) else []


def _look_through(root: Path, image_like, layout: Layout) -> Path:
    """Step into a lone folder (``digits.zip`` -> ``digits/`` -> class folders); other files there are loose."""
    for _ in range(MAX_WRAPPERS):
        dirs, files = _dirs(root), _files(root)
        if len(dirs) != 1 or any(image_like(f) for f in files) or split_of(dirs[0].name):
            break
        inner = dirs[0]
        if not _dirs(inner) or any(image_like(f) for f in _files(inner)):
            break  # a single class folder: keep it as a class, so the single-class problem is named
        layout.loose += files
        layout.notes.append(f"Looked inside the folder '{inner.name}'.")
        root = inner
    return root


def _dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not ignored(d.name)), key=lambda d: d.name)


def _files(folder: Path) -> list[Path]:
    return sorted((f for f in folder.iterdir() if f.is_file() and not ignored(f.name)), key=lambda f: f.name)
