"""The one entry point that runs a job: resolve the model, load the data, fill presets, train, save, evaluate.

The UI (through ``core.jobs``), the CLI and ``accelerate launch`` all come through ``run_job``. Every phase
is written to the run folder as it happens, so a crash or a kill loses nothing that was done.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from ..config import ConfigError, JobConfig
from ..data.overview import scored_on
from ..distributed import is_main_process, world_size
from ..hardware import Hardware, detect_hardware
from ..home import Home
from ..heap import release_memory
from ..memory import out_of_memory_advice
from ..plan import image_side, plan_job, with_detected_task
from ..runs import FINAL_STATUSES, RunDir
from .context import TrainContext, TrainOutcome
from .events import EventSink, Reporter, read_events
from .interrupt import StopNow, stop_interrupts
from .recipes import RefitsAllRows, recipe_for
from .tracking import sinks_for as tracking_sinks

logger = logging.getLogger("studio")


class JobFailed(RuntimeError):
    """A job ended in failure; the message is the plain-words reason shown to the user."""


def settle_task(config: JobConfig, home: Home) -> JobConfig:
    """The job with its task known: a config naming none gets its data's (``core.plan.with_detected_task``).

    Raises:
        ConfigError: the data does not say which task it is for; the message says what to add.
    """
    config, problems = with_detected_task(config, home)
    if problems:
        raise ConfigError(problems)
    return config


def create_run(config: JobConfig, home: Home) -> RunDir:
    """Make the run folder and keep the job as the user set it (presets are filled in later)."""
    run = _shared_run_dir(config, home)
    if is_main_process():
        config.save(run.config)
        run.write_status("queued", "Waiting to start.")
    return run


def run_job(config: JobConfig | None, home: Home, sinks: Iterable[EventSink] = (),
            stop: threading.Event | None = None, run: RunDir | None = None, resume: bool = False,
            hardware: Hardware | None = None) -> RunDir:
    """Run one training job to its end and return its run folder.

    Args:
        config: the job; None with ``run`` to take the run's own config.yaml (resume).
        home: the studio home (model cache, runs).
        sinks: where progress events go besides the run's metrics.jsonl.
        stop: set it to stop the job within one step; what was trained so far is kept.
        run: an existing run folder (created by ``create_run`` or being resumed); a new one otherwise.
        resume: continue from the run's last checkpoint.
        hardware: the machine; detected when None.

    Raises:
        ConfigError: the settings are invalid (nothing was created), or ``resume`` names a run that finished or
            is running (it is left as it is).
        JobFailed: the job failed; the run folder says why (status.json, train.log).
    """
    if resume:
        _require_resumable(run)
    if config is None:
        if run is None:
            raise ConfigError(["give a config or a run folder to resume."])
        config = JobConfig.load(run.config)
    config.validate()
    task_from_data = config.task is None
    config = settle_task(config, home)
    run = run or create_run(config, home)
    stop = stop or threading.Event()
    hardware = hardware or detect_hardware()
    offset = _elapsed_so_far(run) if resume else 0.0
    reporter = Reporter(run.metrics, [*sinks, *tracking_sinks(run)], enabled=is_main_process(),
                        elapsed_offset=offset)
    with _log_to(run.log if is_main_process() else None):
        try:
            _run(config, home, run, reporter, stop, resume, hardware, task_from_data)
        except JobFailed as exc:
            _finish(run, reporter, "failed", str(exc))
            raise
        except Exception as exc:  # the traceback goes to train.log; the user gets plain words
            logger.error("The job failed:\n%s", traceback.format_exc())
            message = _plain_failure(exc, _filled_config(run, config))
            _finish(run, reporter, "failed", message)
            raise JobFailed(message) from exc
        finally:
            reporter.close()
            release_memory()
    return run


def _run(config: JobConfig, home: Home, run: RunDir, reporter: Reporter, stop: threading.Event,
         resume: bool, hardware: Hardware, task_from_data: bool = False) -> None:
    from .. import stack

    _set_status(run, reporter, "preparing", f"Preparing on {hardware.describe()}.")
    stack.load()  # at once if the studio imported it in the background; never two threads at a time
    plan = plan_job(config, home, hardware, progress=lambda message: reporter.phase("loading", message),
                    task_from_data=task_from_data)
    if plan.data is not None:  # what was understood, before anything trains (and before a failure, to explain it)
        for line in plan.data.understood(problems=plan.ok):  # a failure lists the problems itself
            reporter.line(line)
    if not plan.ok:
        raise JobFailed(plan.describe_problems())
    config, data, resolved, tokenizer = plan.config, plan.data, plan.model, plan.tokenizer
    if is_main_process():
        config.save(run.config)  # the filled-in job: `studio train config.yaml` reruns exactly this
        run.data_summary.write_text(json.dumps(data.summary, indent=1, default=str), encoding="utf-8")
    _check_memory(config, data, resolved, hardware, run, reporter)
    if config.train.threads:
        import torch
        torch.set_num_threads(config.train.threads)

    point = _resume_point(run, reporter) if resume else None
    ctx = TrainContext(config=config, home=home, run=run, data=data, model=resolved, reporter=reporter,
                       stop=stop, resume_from=point.checkpoint if point else None, hardware=hardware,
                       tokenizer=tokenizer)
    recipe = recipe_for(ctx)
    from transformers import set_seed
    set_seed(config.train.seed)  # new heads and LoRA matrices are initialised in setup: same seed, same run
    try:
        recipe.setup()
        if stop.is_set():
            _finish(run, reporter, "stopped", "Stopped before training started; nothing was trained.")
            return
        _set_status(run, reporter, "training", "Training.")
        outcome: TrainOutcome = recipe.train()
        if world_size() > 1:
            _write_rank_record(run, recipe, outcome)
        reporter.phase("saving", "Saving the trained weights.")
        if is_main_process():
            recipe.save()
        if outcome.stopped:
            _finish(run, reporter, "stopped", f"Stopped at step {outcome.global_step}; the weights trained so "
                                              "far are saved in the run's model folder.")
            return
        if stop.is_set():  # Stop pressed while the weights were being saved: end here, skip the comparison
            _finish(run, reporter, "stopped", "Stopped after training, before the evaluation; the trained weights "
                                              "are saved in the run's model folder (`studio eval` compares later).")
            return
        if is_main_process():
            _set_status(run, reporter, "evaluating", "Comparing the tuned model with the base on the validation split.")
            try:
                with stop_interrupts(stop):  # the comparison never checks Stop itself
                    report = recipe.evaluate()
            except StopNow:
                _finish(run, reporter, "stopped", "Stopped during the evaluation; the trained weights are saved in "
                                                  "the run's model folder (`studio eval` compares later).")
                return
            report = _refit_all_rows(recipe, report, stop, reporter)
            run.eval.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
            _write_card(run, config, report, data.summary)
        _finish(run, reporter, "completed", _headline(run.read_eval(), scored_on(data.summary)))
    finally:
        recipe.cleanup()


def _refit_all_rows(recipe, report: dict, stop: threading.Event, reporter: Reporter) -> dict:
    """Once the report is written, a recipe that can (the automatic search's heads) learns from the validation
    rows too and is saved again; the report says so. Stop keeps the model that was evaluated."""
    if not isinstance(recipe, RefitsAllRows) or stop.is_set():
        return report
    try:
        note = recipe.refit_all_rows()
    except (RuntimeError, ValueError, MemoryError) as exc:  # a best-effort step: the evaluated model stays saved
        reporter.line(f"Fitting the chosen model again on every row failed ({exc}); the saved model is the one the "
                      "report scored, trained on the training rows.", level="warning")
        return report
    if not note or stop.is_set():
        return report
    reporter.phase("saving", "Saving the model fitted on every row.")
    recipe.save()
    return {**report, **recipe.extra_report(), "final_fit": note}


def _require_unseen_validation(run: RunDir) -> None:
    """``studio eval RUN`` on the run's own validation split needs a model that has not trained on it."""
    from .classify.search import read_leaderboard

    board = read_leaderboard(run.path)
    if board and board.get("final_rows"):
        raise JobFailed(f"This run's saved model was fitted on all {board['final_rows']} rows, its validation rows "
                        "included, after its report was written (eval.json keeps that report, measured on rows the "
                        "model had not seen then). Scoring it on the validation split again would flatter it: give "
                        "a file it has never seen, `studio eval RUN --data FILE`, or train with "
                        "`--set train.refit_all=false` to keep the validation rows out.")


def _require_resumable(run: RunDir | None) -> None:
    """A finished run is never trained over, and a running one is never trained twice."""
    if run is None:
        raise ConfigError(["give the run folder to resume."])
    status = run.read_status()
    if status.get("status") == "completed":
        raise ConfigError([f"{run.name} finished ({status.get('message') or 'completed'}): there is nothing to "
                           f"resume. To train it again, start a new run from its config: studio train {run.config}"])
    if status.get("status") not in FINAL_STATUSES + ("queued",):
        raise ConfigError([f"{run.name} is still {status.get('status')} (process {status.get('pid')}): stop it "
                           "before resuming it."])


def _resume_point(run: RunDir, reporter: Reporter):
    """The newest sound checkpoint; damaged newer ones are said and removed (nothing can read them)."""
    import shutil

    point = run.resume_point()
    if is_main_process():
        for folder, _problem in point.damaged:
            shutil.rmtree(folder, ignore_errors=True)
    reporter.line(point.describe())
    return point


def _write_rank_record(run: RunDir, recipe, outcome: TrainOutcome) -> None:
    """Each rank of a distributed run notes its steps and a checksum of its weights: all ranks must agree."""
    import torch

    model = getattr(recipe, "model", None)
    with torch.no_grad():
        checksum = float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad)) \
            if model is not None else None
    folder = run.path / "ranks"
    folder.mkdir(exist_ok=True)
    record = {"rank": int(os.environ.get("RANK", "0")), "world_size": world_size(),
              "global_step": outcome.global_step, "trainable_checksum": checksum}
    (folder / f"rank-{record['rank']}.json").write_text(json.dumps(record), encoding="utf-8")


