"""When the predicted file carries the true labels (or values): the accuracy (or errors) ``studio eval RUN --data
FILE`` reports.

``studio eval`` scores the rows its data rules keep (no duplicates, no row that is also in the training data, no
class the model never saw). Batch prediction predicts every row, then scores exactly those rows with the
predictions it already made and the same metric function, so the two figures are the same number.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .source import PredictError


class Scores:
    """Probabilities kept per item (text, or image content) while predicting, for scoring afterwards."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.probs: dict[str, np.ndarray] = {}

    def key(self, item) -> str:
        """Texts by their text (as the data module cleans it); images by their bytes (the file may have been
        unpacked elsewhere by ``studio eval``)."""
        from ..tasks import get_task

        if get_task(self.task).modality == "image":
            from ..data.images import file_key
            return file_key(item)
        return hashlib.sha1(str(item).encode("utf-8", "surrogatepass")).hexdigest()

    def keep(self, items: list, probs: np.ndarray) -> None:
        for item, p in zip(items, probs):
            self.probs[self.key(item)] = p.astype(np.float32)


def eval_scores(config, home, data_path: Path, scores: Scores, classifier) -> dict:
    """The accuracy and macro-F1 ``studio eval --data`` computes for this file, from the kept predictions.

    Args:
        config: the run's ``JobConfig``.
        home: the studio home.
        data_path: the predicted file.
        scores: the predictions made (items the lookup misses are predicted again, in eval's batches).
        classifier: the run's ``core.inference.classify.Classifier``.

    Returns a dict with ``accuracy``, ``macro_f1``, ``examples`` (rows scored), ``labelled_rows_left_out`` and
    ``why`` (sentences from the data rules that left rows out).
    """
    from ..engine.classify.baselines import scores as headline_scores
    from ..hardware import detect_hardware
    from ..plan import plan_job

    plan = plan_job(config, home, detect_hardware(), data_path=str(data_path))
    if not plan.ok:
        raise PredictError("The accuracy could not be measured the way `studio eval` does: "
                           + plan.describe_problems())
    data = plan.data
    column = "image" if config.task == "image-classification" else "text"
    items, labels = list(data.validation[column]), [int(v) for v in data.validation["label"]]
    if list(data.labels) != list(classifier.labels):
        raise PredictError("The run's saved classes differ from its training data's classes now; re-train the run "
                           "or evaluate it with `studio eval`.")
    _require_rows(items, data, data_path, "accuracy")
    missing = [i for i, item in enumerate(items) if scores.key(item) not in scores.probs]
    if missing:
        scores.keep([items[i] for i in missing], classifier.predict_batch([items[i] for i in missing]))
    probs = np.stack([scores.probs[scores.key(item)] for item in items])
    result = headline_scores(probs, labels, len(classifier.labels))
    why = data.report.left_out(Path(data_path).name)
    return {**result, "examples": len(items), "why": why, "cautions": data.report.cautions()}


def eval_errors(config, home, data_path: Path, scores: Scores, regressor) -> dict:
    """The mean absolute error, RMSE and R² ``studio eval --data`` computes for this file, from the kept
    predictions (a regressor's).

    Args:
        config: the run's ``JobConfig``.
        home: the studio home.
        data_path: the predicted file (a table with the target column, or an image folder with metadata.csv).
        scores: the predictions made (items the lookup misses are predicted again).
        regressor: the run's ``core.inference.regress.Regressor``.

    Returns a dict with ``mae``, ``rmse``, ``r2``, ``examples`` and ``why`` (as ``eval_scores``).
    """
    from ..engine.regression.metrics import scores as error_scores
    from ..hardware import detect_hardware
    from ..plan import plan_job

    plan = plan_job(config, home, detect_hardware(), data_path=str(data_path))
    if not plan.ok:
        raise PredictError("The errors could not be measured the way `studio eval` does: "
                           + plan.describe_problems())
    data = plan.data
    column = "text" if "text" in data.validation.column_names else "image"
    items, values = list(data.validation[column]), [float(v) for v in data.validation["target"]]
    _require_rows(items, data, data_path, "errors")
    missing = [i for i, item in enumerate(items) if scores.key(item) not in scores.probs]
    if missing:
        scores.keep([items[i] for i in missing], regressor.predict_batch([items[i] for i in missing]))
    predicted = np.array([float(scores.probs[scores.key(item)]) for item in items])
    why = data.report.left_out(Path(data_path).name)
    return {**error_scores(values, predicted), "examples": len(items), "why": why,
            "cautions": data.report.cautions()}


def _require_rows(items: list, data, data_path: Path, what: str) -> None:
    """No row left to score (every labelled row is a training row, a duplicate or of an unknown class): say why
    instead of a number."""
    if items:
        return
    reasons = " ".join(w.message for w in data.report.warnings) or "no labelled row passed the data checks."
    raise PredictError(f"No {what} for {Path(data_path).name}: none of its labelled rows can be scored the way "
                       f"`studio eval` does ({reasons}) The predictions themselves are written.")
