"""Batch prediction: a run's tuned model over a whole file, written out as the file plus the model's columns.

Classifiers add ``predicted_label``, ``confidence`` and ``top_3`` to every row (or image); regressors add a
``predicted_value``; chat models add an ``answer`` per prompt. Every input column is kept, in order, so the result goes straight back into a spreadsheet.
Rows stream through in chunks: memory holds one chunk of rows and one batch of model inputs, whatever the file's
size, and the output grows as rows are done. Stop keeps the rows finished so far.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..engine.holds_up import against_validation
from .source import PredictError, Source, open_images, open_table

Progress = Callable[[str, float | None], None]
STEP = 256  # items per model call: the text encoder's batch, and a multiple of the image and fine-tune batches
OUTPUT_SUFFIXES = (".csv", ".jsonl")


@dataclass
class PredictResult:
    """What ``predict_file`` did.

    Attributes:
        out: the file written.
        task: the run's task.
        rows: rows (or images) written.
        total: rows in the input.
        predicted: rows that got a prediction (the others say why in ``problem``).
        stopped: Stop was pressed; ``out`` holds the rows done before it.
        seconds: wall time.
        accuracy: when the file has the true labels: ``accuracy``, ``macro_f1`` and ``examples``, the same figures
            ``studio eval RUN --data FILE`` reports; None otherwise.
        errors: for a regressor, when the file has the true values: ``mae``, ``rmse``, ``r2`` and ``examples``,
            as ``studio eval RUN --data FILE`` reports them; None otherwise.
        notes: sentences worth showing.
    """

    out: Path
    task: str
    rows: int
    total: int
    predicted: int
    stopped: bool
    seconds: float
    accuracy: dict | None = None
    notes: list[str] = field(default_factory=list)
    errors: dict | None = None

    def summary(self) -> str:
        """A few plain sentences for the terminal or the page."""
        done = "Stopped after" if self.stopped else "Predicted"
        text = [f"{done} {self.predicted:,} of {self.total:,} rows in {self.seconds:.1f} s; written to {self.out}."]
        if self.rows > self.predicted:
            text.append(f"{self.rows - self.predicted:,} rows had nothing to predict on (see the 'problem' column).")
        if self.accuracy:
            a = self.accuracy
            text.append(f"Accuracy {a['accuracy']:.1%} (macro-F1 {a['macro_f1']:.3f}) on the {a['examples']:,} "
                        "labelled rows `studio eval --data` scores." + _left_out(a, self.predicted))
        if self.errors:
            e = self.errors
            text.append(f"Mean absolute error {e['mae']:.4g} (RMSE {e['rmse']:.4g}, R² {e['r2']:.3f}) on the "
                        f"{e['examples']:,} rows with a true value that `studio eval --data` scores."
                        + _left_out(e, self.predicted))
        return " ".join(text + self.notes)


def _left_out(scored: dict, predicted: int) -> str:
    """Why fewer rows were scored than predicted, in the data checks' words (a row that is also a training row,
    a duplicate...): " Not scored: ..." or nothing."""
    why = [str(w).rstrip(".") + "." for w in scored.get("why") or []]
    return f" Not scored: {' '.join(why)}" if why and scored.get("examples", predicted) < predicted else ""


def default_output(home, run_dir: Path, data_path: Path) -> Path:
    """Where the page writes predictions: ``<home>/predictions/<run>-<file>-<time>.csv`` (never beside the input).

    Args:
        home: the studio home (``core.home.Home``).
        run_dir: the run.
        data_path: the input file.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return home.root / "predictions" / f"{Path(run_dir).name}-{Path(data_path).stem}-{stamp}.csv"


