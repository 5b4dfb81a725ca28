"""Loading data never writes, changes or deletes anything beside the input; zips go into the studio home.

Each test snapshots the user's folder (every path, its size, modification time and SHA-256) before and after
loading, for table files, workbooks, image folders and zips, and checks the two are identical, including a
folder the user happened to call ``photos.unzipped`` (an earlier version deleted it).
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

from core.data import inspect_columns, load_data, unpack_folder
from core.home import Home
from core.uploads import expire_unpacked, save_upload
from tests.conftest_data import image_folder, support_tickets, zip_folder
from tests.test_data_corpus import _three_split_tree, classes_tree, image_bytes, tree, workbook, zipped


@pytest.fixture(autouse=True)
def _default_home(tmp_path, monkeypatch):
    """Where ``Home.resolve()`` points when a test gives no home: never the real ~/.finetune-studio."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "default-home"))


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder``: kind, size, mtime and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            out[path.relative_to(folder).as_posix()] = (info.st_size if path.is_file() else 0, info.st_mtime_ns,
                                                        digest)
    return out


def _user_folder(tmp: Path) -> Path:
    """A user's data folder: a CSV, a workbook, an image folder, zips, and their own 'photos.unzipped'."""
    user = tmp / "my data"
    user.mkdir()
    support_tickets(per_team=6).to_csv(user / "tickets.csv", index=False)
    workbook({"Jan": support_tickets(per_team=3), "Feb": support_tickets(per_team=3, seed=1)})(user)
    tree(_three_split_tree())(user)
    image_folder(user / "pets", per_class=5)
    zip_folder(user / "pets", user / "photos.zip", prefix="photos/")
    zipped(_three_split_tree("flowers/"), name="flowers.zip")(user)
    notes = user / "photos.unzipped"  # the user's own folder, named like what older versions wrote
    notes.mkdir()
    (notes / "my notes.txt").write_text("hand-picked, do not lose")
    (notes / "best.png").write_bytes(image_bytes(3))
    return user


def test_loading_anything_leaves_the_users_folder_exactly_as_it_was(tmp_path, home):
    user = _user_folder(tmp_path)
    before = snapshot(user)
    time.sleep(0.01)  # a write now would change an mtime
    loads = [
        dict(path=user / "tickets.csv"),
        dict(path=user / "tickets.csv", columns={"label": "Priority"}),
        dict(path=user / "book.xlsx"),
        dict(path=str(user / "book.xlsx") + "#Feb"),
        dict(path=user / "dataset"),
        dict(path=user / "pets"),
        dict(path=user / "pets", validation_path=user / "dataset" / "val"),
        dict(path=user / "photos.zip"),
        dict(path=user / "photos.zip"),  # the second load reuses the unpacked copy
        dict(path=user / "flowers.zip"),
        dict(path=user / "photos.zip", validation_path=user / "flowers.zip"),
    ]
    for kwargs in loads:
        data = load_data(home=home, **kwargs)
        assert data.task is not None, kwargs
    load_data(user / "photos.zip")  # no home given: $STUDIO_HOME
    assert inspect_columns(user / "book.xlsx") and inspect_columns(user / "tickets.csv")
    assert snapshot(user) == before
    assert (user / "photos.unzipped" / "my notes.txt").read_text() == "hand-picked, do not lose"
    assert sorted(p.name for p in unpack_folder(home).iterdir() if p.is_dir()) == sorted(
        hashlib.sha256((user / name).read_bytes()).hexdigest() for name in ("photos.zip", "flowers.zip"))
    assert (tmp_path / "default-home" / "cache" / "unpacked").is_dir()


def test_a_refused_zip_creates_nothing_anywhere(tmp_path):
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("../../escape.png", image_bytes(1))
    before = snapshot(tmp_path)
    data = load_data(bad)
    assert "unsafe_zip" in data.report.codes()
    assert snapshot(tmp_path) == before  # not even the default studio home was created


def test_an_uploaded_zip_unpacks_into_the_home_it_was_uploaded_to(tmp_path, home):
    source = zipped(classes_tree({"cat": 3, "dog": 3}))(tmp_path)
    saved = save_upload(home, "visitor", source, "photos.zip")
    upload_folder = snapshot(saved.parent)
    data = load_data(saved)  # what the page does: no home given
    assert data.ok and all(p.startswith(str(unpack_folder(home))) for p in data.train["image"])
    assert snapshot(saved.parent) == upload_folder
    assert not (tmp_path / "default-home").exists()


def test_two_loads_of_a_new_zip_at_once_both_see_every_image(tmp_path, home):
    entries = classes_tree({"cat": 120, "dog": 120})
    archive = zipped(entries)(tmp_path)
    results, barrier = [], threading.Barrier(3)

    def load():
        barrier.wait()
        results.append(load_data(archive, home=home))
    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for data in results:
        assert data.ok, data.report
        assert len(data.train) + len(data.validation) == 240
    assert [p.name for p in unpack_folder(home).iterdir() if p.is_dir()] == [
        hashlib.sha256(archive.read_bytes()).hexdigest()]  # one copy, no half-written leftovers


def test_a_half_unpacked_copy_is_never_used(tmp_path, home):
    archive = zipped(classes_tree({"cat": 3, "dog": 3}))(tmp_path)
    cache = unpack_folder(home)
    stale = cache / f".{hashlib.sha256(archive.read_bytes()).hexdigest()[:16]}-crashed"
    (stale / "cat").mkdir(parents=True)  # what a killed unpack leaves
    data = load_data(archive, home=home)
    assert data.ok and len(data.train) + len(data.validation) == 6
    assert not any(str(stale) in p for p in data.train["image"])


def test_unused_unpacked_copies_expire_and_copies_in_use_stay(tmp_path, home):
    old = zipped(classes_tree({"cat": 3, "dog": 3}), name="old.zip")(tmp_path)
    used = zipped(classes_tree({"cat": 3, "dog": 3}, start=50), name="used.zip")(tmp_path)
    for archive in (old, used):
        load_data(archive, home=home)
    hour_ago = time.time() - 3600
    for folder in unpack_folder(home).iterdir():
        os.utime(folder, (hour_ago, hour_ago))
    removed = expire_unpacked(home, max_age_s=600, keep=[used])
    assert [p.name for p in removed] == [hashlib.sha256(old.read_bytes()).hexdigest()]
    assert load_data(used, home=home).ok and load_data(old, home=home).ok  # unpacked again on demand


def test_home_resolve_is_honoured_through_studio_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "elsewhere"))
    assert unpack_folder() == Home.resolve().root / "cache" / "unpacked"
    assert unpack_folder(tmp_path / "given") == tmp_path / "given" / "cache" / "unpacked"
