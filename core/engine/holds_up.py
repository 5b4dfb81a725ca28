"""Does a run's validation figure hold on a new labelled file?

The figure a run reports comes from its validation rows, split off the same upload as its training rows. When
that upload holds near copies (one icon drawn at ten battery levels, one customer's five tickets, one patient's
scans), the validation rows resemble the training rows more than new data will, and the figure overstates. A
labelled file scored later (``studio eval RUN --data FILE``, or a labelled file predicted on the page) is the
check: when it scores lower by more than chance moves two such figures, say so in words, with what to do.

Classifiers compare accuracies (a proportion's standard error on each side); regressors compare mean absolute
errors (each side's spread of absolute errors, from its RMSE and MAE: var |e| = RMSE² - MAE²).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

ADVICE = ("The validation rows are likely more like the training rows than new data is (near copies, the same "
          "source or session on both sides of the split): trust this file's figure. When you train again, give a "
          "file like it as the validation data (on the page: the Data step's \"Validation data\"; in a config: "
          "data.validation_path), or, when a column says which rows belong together (a customer, a source), choose "
          "it as the group (the Data step's \"group\" list; data.columns.group) so no group is on both sides; for "
          "an image folder, put each object's or session's pictures in a subfolder of its class folder.")


def against_validation(run_eval: Path, scored: dict, file: Path, validation_file: str | None = None) -> dict | None:
    """The file's figure beside the run's validation figure, and whether the gap is more than chance.

    Args:
        run_eval: the run's ``eval.json`` (its validation report); nothing is said when it is missing.
        scored: the file's scores: ``accuracy`` (classifiers) or ``mae`` and ``rmse`` (regressors), with
            ``examples``, the rows scored, and ``se``, the score's standard error, where its rows have groups.
        file: the scored file (its name is what the message gives).
        validation_file: the run's own validation file, when it had one: the same file scored again says
            nothing new, so nothing is said.

    Returns ``{"validation", "file", "gap", "noise", "lower", "message"}`` (gap: how much worse the file is, in
    the metric's own units; noise: two standard errors of that difference), or None when the two cannot be
    compared (no validation report, another metric, no rows).
    """
    if validation_file and _same_file(Path(file), Path(validation_file)):
        return None
    file_name = Path(file).name
    try:
        report = json.loads(Path(run_eval).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tuned = report.get("tuned") if isinstance(report, dict) else None
    n_val, n_file = report.get("examples") or report.get("rows") or 0, scored.get("examples") or 0
    if not isinstance(tuned, dict) or not n_val or not n_file:
        return None
    grouped = (report.get("grouped") or {}).get("se")  # the validation rows had groups: their own spread
    if "accuracy" in scored and "accuracy" in tuned:
        val, got = float(tuned["accuracy"]), float(scored["accuracy"])
        spread = [_share_var(val, n_val) / n_val, _share_var(got, n_file) / n_file]
        gap, noise = val - got, 2 * math.sqrt(_grouped(spread, grouped, scored.get("se")))
        say, apart = _percent, _points
        what = "scored"
    elif "mae" in scored and "mae" in tuned and "rmse" in scored and "rmse" in tuned:
        val, got = float(tuned["mae"]), float(scored["mae"])
        spread = [max(float(r["rmse"]) ** 2 - float(r["mae"]) ** 2, 0.0) / n
                  for r, n in ((tuned, n_val), (scored, n_file))]
        gap, noise = got - val, 2 * math.sqrt(_grouped(spread, grouped, scored.get("se")))
        say = apart = _number
        what = "had a mean absolute error of"
    else:
        return None
    if not all(map(math.isfinite, (val, got, gap, noise))):
        return None
    lower = gap > noise
    if lower:
        message = (f"On {file_name} the tuned model {what} {say(got)}, against {say(val)} on its validation rows: "
                   f"worse by {apart(gap)}, more than chance moves it on {n_file:,} and {n_val:,} rows "
                   f"(±{apart(noise)}). {ADVICE}")
    elif -gap > noise:
        message = (f"On {file_name} the tuned model {what} {say(got)}, better than on its validation rows "
                   f"({say(val)} on {n_val:,}) by more than chance moves it (±{apart(noise)}): this file is easier "
                   "than the validation rows were.")
    else:
        message = (f"This holds up the figure on the validation rows ({say(val)} on {n_val:,}): the gap is within "
                   f"what chance moves it (±{apart(noise)}).")
    return {"validation": val, "file": got, "gap": gap, "noise": noise, "lower": lower, "message": message}


def _same_file(a: Path, b: Path) -> bool:
    """The same path, or two files with the same bytes (the page keeps its own copy of each upload)."""
    from ..data.images import file_key  # the bytes' hash the data checks use (PIL loads only when it is needed)

    try:
        if a.resolve() == b.resolve():
            return True
        if not (a.is_file() and b.is_file()) or a.stat().st_size != b.stat().st_size:
            return False
        return file_key(str(a)) == file_key(str(b))
    except OSError:
        return False


def _grouped(variances: list[float], validation_se: float | None, file_se: float | None) -> float:
    """The variance of the gap: the sum of each side's, the larger of its own and, where its rows had groups, its
    grouped standard error squared (``core.data.groups.mean_se``: one group's rows move the score together)."""
    val, file = variances
    if validation_se is not None and math.isfinite(validation_se):
        val = max(val, validation_se ** 2)
    if file_se is not None and math.isfinite(file_se):
        file = max(file, file_se ** 2)
    return val + file


def _share_var(p: float, n: int) -> float:
    """A proportion's variance, kept off 0 at 0 % and 100 % (one more right and one more wrong row)."""
    shrunk = (p * n + 1) / (n + 2)
    return shrunk * (1 - shrunk)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%" if abs(value) >= 0.001 else "0.0%"


def _points(value: float) -> str:
    return f"{value * 100:.1f} points"


def _number(value: float) -> str:
    return f"{value:.4g}"
