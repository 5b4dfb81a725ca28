"""An RBF support-vector regression on raw inputs: the outside reference issue 18 sets for the regression tasks.

Texts become TF-IDF vectors (words, unigrams and bigrams, sublinear counts), images their raw grey pixels at the
file's own size scaled to 0-1; the targets are standardised for the fit. ``mae_within_range`` is the MAE with the
predictions kept within the training targets' range, as the studio keeps its own. C, gamma and epsilon are chosen by 5-fold
cross-validation on the training file only (mean absolute error); the test file is scored once, by the refit model.

    .venv/bin/python scripts/svr_baseline.py TRAIN TEST [--column size_log10_kb] [--rows-of RUN]

TRAIN and TEST are CSV files (a text column and a number column) or image folders with ``metadata.csv``
(``file_name`` and the value column). Prints MAE, RMSE and R² on the test rows with the chosen settings, as JSON.

``--rows-of RUN`` fits on the rows a studio run trained on: the studio keeps a validation split out of TRAIN (a
fifth by default) for its report, so the SVR fitted on all of TRAIN has a quarter more rows than the model it is
compared with. The run's split is made again from its ``config.yaml`` (same fraction and seed).
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
GAMMA_FACTORS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # times sklearn's "scale" (1 / (features x variance))
EPSILON_GRID = (0.05, 0.2)  # in spreads of the target


def read(path: Path, column: str | None) -> tuple[list, np.ndarray, bool]:
    """(texts or image paths, values, is_image) of a CSV file or a metadata.csv image folder."""
    image = path.is_dir()
    table = path / "metadata.csv" if image else path
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = list(rows[0])
    value = column or names[-1]
    if image:
        return [path / row["file_name"] for row in rows], np.array([float(r[value]) for r in rows]), True
    text = next(n for n in names if n != value)
    return [row[text] for row in rows], np.array([float(r[value]) for r in rows]), False


def rows_of(run: Path, items: list, values: np.ndarray, image: bool) -> tuple[list, np.ndarray]:
    """The rows of (items, values) that the studio run trained on (its training split, made again)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from core.config import JobConfig
    from core.data import load_data

    config = JobConfig.from_yaml((run / "config.yaml").read_text(encoding="utf-8"))
    d = config.data
    prepared = load_data(d.path, task=config.task, columns=d.columns or None, validation_path=d.validation_path,
                         validation_fraction=d.validation_fraction, seed=config.train.seed)
    column = "image" if image else "text"
    trained = [Path(x).name if image else str(x) for x in prepared.train[column]]
    keys = [Path(x).name if image else str(x) for x in items]
    wanted: dict[str, int] = {}
    for key in trained:
        wanted[key] = wanted.get(key, 0) + 1
    keep = []
    for i, key in enumerate(keys):
        if wanted.get(key, 0) > 0:
            wanted[key] -= 1
            keep.append(i)
    if len(keep) != len(trained):
        raise SystemExit(f"found {len(keep)} of the run's {len(trained)} training rows in the training file")
    return [items[i] for i in keep], values[keep]


def pixels(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float64).ravel() / 255.0 for p in paths])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("--column", default=None, help="the number column (default: the last)")
    parser.add_argument("--rows-of", type=Path, default=None, help="a studio run: fit on the rows it trained on")
    args = parser.parse_args(argv)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVR

    started = time.perf_counter()
    train_x, train_y, image = read(args.train, args.column)
    if args.rows_of is not None:
        train_x, train_y = rows_of(args.rows_of, train_x, train_y, image)
    test_x, test_y, _ = read(args.test, args.column)
    mean, spread = train_y.mean(), train_y.std() or 1.0
    if image:
        train_f, test_f = pixels(train_x), pixels(test_x)
        steps = []
    else:
        train_f, test_f = train_x, test_x
        steps = [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)]
    # sklearn's "scale" gamma of the features the SVR sees, the centre of the gamma grid
    if image:
        base = 1.0 / (train_f.shape[1] * train_f.var())
    else:
        dense = steps[0].fit(train_f).transform(train_f)
        base = 1.0 / (dense.shape[1] * (dense.multiply(dense).mean() - dense.mean() ** 2))
    grid = {"svr__C": list(C_GRID), "svr__gamma": [base * f for f in GAMMA_FACTORS],
            "svr__epsilon": list(EPSILON_GRID)}
    model = make_pipeline(*steps, SVR(kernel="rbf"))
    search = GridSearchCV(model, grid, scoring="neg_mean_absolute_error", cv=KFold(5, shuffle=True, random_state=0),
                          n_jobs=1).fit(train_f, (train_y - mean) / spread)
    predicted = search.predict(test_f) * spread + mean
    error = predicted - test_y
    result = {
        "train_rows": len(train_y), "test_rows": len(test_y), "inputs": "raw pixels" if image else "TF-IDF 1-2 grams",
        "mae": round(float(np.abs(error).mean()), 4), "rmse": round(float(np.sqrt((error ** 2).mean())), 4),
        "r2": round(float(1 - (error ** 2).sum() / ((test_y - test_y.mean()) ** 2).sum()), 4),
        # the studio keeps its answers within the training targets' range: the same rule applied to the SVR
        "mae_within_range": round(float(np.abs(np.clip(predicted, train_y.min(), train_y.max()) - test_y).mean()), 4),
        "cv_mae": round(float(-search.best_score_ * spread), 4),
        "C": search.best_params_["svr__C"], "gamma_x_scale": round(search.best_params_["svr__gamma"] / base, 3),
        "epsilon_spreads": search.best_params_["svr__epsilon"], "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