def _check_memory(config: JobConfig, data, resolved, hardware: Hardware, run: RunDir, reporter: Reporter) -> None:
    """Estimate the job's peak memory before it trains (kept in the run folder); fail in plain words when it
    will not fit."""
    from dataclasses import asdict

    from ..memory import estimate_job

    side = image_side(config, data, resolved)
    estimate = estimate_job(config, resolved, hardware, image_side=side)
    if is_main_process():
        record = {**asdict(estimate), "image_side": side, "hardware": hardware.describe()}
        run.memory_estimate.write_text(json.dumps(record, indent=1), encoding="utf-8")
    reporter.line(f"Memory: {estimate.describe()}")
    if not estimate.fits:
        raise JobFailed(f"This job will not fit in memory. {estimate.describe()}")


def _set_status(run: RunDir, reporter: Reporter, status: str, message: str) -> None:
    if is_main_process():
        run.write_status(status, message)
    reporter.emit("status", status=status, message=message)


def _finish(run: RunDir, reporter: Reporter, status: str, message: str) -> None:
    _set_status(run, reporter, status, message)
    (logger.error if status == "failed" else logger.info)(message)


def _headline(report: dict | None, where: str = "on the validation split") -> str:
    if not report:
        return "Finished."
    tuned, base = report.get("tuned", {}), report.get("base", {})
    if "accuracy" in tuned:
        return f"Finished: accuracy {tuned['accuracy']:.1%} {where}."
    if "eval_loss" in tuned and "eval_loss" in base:
        return f"Finished: validation loss {base['eval_loss']:.3f} -> {tuned['eval_loss']:.3f}."
    metric = _task_metric(report)
    if metric in tuned and metric in base:  # the task's headline metric (preference accuracy...), base -> tuned
        return f"Finished: {metric.replace('_', ' ')} {base[metric]:.3g} -> {tuned[metric]:.3g} {where}."
    return "Finished."


