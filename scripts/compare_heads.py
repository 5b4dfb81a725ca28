"""Standalone comparison of the automatic search's ways to choose a head, on a text set of
``scripts/quality_sets.py`` (docs/QUALITY.md section 16).

Six heads (logistic regression on MiniLM + TF-IDF, on MiniLM, on TF-IDF; an RBF kernel head on MiniLM + TF-IDF and
on TF-IDF; an MLP on MiniLM + TF-IDF), each with its penalty (and width) chosen as the search chooses them, scored by
5-fold cross-validation on all training rows with the studio's own fitting code, then fitted on all of them and
checked on the test file. Then three rules for choosing among them: the lowest calibrated log-loss, the simplest
within one paired standard error of it (``Classification.choose_head``), and an average of the heads in that band.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/compare_heads.py debian-sections [--out /tmp/qsets]
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.classify.fitting import (KERNEL_L2_GRID, L2_GRID, HeadSpec, body_probs,  # noqa: E402
                                          cross_val_probs, fit_body, fit_temperature, folds_for, row_log_losses,
                                          within_paired_error)
from core.home import Home  # noqa: E402
from core.models import resolve_model  # noqa: E402
from core.models.backbones import load_text_encoder  # noqa: E402
from core.models.classical import TfidfFeatures  # noqa: E402
from core.models.heads import FeatureHead  # noqa: E402

KERNEL_WIDTHS = (0.5, 1.0, 2.0, 4.0)
MLP = HeadSpec(l2=1e-2, hidden=256, steps=200)


@dataclass
class Scored:
    name: str
    complexity: int  # 0 linear, 1 MLP, 2 kernel (``objective.head_complexity``)
    oof: np.ndarray  # calibrated out-of-fold probabilities
    test: np.ndarray  # calibrated test probabilities of the head fitted on every training row
    row_losses: np.ndarray  # calibrated out-of-fold log-loss of each training row

    @property
    def cv_loss(self) -> float:
        return float(self.row_losses.mean())


def calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Study:
    def __init__(self, blocks_train: dict, blocks_test: dict, y_train: np.ndarray, n_classes: int) -> None:
        self.train, self.test, self.y, self.n_classes = blocks_train, blocks_test, y_train, n_classes
        self.folds = folds_for(y_train, 5, 0)

    def score(self, name: str, keys: list[str], specs: list[HeadSpec], complexity: int) -> Scored:
        """Cross-validate ``specs`` on the blocks ``keys``; keep the strongest penalty within one paired standard
        error of the lowest calibrated log-loss; fit it on every training row and predict the test rows."""
        x = torch.cat([self.train[k] for k in keys], 1)
        x_test = torch.cat([self.test[k] for k in keys], 1)
        dims, flags = [self.train[k].shape[1] for k in keys], [k != "tfidf" for k in keys]
        y = torch.as_tensor(self.y)

        def prepare(train_idx, test_idx):
            head = FeatureHead(dims, self.n_classes)
            head.set_scale(x[train_idx], flags)
            return head.prepare(x[train_idx]), y[train_idx], None, head.prepare(x[test_idx])

        tried = []
        for spec, probs in zip(specs, cross_val_probs(prepare, self.y, self.folds, self.n_classes, specs)):
            temperature = fit_temperature(probs, self.y)
            tried.append((spec, probs, temperature, row_log_losses(probs, self.y, temperature)))
        best = min(tried, key=lambda t: t[3].mean())
        spec, probs, temperature, losses = max((t for t in tried if within_paired_error(t[3], best[3])),
                                               key=lambda t: (t[0].l2, -t[3].mean()))
        head = FeatureHead(dims, self.n_classes)
        head.set_scale(x, flags)
        body = fit_body(head.prepare(x), y, self.n_classes, spec, 0)
        test = calibrated(body_probs(body, head.prepare(x_test)), temperature)
        return Scored(f"{name} ({spec.describe()})", complexity, calibrated(probs, temperature), test, losses)

    def kernel(self, name: str, keys: list[str]) -> Scored:
        by_width = [self.score(name, keys, [HeadSpec(l2=l2, kernel_width=w) for l2 in KERNEL_L2_GRID], 2)
                    for w in KERNEL_WIDTHS]
        return min(by_width, key=lambda s: s.cv_loss)


def read(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    return [r[0] for r in rows], [r[1] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--out", default="/tmp/qsets")
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts, labels = read(Path(args.out) / args.name / "train.csv")
    test_texts, test_labels = read(Path(args.out) / args.name / "test.csv")
    classes = sorted(set(labels))
    y, y_test = (np.array([classes.index(v) for v in values]) for values in (labels, test_labels))
    encoder = load_text_encoder(resolve_model("minilm-l6", Home.resolve(), task="text-classification"))
    tfidf = TfidfFeatures().fit(texts)
    study = Study({"minilm": encoder.embed(texts), "tfidf": tfidf.transform(texts)},
                  {"minilm": encoder.embed(test_texts), "tfidf": tfidf.transform(test_texts)}, y, len(classes))
    heads = [study.score("LR on MiniLM + TF-IDF", ["minilm", "tfidf"], [HeadSpec(l2=l2) for l2 in L2_GRID], 0),
             study.score("LR on MiniLM", ["minilm"], [HeadSpec(l2=l2) for l2 in L2_GRID], 0),
             study.score("LR on TF-IDF", ["tfidf"], [HeadSpec(l2=l2) for l2 in L2_GRID], 0),
             study.kernel("RBF kernel on MiniLM + TF-IDF", ["minilm", "tfidf"]),
             study.kernel("RBF kernel on TF-IDF", ["tfidf"]),
             study.score("MLP on MiniLM + TF-IDF", ["minilm", "tfidf"], [MLP], 1)]

    def accuracy(probs: np.ndarray) -> float:
        return float((probs.argmax(1) == y_test).mean())

    for h in heads:
        print(f"{h.name:75s} CV acc {(h.oof.argmax(1) == y).mean():.3f} log-loss {h.cv_loss:.3f} | "
              f"test acc {accuracy(h.test):.4f}")
    lowest = min(heads, key=lambda h: h.cv_loss)
    band = [h for h in heads if within_paired_error(h.row_losses, lowest.row_losses)]
    simplest = min(band, key=lambda h: (h.complexity, h.cv_loss))
    print(f"{args.name}: lowest log-loss: {lowest.name}: test {accuracy(lowest.test):.4f}")
    print(f"{args.name}: simplest within one paired standard error: {simplest.name}: "
          f"test {accuracy(simplest.test):.4f}")
    print(f"{args.name}: average of the {len(band)} heads in the band: test "
          f"{accuracy(sum(h.test for h in band) / len(band)):.4f}")


if __name__ == "__main__":
    main()
