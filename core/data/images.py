"""Image datasets: one subfolder per class, as a folder or an untrusted zip; RGB conversion for the engine.

Validation opens each image lazily (PIL reads only the header) to get its size, so 5,000 images take a
fraction of a second; pixels are decoded only by ``open_rgb`` at training time.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

from .limits import DataLimits
from .report import DataReport, describe_rows, plural
from .sniff import human_size, over_limit

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IGNORED_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
# The bytes an intact file of these formats ends with (a few trailing bytes of padding are tolerated).
END_MARKERS = {".png": b"IEND", ".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".gif": b";"}
TAIL_BYTES = 1024
MIN_SIDE = 16  # smaller images carry too little detail even for the small backbones


@dataclass
class ImageSet:
    """Images found under a class-folder root: absolute paths, class names, and what was skipped."""

    root: Path
    paths: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # paths relative to the root, as the user sees them
    notes: list[str] = field(default_factory=list)


def open_rgb(path, max_pixels: int | None = None) -> Image.Image:
    """Open an image as 8-bit RGB, whatever it was stored as (CMYK, 16-bit, palette, alpha, EXIF rotation).

    Args:
        path: the image file.
        max_pixels: refuse images larger than this (width x height); ``DataLimits().max_image_pixels`` if None.
    """
    limit = max_pixels or DataLimits().max_image_pixels
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


def scan_images(root: Path, report: DataReport, limits: DataLimits, name: str) -> ImageSet | None:
    """Find class folders under ``root`` and check every image's header.

    Args:
        root: a folder with one subfolder per class (a single wrapping folder is looked through).
        report: collects problems.
        limits: ``max_images`` and ``max_image_pixels`` apply.
        name: what to call the data in messages.
    """
    root = _class_root(root)
    class_dirs = sorted((d for d in root.iterdir() if d.is_dir() and not _ignored(d.name)), key=lambda d: d.name)
    loose = [f.name for f in root.iterdir() if f.is_file() and not _ignored(f.name)]
    if not class_dirs:
        report.error("no_class_folders", f"{name} has no class folders.", "Put the images in one folder per "
                     "class, e.g. cats/1.jpg and dogs/2.jpg, and upload the folder (or a zip of it).")
        return None
    if loose:
        report.warn("loose_files", f"{name}: {describe_rows(loose, 'file')} {plural(loose, 'sits', 'sit')} beside "
                    "the class folders, so ignored.", "Move them into the folder of their class.", rows=loose)
    found = ImageSet(root)
    others, broken, huge, small = [], [], [], []
    archives, truncated = [], []
    for class_dir in class_dirs:
        for file in sorted(_files(class_dir)):
            shown = file.relative_to(root).as_posix()
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                (archives if file.suffix.lower() in ARCHIVE_SUFFIXES else others).append(shown)
                continue
            size = _header_size(file)
            if size is None:
                broken.append(shown)
            elif _truncated(file):
                truncated.append(shown)
            elif size[0] * size[1] > limits.max_image_pixels:
                huge.append(shown)
            else:
                if min(size) < MIN_SIDE:
                    small.append(shown)
                found.paths.append(str(file.resolve()))
                found.classes.append(class_dir.name)
                found.shown.append(shown)
            if len(found.paths) > limits.max_images:
                report.error("too_many_images", f"{name} has more than {limits.max_images:,} images.",
                             "Use a smaller sample of the images.")
                return None
    _report_files(report, name, others, broken, huge, small, limits)
    _report_damage(report, name, archives, truncated)
    if not found.paths:
        report.error("no_images", f"{name} has no readable images in its class folders.",
                     f"Add images ({', '.join(sorted(IMAGE_SUFFIXES))}) to the class folders.")
        return None
    found.notes.append(f"Found {len(found.paths)} images in {len(class_dirs)} class folders under {root.name}.")
    return found


def _report_files(report, name, others, broken, huge, small, limits) -> None:
    if others:
        what = plural(others, "is not an image", "are not images")
        report.warn("not_image", f"{name}: {describe_rows(others, 'file')} {what}, so skipped.",
                    f"Keep only images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders.", rows=others)
    if broken:
        report.warn("unreadable_image", f"{name}: {describe_rows(broken, 'file')} could not be opened as an "
                    "image, so skipped.", "Re-save them as PNG or JPEG, or remove them.", rows=broken)
    if huge:
        has = plural(huge, "has", "have")
        report.warn("image_too_large", f"{name}: {describe_rows(huge, 'file')} {has} more than "
                    f"{limits.max_image_pixels:,} pixels, so skipped.", "Resize them (a few hundred "
                    "pixels a side is plenty for classification).", rows=huge)
    if small:
        report.warn("small_images", f"{name}: {describe_rows(small, 'file')} {plural(small, 'is', 'are')} "
                    f"smaller than {MIN_SIDE} pixels on a side; they carry little detail.",
                    "Use larger images if you have them.", rows=small)


def _report_damage(report, name, archives, truncated) -> None:
    if archives:
        report.warn("nested_archive", f"{name}: {describe_rows(archives, 'file')} {plural(archives, 'is', 'are')} "
                    "an archive inside the data; archives inside archives are never opened, so skipped.",
                    "Unpack them and put their images straight into the class folders.", rows=archives)
    if truncated:
        report.warn("truncated_image", f"{name}: {describe_rows(truncated, 'file')} "
                    f"{plural(truncated, 'is', 'are')} cut short (truncated), so skipped.",
                    "Copy or download those images again; the transfer was probably interrupted.", rows=truncated)


def _truncated(file: Path) -> bool:
    """True when a PNG, JPEG or GIF lacks the end marker every intact file has (reads only the last 1 KB)."""
    marker = END_MARKERS.get(file.suffix.lower())
    if marker is None:
        return False
    try:
        with open(file, "rb") as handle:
            handle.seek(max(0, file.stat().st_size - TAIL_BYTES))
            return marker not in handle.read()
    except OSError:
        return True


def _header_size(file: Path) -> tuple[int, int] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                return image.size
    except Image.DecompressionBombError:
        return (1 << 31, 1 << 31)  # reported as too large rather than unreadable
    except Exception:
        return None


def _files(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not _ignored(d)]
        for filename in filenames:
            if not _ignored(filename):
                yield Path(dirpath) / filename


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def _class_root(root: Path) -> Path:
    """Look through wrapping folders (``digits.zip`` -> ``digits/`` -> class folders)."""
    for _ in range(5):
        entries = [e for e in root.iterdir() if not _ignored(e.name)]
        dirs = [e for e in entries if e.is_dir()]
        if len(entries) == 1 and len(dirs) == 1 and any(d.is_dir() for d in dirs[0].iterdir()):
            root = dirs[0]
        else:
            break
    return root


# --- zip archives ----------------------------------------------------------------------------------------

def extract_zip(path: Path, report: DataReport, limits: DataLimits, dest: Path | None = None) -> Path | None:
    """Safely extract an uploaded zip; the same archive is extracted once and reused.

    Rejects absolute paths, ``..`` components and symbolic links, and caps the number of entries and the
    bytes written (counted while writing, since the sizes in a zip's directory can lie).

    Args:
        path: the zip file.
        report: collects problems.
        limits: ``max_bytes``, ``max_zip_files`` and ``max_uncompressed_bytes`` apply.
        dest: the folder to extract into; by default ``<name>.unzipped`` beside the zip.
    """
    if path.stat().st_size > limits.max_bytes:
        report.error("file_too_large", f"{path.name} is {over_limit(path.stat().st_size, limits.max_bytes)}.", "Upload a smaller archive.")
        return None
    declared = declared_entries(path)
    if declared is not None and declared > limits.max_zip_files:
        # refused from the archive's last bytes, before its (possibly huge) directory is parsed
        report.error("zip_too_many_files", f"{path.name} holds {declared:,} entries, over the limit of "
                     f"{limits.max_zip_files:,}.", "Upload fewer files, or a smaller sample of the images.")
        return None
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.error("unreadable_file", f"{path.name} is not a readable zip archive ({exc}).",
                     "Create the zip again (e.g. right-click the folder > Compress) and upload it.")
        return None
    with archive:
        members = _safe_members(archive, path.name, report, limits)
        if members is None:
            return None
        dest = dest or path.parent / f"{path.stem}.unzipped"
        stamp = _fingerprint(path)
        if (dest / ".source").is_file() and (dest / ".source").read_text() == stamp:
            return dest
        return _write_members(archive, members, dest, stamp, path.name, report, limits)


def declared_entries(path: Path) -> int | None:
    """The entry count a zip's end-of-central-directory record declares (zip64 too); None if not found.

    Args:
        path: the zip file.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 65_557))  # the record (22 bytes) plus the longest comment
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack("<H", tail[at + 10:at + 12])[0]
        if count != 0xFFFF or at < 20 or tail[at - 20:at - 16] != b"PK\x06\x07":
            return count
        record = struct.unpack("<Q", tail[at - 12:at - 4])[0]  # where the zip64 record sits
        handle.seek(record)
        zip64 = handle.read(56)
    if len(zip64) < 40 or not zip64.startswith(b"PK\x06\x06"):
        return None
    return struct.unpack("<Q", zip64[32:40])[0]


