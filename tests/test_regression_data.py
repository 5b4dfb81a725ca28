"""Regression data: numeric targets in tables, image folders with metadata.csv, the classification/regression
choice for whole numbers, and the problems said in words. No model is loaded."""
from __future__ import annotations

import csv
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.data import example_path, load_data

WORDS = ["small", "large", "huge", "tiny", "medium", "red", "blue", "fast", "slow"]


def _prices(path, n=80, **extra) -> str:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        words = list(rng.choice(WORDS, 5))
        rows.append({"id": i, "description": " ".join(words) + f" item number {i}",
                     "price": f"{10 * sum(1 + WORDS.index(w) for w in words) + rng.normal(0, 3):,.2f}", **extra})
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _images(folder, n=24, seed=0, metadata=True, column="count"):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        count = int(rng.integers(1, 8))
        pixels = np.full((24, 24, 3), 250, np.uint8)
        for _ in range(count):
            x, y = rng.integers(1, 20, 2)
            pixels[y:y + 3, x:x + 3] = (0, 0, 0)
        Image.fromarray(pixels).save(folder / f"{seed}_{i:03d}.png")
        rows.append({"file_name": f"{seed}_{i:03d}.png", column: count})
    if metadata:
        pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder


def test_a_column_of_numbers_beside_text_is_a_regression_target(tmp_path):
    data = load_data(_prices(tmp_path / "prices.csv"))
    assert data.ok and data.task == "text-regression"
    assert data.columns == {"target": "price", "text": "description"}
    assert any("'price' is the target" in r for r in data.detection)
    assert set(data.train.column_names) == {"text", "target"} and isinstance(data.train[0]["target"], float)
    assert data.summary["target"]["column"] == "price" and data.summary["target"]["min"] > 10  # "1,234.50" read
    lines = "\n".join(data.understood())
    assert "text regression" in lines and "Target 'price'" in lines and "stratified by value" in lines


def test_stars_stay_classes_and_regression_is_offered(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": [f"a review of the kettle number {i} that is {WORDS[i % 9]}" for i in range(60)],
                  "stars": [1 + i % 5 for i in range(60)]}).to_csv(path, index=False)
    data = load_data(path)
    assert data.task == "text-classification" and data.candidates["task"] == ["text-classification",
                                                                             "text-regression"]
    assert any("choose task: text-regression" in r for r in data.detection)
    as_number = load_data(path, task="text-regression")
    assert as_number.ok and as_number.columns["target"] == "stars"
    assert as_number.candidates["task"] == ["text-regression", "text-classification"]
    assert any("only 5 different whole numbers" in r for r in as_number.detection)


def test_a_label_chosen_for_regression_is_its_target(tmp_path):
    data = load_data(_prices(tmp_path / "p.csv"), task="text-regression", columns={"label": "price"})
    assert data.ok and data.columns["target"] == "price"


def test_two_numeric_columns_ask_which_one(tmp_path):
    path = tmp_path / "two.csv"
    frame = pd.read_csv(_prices(tmp_path / "p.csv"))
    frame["weight"] = np.arange(len(frame)) * 1.5 + 0.25
    frame.to_csv(path, index=False)
    data = load_data(path)
    assert not data.ok and data.report.errors[0].code == "ambiguous_target"
    assert set(data.report.errors[0].options) == {"price", "weight"}
    assert "data.columns.target=" in data.report.errors[0].fix
    chosen = load_data(path, columns={"target": "weight"})
    assert chosen.ok and chosen.task == "text-regression" and chosen.columns["target"] == "weight"


def test_cells_that_are_not_numbers_are_dropped_with_a_warning(tmp_path):
    path = tmp_path / "p.csv"
    frame = pd.read_csv(_prices(tmp_path / "p0.csv"))
    frame["price"] = frame["price"].astype(str)
    frame.loc[[3, 7], "price"] = ["about ten", "n/k"]
    frame.to_csv(path, index=False)
    data = load_data(path, task="text-regression")
    assert data.ok and data.summary["dropped"]["not_a_number"] == 2
    warning = next(w for w in data.report.warnings if w.code == "not_a_number")
    assert "'about ten'" in warning.message and "rows 5 and 9" in warning.message.replace("row 5", "rows 5")


def test_a_constant_target_is_refused(tmp_path):
    path = tmp_path / "flat.csv"
    pd.DataFrame({"text": [f"some words about thing {i}" for i in range(30)], "target": [2.5] * 30}
                 ).to_csv(path, index=False)
    data = load_data(path, task="text-regression")
    assert not data.ok and "constant_target" in data.report.codes()


def test_an_image_folder_with_metadata_csv_is_image_regression(tmp_path):
    data = load_data(_images(tmp_path / "dots"))
    assert data.ok and data.task == "image-regression"
    assert data.columns == {"image": "file_name", "target": "count"}
    assert set(data.train.column_names) == {"image", "target"}
    assert all(p.startswith(str(tmp_path)) for p in data.train["image"])
    assert "image regression" in "\n".join(data.understood())


def test_metadata_in_split_folders_and_in_a_zip(tmp_path, home):
    root = tmp_path / "split"
    _images(root / "train", 24, seed=1)
    _images(root / "test", 10, seed=2)
    data = load_data(root)
    assert data.ok and data.task == "image-regression" and len(data.test) == 10
    archive = tmp_path / "dots.zip"
    folder = _images(tmp_path / "zipped" / "dots", 20, seed=3)
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, f"dots/{file.name}")
    zipped = load_data(archive, home=home)
    assert zipped.ok and zipped.task == "image-regression" and str(home.root) in zipped.train[0]["image"]


def test_image_regression_problems_are_said(tmp_path):
    no_metadata = load_data(_images(tmp_path / "plain", metadata=False), task="image-regression")
    assert not no_metadata.ok and no_metadata.report.errors[0].code == "no_metadata"
    assert "metadata.csv" in no_metadata.report.errors[0].fix
    folder = _images(tmp_path / "missing")
    with open(folder / "metadata.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["not_there.png", 3])
    data = load_data(folder)
    assert data.ok and "missing_image" in data.report.codes()
    table = load_data(_prices(tmp_path / "p.csv"), task="image-regression")
    assert not table.ok and table.report.errors[0].code == "task_mismatch"


def test_the_bundled_regression_examples_read_cleanly():
    sizes = load_data(example_path("debian-sizes"))
    assert sizes.ok and sizes.task == "text-regression" and sizes.columns["target"] == "size_log10_kb"
    assert len(sizes.train) + len(sizes.validation) == 800 and not sizes.report.warnings
    counts = load_data(example_path("shape-counts"))
    assert counts.ok and counts.task == "image-regression" and counts.columns["target"] == "circles"
    assert len(counts.train) + len(counts.validation) == 300 and counts.summary["target"]["max"] == 12


@pytest.mark.parametrize("task", ["text-regression", "image-regression"])
def test_regression_tasks_and_strategies_are_registered(task):
    from core.config import JobConfig
    from core.strategies import strategies_for

    config = JobConfig.from_yaml(f"task: {task}\nmodel: minilm-l6\ndata: {{path: a.csv}}")
    assert config.strategy == "auto" and not config.problems()
    assert {"auto", "head-only", "lora", "full"} <= set(strategies_for(task))
    assert "prefix" not in strategies_for(task)
