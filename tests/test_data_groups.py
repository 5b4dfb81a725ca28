"""A group column (one customer's tickets, one source's packages): every split keeps each group on one side."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.data import load_data
from core.data.groups import folds, split_indices
from core.data.overview import scored_on
from core.engine.classify.fitting import folds_for
from core.engine.regression.objective import Regression
from tests.conftest_data import write

TOPICS = {"billing": "invoice charge refund payment", "tech": "crash error login screen",
          "account": "password email profile settings"}


def grouped_csv(path, customers: int = 30, extra: str = "", seed: int = 0):
    """Tickets of several customers; a customer's tickets share their wording and their class."""
    rng = np.random.default_rng(seed)
    lines = ["ticket,topic,customer" + extra]
    for c in range(customers):
        topic = list(TOPICS)[c % 3]
        words = TOPICS[topic].split()
        for j in range(int(rng.integers(2, 7))):
            lines.append(f"customer{c} writes {words[j % 4]} {words[(j + c) % 4]} again {j},{topic},c{c:02d}")
    return write(path, "\n".join(lines) + "\n")


def test_a_group_never_straddles_the_split_and_the_datasets_carry_it(tmp_path):
    data = load_data(grouped_csv(tmp_path / "t.csv"), columns={"group": "customer"})
    assert data.report.ok, data.report.errors
    train, validation = set(data.train["group"]), set(data.validation["group"])
    assert train and validation and not train & validation
    assert set(data.validation["label"]) == {0, 1, 2}  # stratified as well as whole groups allow
    assert 0.1 < len(data.validation) / (len(data.train) + len(data.validation)) < 0.35
    assert data.summary["validation"]["group"] == "customer"
    assert scored_on(data.summary) == "on the validation split (each 'customer' on one side)"  # the verdict's words
    said = [line for line in data.detection if "stays on one side" in line]
    assert said and f"{len(validation)} validate" in said[0]
    again = load_data(grouped_csv(tmp_path / "t.csv"), columns={"group": "customer"})
    assert list(again.validation["group"]) == list(data.validation["group"])  # seeded
    other = load_data(grouped_csv(tmp_path / "t.csv"), columns={"group": "customer"}, seed=5)
    assert set(other.validation["group"]) != validation


def test_without_a_group_column_nothing_is_grouped_and_none_is_guessed(tmp_path):
    data = load_data(grouped_csv(tmp_path / "t.csv"))
    assert data.report.ok and "group" not in data.columns and "group" not in data.train.column_names
    assert "group" not in data.summary["validation"]


def test_an_empty_group_cell_is_a_group_of_its_own(tmp_path):
    path = grouped_csv(tmp_path / "t.csv")
    text = path.read_text().splitlines()
    text[1] = text[1].rsplit(",", 1)[0] + ","  # the first ticket has no customer
    write(path, "\n".join(text) + "\n")
    data = load_data(path, columns={"group": "customer"})
    assert data.report.ok
    groups = list(data.train["group"]) + list(data.validation["group"])
    assert sum(g.startswith("\x00row") for g in groups) == 1


@pytest.mark.parametrize("columns, code", [({"group": "topic", "label": "topic"}, "group_is_label"),
                                           ({"group": "ticket", "text": "ticket"}, "group_is_text")])
def test_a_group_column_cannot_be_another_role(tmp_path, columns, code):
    data = load_data(grouped_csv(tmp_path / "t.csv"), columns=columns)
    assert code in [p.code for p in data.report.errors]
    problem = next(p for p in data.report.errors if p.code == code)
    assert "Choose another column as the group" in problem.fix


def test_one_group_for_every_row_is_refused_with_what_to_do(tmp_path):
    path = grouped_csv(tmp_path / "t.csv", extra=",shop")
    lines = path.read_text().splitlines()
    write(path, "\n".join([lines[0]] + [line + ",main" for line in lines[1:]]) + "\n")
    data = load_data(path, columns={"group": "shop"})
    problem = next(p for p in data.report.errors if p.code == "one_group")
    assert "'shop'" in problem.message and "(not used)" in problem.fix