def _task_metric(report: dict) -> str:
    from ..tasks import get_task

    try:
        return get_task(str(report.get("task"))).metric
    except KeyError:
        return ""


def _write_card(run: RunDir, config: JobConfig, report: dict, summary: dict) -> None:
    from .model_card import write_model_card
    write_model_card(run, config, report, summary)


# What an allocation failure says: Python, torch on the CPU ("DefaultCPUAllocator: can't allocate memory")
# and on a GPU, numpy ("Unable to allocate 3.2 GiB"), C++ (std::bad_alloc) and the OS (errno 12).
OUT_OF_MEMORY_WORDS = ("out of memory", "outofmemoryerror", "can't allocate memory", "cannot allocate memory",
                       "defaultcpuallocator", "unable to allocate", "bad_alloc", "not enough memory")


def _plain_failure(exc: BaseException, config: JobConfig) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or any(word in text.lower() for word in OUT_OF_MEMORY_WORDS):
        return out_of_memory_advice(config.train.batch_size, config.train.max_length)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"The job failed: {first[:500]} (the full traceback is in train.log)."


def _filled_config(run: RunDir, config: JobConfig) -> JobConfig:
    """The job with presets filled in, as config.yaml holds it once they were (for advice naming real values)."""
    try:
        return JobConfig.load(run.config)
    except Exception:  # an unreadable config must not hide the failure being reported
        return config


