"""Zip archives of image folders, unpacked once into the studio home and never beside the user's file.

An archive is unpacked into ``<cache>/<sha256 of its bytes>``: the same bytes always land in the same folder,
which is reused on the next load. Unpacking happens in a temporary folder that is renamed into place only when
complete, under a file lock, so two loads of the same new archive at once both see every image. Nothing is
ever written, renamed or deleted beside the archive itself.

Names in a zip are text in an unstated encoding unless the UTF-8 flag is set; many tools (macOS Finder, 7-Zip,
Python) write UTF-8 without the flag, so names that are valid UTF-8 are read as UTF-8 and normalised to NFC
(macOS stores "é" as "e" plus an accent; both spellings must name the same class).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import tempfile
import time
import unicodedata
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .limits import DataLimits
from .report import DataReport, describe_rows, plural
from .sniff import human_size, over_limit

UTF8_FLAG = 0x800
SKIPPED_PARTS = {"__macosx", ".ds_store", "thumbs.db", "desktop.ini"}


def unpack_zip(path: Path, report: DataReport, limits: DataLimits, cache) -> Path | None:
    """The folder holding the archive's files, unpacked into ``cache`` on first use; None when refused.

    Rejects absolute paths, ``..`` components and symbolic links, and caps the number of entries and the
    bytes written (counted while writing, since the sizes in a zip's directory can lie).

    Args:
        path: the zip file (only read).
        report: collects problems.
        limits: ``max_bytes``, ``max_zip_files`` and ``max_uncompressed_bytes`` apply.
        cache: the folder that holds unpacked archives (``Home.root / "cache" / "unpacked"``), or a function
            returning it, called only once the archive has passed its checks (so a refused zip creates nothing).
    """
    size = path.stat().st_size
    if size > limits.max_bytes:
        report.error("file_too_large", f"{path.name} is {over_limit(size, limits.max_bytes)}.",
                     "Upload a smaller archive.")
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
        cache = Path(cache() if callable(cache) else cache)
        dest = cache / content_hash(path)
        if dest.is_dir():
            _touch(dest)
            return dest
        cache.mkdir(parents=True, exist_ok=True)
        with _locked(cache / f"{dest.name}.lock"):
            if dest.is_dir():  # another load unpacked it while this one waited for the lock
                return dest
            return _unpack(archive, members, dest, path.name, report, limits)


def content_hash(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex: the name of its unpacked copy.

    Args:
        path: the file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def member_name(info: zipfile.ZipInfo) -> str:
    """An entry's name as its author wrote it: UTF-8 when the bytes are UTF-8 even without the flag, NFC.

    Args:
        info: the zip entry.
    """
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        try:
            raw = name.encode("cp437")  # how zipfile decoded the bytes; reversible for every byte
            name = raw.decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


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
    unsafe = [i.filename for i in infos if _unsafe_name(member_name(i))]
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
    _warn_legacy_names(infos, name, report)
    return [i for i in infos if not i.is_dir() and not _skipped(member_name(i))]


def _warn_legacy_names(infos, name, report) -> None:
    """Names that are neither flagged nor valid UTF-8 came from an old code page: say they may look wrong."""
    legacy = [member_name(i) for i in infos if not i.flag_bits & UTF8_FLAG and not i.filename.isascii()
              and not _is_utf8(i.filename)]
    if legacy:
        report.warn("zip_name_encoding", f"{name}: {describe_rows(legacy, 'name')} "
                    f"{plural(legacy, 'is', 'are')} stored in an old, unstated encoding; accented letters in "
                    "folder (class) names may look wrong.", "Rename the folders with plain letters, or zip them "
                    "with a tool that writes UTF-8 names (7-Zip, macOS, recent Windows).", rows=legacy)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("cp437").decode("utf-8")
        return True
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False


def _unsafe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts


def _skipped(name: str) -> bool:
    """macOS resource forks and desktop files: never data, so never written."""
    return any(part.lower() in SKIPPED_PARTS or part.startswith("._") for part in name.split("/"))


def _unpack(archive, members, dest: Path, name, report, limits) -> Path | None:
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name[:16]}-", dir=dest.parent))
    written, clashes = 0, []
    try:
        for info in members:
            target = work / member_name(info)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                out = open(target, "xb")
            except (FileExistsError, IsADirectoryError):
                clashes.append(member_name(info))  # two entries with one name after NFC: keep the first
                continue
            with archive.open(info) as src, out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > limits.max_uncompressed_bytes:
                        raise OverflowError
                    out.write(chunk)
        try:
            os.rename(work, dest)
        except OSError:
            if not dest.is_dir():  # another process won the race on a file system without locks: use its copy
                raise
    except OverflowError:
        report.error("zip_too_large", f"{name} expands to more than {human_size(limits.max_uncompressed_bytes)} "
                     "(its directory understates the sizes: a zip bomb).", "Upload a smaller archive.")
        return None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        report.error("unreadable_file", f"{name} could not be extracted: {exc}.", "Create the zip again.")
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone after the rename; only a failed unpack leaves it
    if clashes:
        report.warn("zip_duplicate_names", f"{name}: {describe_rows(clashes, 'entry')} "
                    f"{plural(clashes, 'has', 'have')} the same name as an earlier entry; only the first was kept.",
                    "Give every file in the archive its own name.", rows=clashes)
    return dest


def _touch(folder: Path) -> None:
    """Mark an unpacked copy as used now, so an age-based clean-up keeps what is in use."""
    try:
        os.utime(folder)
    except OSError:
        pass


@contextmanager
def _locked(lock_path: Path, timeout_s: float = 600.0):
    """An exclusive lock between processes and threads on ``lock_path`` (created when missing)."""
    handle = open(lock_path, "a+b")
    try:
        _acquire(handle, timeout_s)
        yield
    finally:
        _release(handle)
        handle.close()


def _acquire(handle, timeout_s: float) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _release(handle) -> None:
    try:
        import fcntl
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except ImportError:
        import msvcrt
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