def predict_file(run_dir: Path, data_path: Path, out_path: Path, home, *, columns: dict | None = None,
                 overwrite: bool = False, max_new_tokens: int = 256, temperature: float = 0.0,
                 progress: Progress | None = None, stop: threading.Event | None = None, limits=None) -> PredictResult:
    """Predict every row of ``data_path`` with the run's tuned model and write ``out_path``.

    Args:
        run_dir: a finished (or stopped) run with saved weights.
        data_path: a table (CSV/TSV/Excel/JSON/JSONL/Parquet) with the run's input column, or for image runs a
            folder or zip of images (class folders, when present, give the true labels).
        out_path: the file to write (.csv or .jsonl); it must not be the input, nor inside an input folder.
        home: the studio home (base models; zips are unpacked into its cache).
        columns: role -> column name, to use other columns than the run trained on (e.g. ``{"text": "body"}``).
        overwrite: replace ``out_path`` when it exists (refused otherwise).
        max_new_tokens: chat answers' length limit.
        temperature: chat sampling temperature; 0 answers greedily (the same answer every time).
        progress: called with (sentence with rows done and time left, fraction done).
        stop: set it to stop after the current batch (chat: within the current answer).
        limits: ``core.data.DataLimits`` for untrusted uploads.

    Raises:
        PredictError: the run, the file or the output cannot be used; the message says what to change.
    """
    from ..config import JobConfig
    from ..runs import RunDir

    started = time.perf_counter()
    run = RunDir(Path(run_dir))
    if not run.config.is_file():
        raise PredictError(f"{run_dir} is not a run folder (it has no config.yaml): pick one from `studio runs`.")
    if not run.model.is_dir():
        raise PredictError(f"{run.name} has no trained model yet: wait for it to finish, or resume it.")
    config = JobConfig.load(run.config)
    data_path = Path(os.path.expanduser(str(data_path)))
    out = _output(Path(os.path.expanduser(str(out_path))), data_path, overwrite)
    source = _source(config, run, data_path, home, columns or {}, limits)
    rows = _rows_for(config, run, home, source, max_new_tokens, temperature)
    clock = _Clock(source.total, progress)
    stopped = _stream(source, rows, out, clock, stop or threading.Event())
    result = PredictResult(out, config.task, clock.rows, source.total, rows.predicted, stopped,
                           time.perf_counter() - started, notes=list(source.notes))
    if rows.scores is not None and not stopped:
        clock.say("Scoring the labelled rows the way `studio eval` does.", 1.0)
        from .accuracy import eval_errors, eval_scores
        try:
            if rows.regression:
                result.errors = eval_errors(config, home, data_path, rows.scores, rows.classifier)
            else:
                result.accuracy = eval_scores(config, home, data_path, rows.scores, rows.classifier)
        except PredictError as exc:
            result.notes.append(str(exc))
        checked = against_validation(run.eval, result.accuracy or result.errors or {}, data_path,
                                     config.data.validation_path)
        if checked:  # does the run's validation figure hold on this file?
            result.notes.append(checked["message"])
        result.notes += (result.accuracy or result.errors or {}).get("cautions") or []  # rows easier than new data
    result.seconds = time.perf_counter() - started
    return result


# --- input and output -------------------------------------------------------------------------------------
def _output(out: Path, data_path: Path, overwrite: bool) -> Path:
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise PredictError(f"Write the predictions to a .csv or .jsonl file (not '{out.name}').")
    resolved, source = out.resolve(), data_path.resolve()
    if resolved == source or (source.is_dir() and source in resolved.parents):
        raise PredictError(f"{out} would overwrite or sit inside the input: write the predictions somewhere else.")
    if out.exists() and not overwrite:
        raise PredictError(f"{out} already exists: choose another name, or pass --overwrite to replace it.")
    return out