def _elapsed_so_far(run: RunDir) -> float:
    events = read_events(run.metrics)
    return float(events[-1].get("elapsed_s", 0.0)) if events else 0.0


def _shared_run_dir(config: JobConfig, home: Home) -> RunDir:
    """One run folder for all ranks of a distributed run: rank 0 makes it and tells the others."""
    if world_size() == 1:
        return RunDir.create(home.runs, config.name, config.task)
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    # Initialises the process group the Trainer will use; without a GPU, ranks talk over gloo on the CPU.
    PartialState(cpu=not torch.cuda.is_available())
    holder = [str(RunDir.create(home.runs, config.name, config.task).path) if is_main_process() else None]
    dist.broadcast_object_list(holder, src=0)
    return RunDir(Path(holder[0]))


class _ThreadFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread


@contextmanager
def _log_to(path: Path | None):
    """Send this thread's studio and transformers log records to the run's train.log."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ThreadFilter())
    loggers = [logging.getLogger(name) for name in ("studio", "transformers", "peft", "accelerate")]
    studio_logger = loggers[0]
    if studio_logger.level == logging.NOTSET or studio_logger.level > logging.INFO:
        studio_logger.setLevel(logging.INFO)
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()


def evaluate_run(run_dir: Path, home: Home, data_path: str | None = None) -> dict:
    """Evaluate a finished run's model against its base, on its validation split or on ``data_path``.

    Args:
        run_dir: the run folder.
        home: the studio home.
        data_path: a file to evaluate on (all its rows); the run's own validation split when None.
    Returns the report; it is also written to eval.json (or eval-<file name>.json for another file).
    """
    run = RunDir(Path(run_dir))
    config = JobConfig.load(run.config)
    if data_path is None:
        _require_unseen_validation(run)
    hardware = detect_hardware()
    plan = plan_job(config, home, hardware, data_path=data_path)
    if not plan.ok:
        raise JobFailed(plan.describe_problems())
    config, data, resolved = plan.config, plan.data, plan.model
    reporter = Reporter(None, [])
    ctx = TrainContext(config=config, home=home, run=run, data=data, model=resolved, reporter=reporter,
                       hardware=hardware, tokenizer=plan.tokenizer)
    recipe = recipe_for(ctx)
    try:
        recipe.load_trained()
        report = recipe.evaluate()
    finally:
        recipe.cleanup()
    if data_path is not None and isinstance(report, dict):  # every row of the given file, not the run's split
        from .holds_up import against_validation

        report = {**report, "split": "file", "data": str(data_path),
                  "left_out": data.report.left_out(Path(data_path).name), "cautions": data.report.cautions()}
        scored = {**(report.get("tuned") or {}), "examples": report.get("examples") or report.get("rows"),
                  "se": (report.get("grouped") or {}).get("se")}
        report["against_validation"] = against_validation(run.eval, scored, Path(data_path),
                                                          config.data.validation_path)
    target = run.eval if data_path is None else run.path / f"eval-{Path(data_path).stem}.json"
    target.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return report