def _safe_members(archive, name, report, limits) -> list | None:
    infos = archive.infolist()
    if len(infos) > limits.max_zip_files:
        report.error("zip_too_many_files", f"{name} holds {len(infos):,} entries, over the limit of "
                     f"{limits.max_zip_files:,}.", "Upload fewer files.")
        return None
    unsafe = [i.filename for i in infos if _unsafe_name(i.filename)]
    links = [i.filename for i in infos if stat.S_ISLNK(i.external_attr >> 16)]
    if unsafe or links:
        bad = unsafe + links
        report.error("unsafe_zip", f"{name} contains {describe_rows(bad, 'entry')} with an absolute path, "
                     "'..' or a symbolic link; the archive was not extracted.", "Zip the image folder itself, "
                     "without links or paths outside it.", rows=bad)
        return None
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        report.error("zip_too_large", f"{name} would expand to {human_size(total)}, over the limit of "
                     f"{human_size(limits.max_uncompressed_bytes)} (a zip bomb, or far more data than needed).",
                     "Upload a smaller archive.")
        return None
    return [i for i in infos if not i.is_dir()]


def _unsafe_name(name: str) -> bool:
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    return posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in parts


def _write_members(archive, members, dest: Path, stamp, name, report, limits) -> Path | None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    written = 0
    try:
        for info in members:
            target = work / info.filename.replace("\\", "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > limits.max_uncompressed_bytes:
                        raise OverflowError
                    out.write(chunk)
    except OverflowError:
        shutil.rmtree(work, ignore_errors=True)
        report.error("zip_too_large", f"{name} expands to more than {human_size(limits.max_uncompressed_bytes)} "
                     "(its directory understates the sizes: a zip bomb).", "Upload a smaller archive.")
        return None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        report.error("unreadable_file", f"{name} could not be extracted: {exc}.", "Create the zip again.")
        return None
    (work / ".source").write_text(stamp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(work, dest)
    return dest


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_key(path: str) -> str:
    """A cheap content key for an image file (size + first 64 KB), for leakage checks."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return f"{os.path.getsize(path)}:{hashlib.sha1(head).hexdigest()}"