def _trained_columns(run, config) -> dict[str, str]:
    """Role -> column the run trained on: what the data module read (data_summary), with the config's own choices
    over it (a config may name one role, the group or the label, and leave the rest to detection)."""
    try:
        summary = json.loads(run.data_summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    return {**(summary.get("columns") or {}), **(config.data.columns or {})}


def _source(config, run, data_path: Path, home, override: dict, limits) -> Source:
    from ..tasks import get_task

    task = get_task(config.task)
    if task.modality == "image" and task.kind != "generation":
        return open_images(data_path, home, limits)
    trained = {**_trained_columns(run, config), **override}
    if task.kind == "regression":
        wanted, optional = {"text": trained.get("text", "text")}, {"target": trained.get("target", "target")}
    elif config.task == "text-classification":
        wanted, optional = {"text": trained.get("text", "text")}, {"label": trained.get("label", "label")}
    elif "messages" in trained and "prompt" not in override:
        wanted = {"messages": trained["messages"]}
        optional = {r: trained[r] for r in ("system",) if r in trained}
    else:
        wanted = {"prompt": trained.get("prompt", "prompt")}
        optional = {r: trained[r] for r in ("input", "system", "response") if r in trained}
    return open_table(data_path, wanted, optional, limits)


class _Output:
    """Rows appended to ``out`` as they are done (``.csv`` with a BOM so Excel reads UTF-8, or ``.jsonl``),
    through a hidden partial file renamed at the end; a failure leaves nothing."""

    def __init__(self, out: Path, columns: list[str]) -> None:
        self.out, self.columns = out, columns
        out.parent.mkdir(parents=True, exist_ok=True)
        self.partial = out.with_name(f".{out.name}.partial")
        self.handle = open(self.partial, "w", encoding="utf-8-sig" if out.suffix.lower() == ".csv" else "utf-8",
                           newline="")
        self.first = True

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame[self.columns]
        if self.out.suffix.lower() == ".csv":
            frame.to_csv(self.handle, header=self.first, index=False)
        else:
            for record in frame.to_dict(orient="records"):
                self.handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.handle.flush()
        self.first = False

    def close(self, keep: bool) -> None:
        self.handle.close()
        if keep:
            if self.first and self.out.suffix.lower() == ".csv":  # nothing done: still a header line
                with open(self.partial, "w", encoding="utf-8-sig", newline="") as handle:
                    pd.DataFrame(columns=self.columns).to_csv(handle, index=False)
            os.replace(self.partial, self.out)
        elif self.partial.exists():
            self.partial.unlink()


def _unique(names: list[str], taken: list[str]) -> list[str]:
    """The model's column names, numbered when the input already has a column of that name."""
    out = []
    for name in names:
        candidate, n = name, 2
        while candidate in taken or candidate in out:
            candidate, n = f"{name} ({n})", n + 1
        out.append(candidate)
    return out


def _stream(source: Source, rows, out: Path, clock, stop: threading.Event) -> bool:
    """Predict and write every chunk; True when stopped early."""
    names = _unique(rows.columns, source.columns)
    rename = dict(zip(rows.columns, names))
    sink = _Output(out, source.columns + names)
    ok = False
    try:
        for done in rows.run(source.chunks(), stop, clock):
            sink.write(done.rename(columns=rename))
            clock.rows += len(done)
        ok = True
    finally:
        sink.close(keep=ok)
    return stop.is_set()


class _Clock:
    """Progress with an estimate of the time left, from the rows done so far."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress = max(1, total), progress
        self.started = time.perf_counter()
        self.rows = 0

    def tick(self, done: int) -> None:
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (self.total - done) if done else None
        eta = "" if left is None else f", about {_duration(left)} left"
        self.say(f"{done:,} of {self.total:,} rows{eta}.", done / self.total)

    def say(self, message: str, fraction: float | None) -> None:
        if self.progress is not None:
            self.progress(message, fraction)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _rows_for(config, run, home, source: Source, max_new_tokens: int, temperature: float):
    from ..tasks import get_task
    from .rows import ChatRows, ClassifierRows, RegressorRows

    if get_task(config.task).kind == "generation":  # chat, preference pairs, documents: a chat model answers
        return ChatRows(run.path, home, source.roles, max_new_tokens, temperature)
    if get_task(config.task).kind == "regression":
        return RegressorRows(run.path, home, config.task, source.roles, STEP, source.root)
    return ClassifierRows(run.path, home, config.task, source.roles, STEP)
