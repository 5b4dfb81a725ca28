"""Per-session upload folders: each visitor's files stay in their own folder, are never run, and expire.

A session id comes from the browser, so it is never used as a path: the folder is named by a hash of it.
An uploaded file is copied byte for byte under a cleaned name into a fresh folder of its own (a zip is
unpacked by ``core.data`` into ``<home>/cache/unpacked/<sha256>``, never beside it); only data formats are
accepted, and nothing is executed, imported or unpickled: tables go through the readers in ``core.data``,
images through Pillow.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterable

from .data.archive import content_hash
from .data.images import IMAGE_SUFFIXES
from .data.limits import DataLimits
from .data.loader import unpack_folder
from .data.readers import TABLE_SUFFIXES
from .data.sniff import over_limit
from .runs import FINAL_STATUSES, RunDir
from .home import Home

UPLOAD_SUFFIXES = frozenset(TABLE_SUFFIXES) | IMAGE_SUFFIXES | {".zip"}
MAX_NAME = 120
CHUNK = 1 << 20


class UploadError(ValueError):
    """An upload was refused; the message says why and what to upload instead."""


def session_key(session_id: str) -> str:
    """The folder name of a session: 16 hex digits of its SHA-256, so no id can name a path.

    Args:
        session_id: the browser session's owner id (any text).
    """
    if not str(session_id or "").strip():
        raise UploadError("No session id: reload the page to start a session, then upload again.")
    return hashlib.sha256(str(session_id).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def session_upload_dir(home: Home, session_id: str) -> Path:
    """The session's upload folder under ``home.uploads`` (created, readable by this user only).

    Args:
        home: the studio home.
        session_id: the browser session's owner id.
    """
    folder = home.uploads / session_key(session_id)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def session_export_dir(home: Home, session_id: str) -> Path:
    """The session's folder for exported files (zips to download) under ``home.root / "exports"``.

    Args:
        home: the studio home.
        session_id: the browser session's owner id.
    """
    folder = home.root / "exports" / session_key(session_id)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def safe_name(name: str) -> str:
    """A file name without folders, odd characters or leading dots, keeping its suffix.

    Args:
        name: the name the browser sent (may hold ``../`` or a full Windows path).
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem[: MAX_NAME - len(suffix) - 1].strip(" .") or "upload"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def save_upload(home: Home, session_id: str, source, name: str | None = None,
                limits: DataLimits | None = None) -> Path:
    """Copy one uploaded file into a new folder inside the session's upload folder and return its path.

    Args:
        home: the studio home.
        session_id: the browser session's owner id.
        source: the uploaded file (a path, e.g. Gradio's temporary copy) or its bytes.
        name: the file's original name (its suffix picks the format); the source's name when None.
        limits: ``max_bytes`` caps the size (``DataLimits.public()`` for a public demo).
    Raises:
        UploadError: a format that is not data, a file over the size limit, a link, or a missing file.
    """
    limits = limits or DataLimits()
    is_bytes = isinstance(source, (bytes, bytearray))
    name = safe_name(name or ("upload" if is_bytes else Path(source).name))
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadError(f"'{name}' is not a data file this studio reads ({suffix or 'no suffix'}). Upload a "
                          f"table ({', '.join(TABLE_SUFFIXES)}), a .zip of image folders, or an image.")
    size = len(source) if is_bytes else _source_size(Path(source))
    if size > limits.max_bytes:
        raise UploadError(f"'{name}' is {over_limit(size, limits.max_bytes)}. Upload a smaller sample.")
    folder = session_upload_dir(home, session_id) / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    folder.mkdir(mode=0o700)
    target = folder / name
    try:
        if is_bytes:
            target.write_bytes(bytes(source))
        else:
            _copy_capped(Path(source), target, limits.max_bytes, name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    os.chmod(target, 0o600)  # data, never a program
    return target


def _source_size(source: Path) -> int:
    if source.is_symlink():
        raise UploadError(f"'{source.name}' is a link; upload the file itself.")
    if not source.is_file():
        raise UploadError(f"The upload '{source.name}' was not received completely; upload it again.")
    return source.stat().st_size


def _copy_capped(source: Path, target: Path, cap: int, name: str) -> None:
    """Copy in chunks, stopping at ``cap`` bytes: a file growing while it is copied cannot get past it."""
    written = 0
    with open(source, "rb") as src, open(target, "xb") as out:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            if written > cap:
                raise UploadError(f"'{name}' is {over_limit(written, cap)}. Upload a smaller sample.")
            out.write(chunk)


def owns_path(home: Home, session_id: str, path) -> bool:
    """True when ``path`` (links resolved) lies inside the session's own upload folder.

    Args:
        home: the studio home.
        session_id: the browser session's owner id.
        path: a data path a job wants to read.
    """
    try:
        resolved = Path(path).expanduser().resolve()
        return resolved.is_relative_to(session_upload_dir(home, session_id).resolve())
    except (OSError, UploadError, ValueError):
        return False


def expire_uploads(home: Home, max_age_s: float, keep: Iterable = (), now: float | None = None) -> list[Path]:
    """Delete upload folders older than ``max_age_s`` (and exports of the same age); return what was removed.

    Args:
        home: the studio home.
        max_age_s: the age, in seconds since the upload, past which an upload is deleted.
        keep: paths in use (a queued or running job's data): their upload folders are kept.
        now: the current time (tests); ``time.time()`` when None.
    """
    now = time.time() if now is None else now
    keep_paths = [Path(p).resolve() for p in keep if p]
    removed = []
    for root in (home.uploads, home.root / "exports"):
        for session in _children(root):
            for upload in _children(session):
                if now - _mtime(upload) > max_age_s and not any(_inside(k, upload) for k in keep_paths):
                    _remove(upload)
                    removed.append(upload)
            if session.is_dir() and not any(session.iterdir()):
                session.rmdir()
    return removed


def expire_runs(home: Home, max_age_s: float, keep: Iterable = (), now: float | None = None) -> list[Path]:
    """Delete finished runs (completed, stopped, failed, interrupted) last updated over ``max_age_s`` ago.

    Args:
        home: the studio home.
        max_age_s: the age, in seconds since the run last changed, past which it is deleted.
        keep: run folders never to delete (queued or running jobs).
        now: the current time (tests); ``time.time()`` when None.
    """
    now = time.time() if now is None else now
    keep_paths = {Path(p).resolve() for p in keep if p}
    removed = []
    for folder in _children(home.runs):
        run = RunDir(folder)
        status = run.read_status()
        if folder.resolve() in keep_paths or status.get("status") not in FINAL_STATUSES:
            continue
        updated = status.get("updated") if isinstance(status.get("updated"), (int, float)) else _mtime(folder)
        if now - updated > max_age_s:
            _remove(folder)
            removed.append(folder)
    return removed


def expire_unpacked(home: Home, max_age_s: float, keep: Iterable = (), now: float | None = None) -> list[Path]:
    """Delete unpacked copies of zips not used for ``max_age_s`` (each load marks its copy as used).

    Args:
        home: the studio home.
        max_age_s: the age, in seconds since the copy was last loaded, past which it is deleted.
        keep: data paths in use (a queued or running job's zips): their unpacked copies are kept.
        now: the current time (tests); ``time.time()`` when None.
    """
    now = time.time() if now is None else now
    cache = unpack_folder(home)
    kept = {content_hash(Path(p)) for p in keep if p and str(p).lower().endswith(".zip") and Path(p).is_file()}
    removed = []
    for folder in _children(cache):
        # ".<hash>-..." folders are unpacks a killed process left half done
        if folder.name not in kept and now - _mtime(folder) > max_age_s:
            _remove(folder)
            (cache / f"{folder.name}.lock").unlink(missing_ok=True)
            removed.append(folder)
    return removed


def _children(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _inside(path: Path, folder: Path) -> bool:
    return path == folder.resolve() or path.is_relative_to(folder.resolve())


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