def test_a_group_for_chat_is_not_used_and_says_why(tmp_path):
    path = write(tmp_path / "c.csv", "prompt,response,user\n" + "\n".join(
        f"question {i},answer number {i},u{i % 4}" for i in range(30)) + "\n")
    data = load_data(path, columns={"group": "user"})
    assert data.report.ok and "group" not in data.columns
    assert any("'user' is not used as the group" in line for line in data.detection)


def test_a_validation_file_sharing_training_groups_is_warned_about(tmp_path):
    path = grouped_csv(tmp_path / "t.csv")
    same = grouped_csv(tmp_path / "same.csv", seed=1)  # the same customers, other tickets
    data = load_data(path, columns={"group": "customer"}, validation_path=same)
    warned = next(p for p in data.report.warnings if p.code == "groups_in_training")
    assert "same.csv" in warned.message and "not how it does on new ones" in warned.message
    assert warned.message in data.report.cautions()  # what studio eval --data and predict repeat
    from core.cli import eval_summary
    assert warned.message in eval_summary({"cautions": data.report.cautions()})
    new = write(tmp_path / "new.csv", "ticket,topic,customer\n" + "\n".join(
        f"someone else asks about {TOPICS[t].split()[i % 4]} {i},{t},n{i}" for i, t in enumerate(list(TOPICS) * 4))
        + "\n")
    clean = load_data(path, columns={"group": "customer"}, validation_path=new)
    assert clean.report.ok and "groups_in_training" not in [p.code for p in clean.report.warnings]
    bare = write(tmp_path / "bare.csv", "ticket,topic\n" + "\n".join(
        f"a new ticket about {TOPICS[t].split()[i % 4]} {i},{t}" for i, t in enumerate(list(TOPICS) * 4)) + "\n")
    without = load_data(path, columns={"group": "customer"}, validation_path=bare)  # the file has no such column
    assert without.report.ok, without.report.errors
    assert len(without.validation) == 12 and "group" not in without.validation.column_names


def test_regression_rows_keep_groups_apart(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["review,score,shop"] + [
        f"shop {s} review {j} says {'great' if s % 2 else 'poor'},{s % 5 + rng.random():.2f},s{s}"
        for s in range(25) for j in range(4)]
    data = load_data(write(tmp_path / "r.csv", "\n".join(lines) + "\n"), columns={"group": "shop"})
    assert data.task == "text-regression" and data.report.ok, data.report.errors
    assert not set(data.train["group"]) & set(data.validation["group"])


def test_split_and_folds_keep_groups_whole():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(40), rng.integers(1, 6, 40)).astype(str)
    labels = np.array([int(g) % 4 for g in groups])
    train, val = split_indices(groups, 0.2, 0, labels)
    assert not set(groups[train]) & set(groups[val])
    assert sorted(np.concatenate([train, val])) == list(range(len(groups)))
    for make in (lambda: folds(groups, 5, 0, labels), lambda: folds_for(labels, 5, 0, groups),
                 lambda: Regression.of(labels.astype(float), "y").folds(labels.astype(float), 5, 0, groups),
                 lambda: folds(groups, 5, 0)):
        made = make()
        assert len(made) == 5
        for a, b in made:
            assert not set(groups[a]) & set(groups[b])
        assert sorted(np.concatenate([b for _, b in made])) == list(range(len(groups)))
    assert len(folds(np.array(["a", "b", "b", "c"]), 5, 0)) == 3  # fewer groups, fewer folds
    with pytest.raises(ValueError, match="at least two groups"):
        folds(np.array(["a"] * 6), 3, 0)


def test_the_search_keeps_groups_in_one_fold_and_says_so(home, bert_dir, tmp_path):
    from tests.test_classify_support import make_context, run_recipe

    data = load_data(grouped_csv(tmp_path / "t.csv", customers=24), columns={"group": "customer"})
    ctx = make_context(home, str(bert_dir), "text-classification", "auto", data, max_minutes=0.5, threads=1)
    _, report = run_recipe(ctx)
    board = json.loads((ctx.run.path / "leaderboard.json").read_text())
    assert "each 'customer' in one fold" in board["metric"] and board["winner"]
    assert report["tuned"]["accuracy"] is not None


