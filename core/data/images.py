"""Image datasets: class folders (and split folders) found on disk, every file decoded to decide what it is.

What a file is comes from its bytes, not its name: a PNG saved as ``.jpg`` is a PNG, a phone "motion photo"
(a JPEG with a video appended) is a JPEG, and HEIC/AVIF photos open when their decoders are installed. Each
file is read once: its SHA-1 finds copies (duplicates, and validation images that are also in training) and
it is decoded (JPEGs at 1/8 scale, PNGs by walking their chunks) so a file cut short is caught before training.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import folders
from .limits import DataLimits
from .report import DataReport, describe_rows, plural

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic",
                  ".heif", ".avif"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
MIN_SIDE = 16  # smaller images carry too little detail even for the small backbones
WORKERS = min(4, os.cpu_count() or 1)  # JPEG and HEIC decoding release the GIL; small PNGs do not gain


@dataclass
class ImageSet:
    """Images found under a dataset root: absolute paths, classes, splits, content hashes, what was skipped."""

    root: Path
    paths: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # paths relative to the root, as the user sees them
    splits: list[str] = field(default_factory=list)  # "train", "validation" or "test"
    digests: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # class/subfolder per image, when class folders hold subfolders


@dataclass(frozen=True)
class ImageCheck:
    """What one file turned out to be: ``kind`` is ok, too_large, truncated, unreadable or not_image."""

    kind: str
    size: tuple[int, int] | None = None
    digest: str | None = None
    format: str | None = None
    reason: str = ""


def open_rgb(path, max_pixels: int | None = None) -> Image.Image:
    """Open an image as 8-bit RGB, whatever it was stored as (CMYK, 16-bit, palette, alpha, EXIF rotation,
    HEIC/AVIF when their decoders are installed).

    Args:
        path: the image file.
        max_pixels: refuse images larger than this (width x height); ``DataLimits().max_image_pixels`` if None.
    """
    limit = max_pixels or DataLimits().max_image_pixels
    if _looks_heif(Path(path)):
        enable_heif()
    with Image.open(path) as image:
        if image.width * image.height > limit:
            raise ValueError(f"{Path(path).name} is {image.width}x{image.height} pixels, over the limit of "
                             f"{limit:,} pixels")
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy; transparent areas become white, high bit depths are scaled rather than clipped."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(values.max()), 255.0)
        scaled = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    return image.convert("RGB")


def enable_heif() -> bool:
    """Register the HEIC/HEIF decoder (``pillow-heif``) with Pillow once; False when it is not installed."""
    global _HEIF
    if _HEIF is None:
        try:
            import pillow_heif
            pillow_heif.register_heif_opener()
            _HEIF = True
        except ImportError:
            _HEIF = False
    return _HEIF


_HEIF: bool | None = None


def check_image(file: Path, limits: DataLimits) -> ImageCheck:
    """Decode one file to learn what it is: an intact image (with its size and SHA-1) or why not.

    Args:
        file: any file found in a class folder.
        limits: ``max_image_pixels`` and ``max_bytes`` apply.
    """
    try:
        if file.stat().st_size > limits.max_bytes:
            return ImageCheck("too_large", reason="file")
        data = file.read_bytes()
    except OSError as exc:
        return ImageCheck("unreadable", reason=str(exc))
    if not data:
        return ImageCheck("unreadable", reason="empty")
    digest = hashlib.sha1(data).hexdigest()
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS and not enable_heif():
        return ImageCheck("unsupported", digest=digest, format="HEIF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                size, fmt = image.size, image.format
                if size[0] * size[1] > limits.max_image_pixels:
                    return ImageCheck("too_large", size, digest, fmt)
                _decode(image)
    except Image.DecompressionBombError:
        return ImageCheck("too_large", (1 << 31, 1 << 31), digest)
    except UnidentifiedImageError:
        return ImageCheck("not_image", digest=digest)
    except Exception as exc:  # any decoder error: the file is damaged, whatever Pillow calls it
        kind = "truncated" if "truncat" in str(exc).lower() or "end of file" in str(exc).lower() else "unreadable"
        return ImageCheck(kind, digest=digest, reason=str(exc))
    return ImageCheck("ok", size, digest, fmt)


def _decode(image: Image.Image) -> None:
    """Decode enough to prove the file whole: JPEG at 1/8 scale, PNG chunk by chunk, the rest fully."""
    if image.format == "JPEG":
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    elif image.format == "PNG":
        image.verify()  # every chunk and its checksum, up to IEND; bytes after it (a video) are ignored
    else:
        image.load()


def _looks_heif(path: Path) -> bool:
    if path.suffix.lower() in (".heic", ".heif"):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def scan_images(root: Path, report: DataReport, limits: DataLimits, name: str) -> ImageSet | None:
    """Find the class folders (and split folders) under ``root`` and decode every file in them.

    Args:
        root: a folder with one subfolder per class, split folders, or wrapping folders around either.
        report: collects problems.
        limits: ``max_images``, ``max_image_pixels`` and ``max_bytes`` apply.
        name: what to call the data in messages.
    """
    layout = folders.find_layout(root, lambda f: f.suffix.lower() in IMAGE_SUFFIXES)
    if not _layout_usable(layout, report, name):
        return None
    entries = [(file, cls, split, _subfolder(file, folder, cls) if layout.nested else None)
               for split, classes in layout.splits.items() for cls, folder in classes
               for file in sorted(_files(folder))]
    if len(entries) > limits.max_images * 2 + 1000:  # far over even if half of them were not images
        report.error("too_many_images", f"{name} has more than {limits.max_images:,} images.",
                     "Use a smaller sample of the images.")
        return None
    found, skipped = _sort_checked(layout, entries, _check_all([e[0] for e in entries], limits))
    if len(found.paths) > limits.max_images:
        report.error("too_many_images", f"{name} has more than {limits.max_images:,} images.",
                     "Use a smaller sample of the images.")
        return None
    _report_skipped(report, name, skipped, limits)
    if not found.paths:
        report.error("no_images", f"{name} has no readable images in its class folders.",
                     f"Add images ({', '.join(sorted(IMAGE_SUFFIXES))}) to the class folders.")
        return None
    count = sum(len(c) for c in layout.splits.values())
    # named as the user knows it (their file, and the folder inside it), never the unpacked copy's cache folder
    inner = layout.root.relative_to(root).as_posix() if layout.root.is_relative_to(root) else layout.root.name
    where = name if inner in ("", ".") else f"{name}/{inner}"
    found.notes.append(f"Found {len(found.paths)} images in {count} class folders in {where}.")
    return found


def _layout_usable(layout, report, name) -> bool:
    """Report what the layout says (loose files, nested folders); False when there is nothing to classify by."""
    if not any(layout.splits.values()):
        report.error("no_class_folders", f"{name} has no class folders.", "Put the images in one folder per "
                     "class, e.g. cats/1.jpg and dogs/2.jpg, and upload the folder (or a zip of it).")
        return False
    _report_loose(layout, report, name)
    if layout.unlabelled:
        report.warn("unlabelled_split", f"{name}: the folder(s) {', '.join(map(repr, layout.unlabelled))} hold images "
                    "without class folders (an unlabelled test set?), so they were not used.", "To score on them, "
                    "sort them into one folder per class, like the training folder.")
    if layout.grouped:
        classes = sorted({cls for cls, _ in layout.splits["train"]})
        report.warn("grouped_class_folders", f"{name}: the folders {', '.join(map(repr, layout.grouped))} each hold "
                    f"the same class folders ({', '.join(map(repr, classes[:8]))}), so those are the classes, "
                    "gathered from all of them.", "If the top folders are the classes instead, give each of them "
                    "its images directly (no subfolders with the same names).")
    if layout.nested:
        listed = "; ".join(f"'{cls}' ({', '.join(map(repr, subs[:4]))}{', ...' if len(subs) > 4 else ''})"
                           for cls, subs in layout.nested[:6])
        report.warn("nested_class_folders", f"{name}: the top folders are used as the classes, and each holds "
                    f"subfolders: {listed}. The images of one subfolder (one object, specimen or session) stay on "
                    "one side of the split, so the validation score is measured on subfolders the model never saw. "
                    "If the subfolders are the classes, this is not what you meant.",
                    "To classify by the subfolders, put them side by side, one level, and upload again.")
    if _labels_in_a_file(layout):
        report.error("labels_file_layout", f"{name} holds one folder of images and a table "
                     f"({', '.join(f.name for f in layout.loose if f.suffix.lower() in LABEL_TABLES)}) that "
                     "presumably says which class each image is; that layout is not read here.",
                     "Sort the images into one folder per class (e.g. cats/1.jpg, dogs/2.jpg) and upload that.")
        return False
    return True


def _sort_checked(layout, entries, checks) -> tuple[ImageSet, dict[str, list[str]]]:
    """The images that decoded, and per kind of failure the files skipped."""
    found = ImageSet(layout.root, notes=list(layout.notes))
    skipped: dict[str, list[str]] = {}
    root = os.path.abspath(layout.root)  # once, not per file: resolving 5,000 paths costs a second
    for (file, cls, split, group), check in zip(entries, checks):
        shown = file.relative_to(layout.root).as_posix()
        kind = check.kind
        if kind == "not_image" and file.suffix.lower() in ARCHIVE_SUFFIXES:
            kind = "archive"
        elif kind == "not_image" and file.suffix.lower() in IMAGE_SUFFIXES:
            kind = "unreadable"  # named like an image, holds something else
        if kind != "ok":
            skipped.setdefault(kind, []).append(shown)
            continue
        if min(check.size) < MIN_SIDE:
            skipped.setdefault("small", []).append(shown)
        found.paths.append(os.path.join(root, *shown.split("/")))
        found.classes.append(cls)
        found.shown.append(shown)
        found.splits.append(split)
        found.digests.append(check.digest)
        if group is not None:
            found.groups.append(group)
    return found, skipped


def _subfolder(file: Path, folder: Path, cls: str) -> str:
    """The group of an image in a nested class folder: ``cats/tom`` for ``cats/tom/1.jpg`` (``core/data/groups``)."""
    parts = file.relative_to(folder).parts
    return f"{cls}/{parts[0]}" if len(parts) > 1 else f"{cls}/{file.name}"


LABEL_TABLES = {".csv", ".tsv", ".json", ".jsonl", ".txt", ".xlsx"}


def _labels_in_a_file(layout) -> bool:
    """One image folder beside a CSV/JSON file: the classes are in the file (Kaggle style), not in folders."""
    classes = [c for split in layout.splits.values() for c in split]
    return len(classes) == 1 and any(f.suffix.lower() in LABEL_TABLES and f.suffix.lower() != ".txt"
                                     for f in layout.loose)


def _check_all(files: list[Path], limits: DataLimits) -> list[ImageCheck]:
    """``check_image`` for every file, in a few threads fed whole batches (a future per file costs more than a
    small PNG's check)."""
    if len(files) < 64:
        return [check_image(f, limits) for f in files]
    size = -(-len(files) // (WORKERS * 4))
    batches = [files[i:i + size] for i in range(0, len(files), size)]
    with ThreadPoolExecutor(WORKERS) as pool:
        done = pool.map(lambda batch: [check_image(f, limits) for f in batch], batches)
        return [check for batch in done for check in batch]


def _report_loose(layout, report, name) -> None:
    loose = [f.relative_to(layout.root).as_posix() if f.is_relative_to(layout.root) else f.name
             for f in layout.loose]
    if loose:
        report.warn("loose_files", f"{name}: {describe_rows(loose, 'file')} {plural(loose, 'sits', 'sit')} beside "
                    "the class folders, so ignored.", "Move them into the folder of their class.", rows=loose)


SKIP_WORDING = {
    "not_image": ("not_image", "{is} not an image", "Keep only images ({suffixes}) in the class folders."),
    "unreadable": ("unreadable_image", "could not be opened as an image", "Re-save them as PNG or JPEG, or "
                   "remove them."),
    "truncated": ("truncated_image", "{is} cut short (truncated)", "Copy or download those images again; the "
                  "transfer was probably interrupted."),
    "too_large": ("image_too_large", "{has} more than {pixels:,} pixels", "Resize them (a few hundred pixels a "
                  "side is plenty for classification)."),
    "archive": ("nested_archive", "{is} an archive inside the data; archives inside archives are never opened",
                "Unpack them and put their images straight into the class folders."),
    "unsupported": ("unsupported_image", "{is} HEIC/HEIF photos, whose decoder (pillow-heif) is not installed",
                    "Install it (pip install pillow-heif) or export the photos as JPEG."),
}


def _report_skipped(report, name, skipped: dict[str, list[str]], limits) -> None:
    for kind, (code, what, fix) in SKIP_WORDING.items():
        files = skipped.get(kind)
        if not files:
            continue
        report.count_dropped(code, len(files))
        what = what.format(**{"is": plural(files, "is", "are"), "has": plural(files, "has", "have"),
                              "pixels": limits.max_image_pixels})
        report.warn(code, f"{name}: {describe_rows(files, 'file')} {what}, so skipped.",
                    fix.format(suffixes=", ".join(sorted(IMAGE_SUFFIXES))), rows=files)
    small = skipped.get("small")
    if small:
        report.warn("small_images", f"{name}: {describe_rows(small, 'file')} {plural(small, 'is', 'are')} "
                    f"smaller than {MIN_SIDE} pixels on a side; they carry little detail.",
                    "Use larger images if you have them.", rows=small)


def _files(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not folders.ignored(d)]
        for filename in filenames:
            if not folders.ignored(filename):
                yield Path(dirpath) / filename


def file_key(path: str) -> str:
    """The SHA-1 of an image file's bytes: equal keys mean the same picture, whatever the file is called.

    Args:
        path: the image file.
    """
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
