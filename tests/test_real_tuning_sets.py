"""The unseen preference pairs of scripts/real_tuning_sets.py share no answer with the training pairs."""
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import real_tuning_sets  # noqa: E402


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_test_pairs_share_no_sentence_with_training_pairs(tmp_path):
    real_tuning_sets.write_pairs(tmp_path)
    train, test = _rows(tmp_path / "pairs_train.csv"), _rows(tmp_path / "pairs_test.csv")
    trained = {row[key] for row in train for key in ("chosen", "rejected")}
    assert len(train) > 300 and len(test) > 100
    leaked = [row["prompt"] for row in test if row["chosen"] in trained or row["rejected"] in trained]
    assert leaked == []  # os.path (posixpath in training) and math (cmath) leaked before


def test_unseen_rows_drops_a_pair_with_a_trained_answer():
    rows = [("q1", "a", "b"), ("q2", "c", "d"), ("q3", "e", "a")]
    assert real_tuning_sets.unseen_rows(rows, {"a"}) == [("q2", "c", "d")]