def test_image_regression_takes_a_group_column_from_metadata_csv(tmp_path):
    import pandas as pd
    from tests.test_regression_data import _images

    folder = _images(tmp_path / "specimens", n=60)
    meta = pd.read_csv(folder / "metadata.csv")
    meta["specimen"] = [f"s{i // 3}" for i in range(len(meta))]  # three photos of each specimen
    meta.to_csv(folder / "metadata.csv", index=False)
    offered = load_data(folder)
    assert offered.report.ok and offered.candidates.get("group") == ["specimen"]
    assert "group" not in offered.columns and any("choose it as the group" in r for r in offered.detection)
    data = load_data(folder, columns={"group": "specimen"})
    assert data.task == "image-regression" and data.report.ok, data.report.errors
    assert data.columns["group"] == "specimen"
    assert not set(data.train["group"]) & set(data.validation["group"])
    wrong = load_data(folder, columns={"group": "specimn"})
    assert "unknown_column" in wrong.report.codes() and "'specimen'" in wrong.report.errors[0].message
    clash = load_data(folder, columns={"group": "count", "target": "count"})
    assert "group_is_target" in clash.report.codes()
    assert not load_data(folder, columns={"group": "count"}).report.ok  # the group is never the number to predict


def test_an_image_folder_of_class_subfolders_keeps_each_subfolder_on_one_side(tmp_path):
    from tests.conftest_data import png

    for c, cls in enumerate(("benign", "malignant")):
        for patient in range(8):
            for scan in range(3):  # one patient's scans are alike
                png(tmp_path / "scans" / cls / f"patient{c}{patient}" / f"{scan}.png",
                    color=30 * c + 3 * patient + scan)
    data = load_data(tmp_path / "scans")
    assert data.report.ok and data.columns["group"] == "subfolder"
    train, validation = set(data.train["group"]), set(data.validation["group"])
    assert validation and not train & validation and "benign/patient00" in train | validation
    assert any(line.startswith("Each class subfolder stays on one side") for line in data.detection)
    warned = next(p for p in data.report.warnings if p.code == "nested_class_folders")
    assert "subfolders the model never saw" in warned.message
    assert scored_on(data.summary) == "on the validation split (each class subfolder on one side)"
    flat = load_data(tmp_path / "scans" / "benign")  # the patients are the classes now: nothing to group
    assert "group" not in flat.columns and "group" not in flat.train.column_names
    import shutil
    shutil.copytree(tmp_path / "scans", tmp_path / "split" / "train")  # the same inside a train split folder
    split = load_data(tmp_path / "split")
    assert split.report.ok and split.columns["group"] == "subfolder"
    assert not set(split.train["group"]) & set(split.validation["group"])
    shutil.copytree(tmp_path / "scans", tmp_path / "split" / "validation")  # a validation folder: used as given
    given = load_data(tmp_path / "split")
    assert given.summary["validation"] == {"source": "folder"}
    assert not any("stays on one side" in line for line in given.detection)


def test_chance_is_measured_over_groups_when_rows_come_in_groups():
    from core.data.groups import mean_se
    from core.engine.classify import baselines

    rng = np.random.default_rng(0)
    right = rng.integers(0, 2, 200).astype(float)
    assert mean_se(right) == pytest.approx(right.std(ddof=1) / np.sqrt(200))
    assert mean_se(right, [str(i) for i in range(200)]) == pytest.approx(mean_se(right), rel=1e-6)  # one row each
    families = np.repeat(np.arange(20), 10).astype(str)
    alike = np.repeat(rng.integers(0, 2, 20), 10).astype(float)  # ten rows of a family: all right or all wrong
    assert mean_se(alike, families) > 2.5 * mean_se(alike)  # about sqrt(10) wider: 20 groups, not 200 rows
    tuned = {"accuracy": float(alike.mean())}
    right_families = sorted(set(families[alike == 1]))[:2]
    worse = np.where(np.isin(families, right_families), 0.0, alike)  # the baseline misses two whole families
    weaker = baselines.Baseline({"accuracy": float(worse.mean())}, "Base model (no training)", "", worse)
    flat = baselines.verdict(tuned, alike, {"base": weaker})
    grouped = baselines.verdict(tuned, alike, {"base": weaker}, groups=list(families))
    assert grouped["noise"] > flat["noise"] and "200 rows from 20 groups" in grouped["message"]
