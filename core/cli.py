"""The `studio` command: the UI, the model catalog, and headless train / eval / export of saved jobs."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .config import ConfigError, JobConfig
from .home import Home

ASK = object()  # --password given without a value: ask for it


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for handler in logging.getLogger().handlers:
        # A job raises the studio logger to INFO for its train.log; the terminal shows a job's lines once,
        # through the progress printer (a failure too: once, as the verb's last line), so the console handler
        # keeps to other libraries' warnings.
        handler.setLevel(logging.WARNING)
        handler.addFilter(lambda record: record.name != "studio")
    home = Home.resolve(getattr(args, "home", None))
    command = args.command or "ui"
    try:
        return COMMANDS[command](args, home)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # no traceback reaches the user: plain words here, the details in the log
        return _report_failure(exc, home, command)


def _report_failure(exc: BaseException, home: Home, command: str) -> int:
    """Print what went wrong in plain words; keep the traceback in ``<home>/logs/cli.log``."""
    import time
    import traceback

    from .data import DataError
    from .engine.runner import JobFailed
    from .export import ExportError
    from .models import ModelUnavailable

    expected = (JobFailed, DataError, ModelUnavailable, ExportError, FileNotFoundError, NotADirectoryError,
                PermissionError)
    log = home.root / "logs" / "cli.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} studio {command}\n{traceback.format_exc()}\n")
    if isinstance(exc, expected):
        print(str(exc) or type(exc).__name__, file=sys.stderr)
    else:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"studio {command} failed: {first[:400]} ({type(exc).__name__}). The details are in {log}.",
              file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help="the studio's folder for models, uploads and runs (default: $STUDIO_HOME or "
                             "~/.finetune-studio)")
    parser = argparse.ArgumentParser(
        prog="studio", parents=[common],
        description="Finetune Studio: fine-tune chat models and text/image classifiers in the browser or headless.")
    # not ``home``: set_defaults would also change the shared ``--home`` action of every sub-command, whose
    # default would then overwrite a ``studio --home X train`` (argparse copies a sub-command's defaults over)
    parser.set_defaults(host=None, port=None, public=False, password=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ui = sub.add_parser("ui", parents=[common], help="start the studio in the browser (the default)")
    ui.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1, or $GRADIO_SERVER_NAME)")
    ui.add_argument("--port", type=int, default=None, help="port (default 7860, or $PORT / $GRADIO_SERVER_PORT)")
    ui.add_argument("--public", action="store_true",
                    help="public demo mode: caps on uploads and jobs, catalog models only (on by itself on a Space)")
    ui.add_argument("--password", nargs="?", const=ASK, default=None, metavar="PASSWORD",
                    help="ask for this password at a login page when served beyond this machine (--host 0.0.0.0); "
                         "without a value it is asked here, unseen (default $STUDIO_PASSWORD)")

    sub.add_parser("models", parents=[common], help="list the model catalog and what is ready offline")
    sub.add_parser("runs", parents=[common], help="list past runs with their status and headline metric")

    train = sub.add_parser("train", parents=[common], help="run a job headless from a config.yaml")
    train.add_argument("config", nargs="?", help="a job config (for example a run's config.yaml)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. --set train.epochs=3 (repeatable)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--gpus", type=int, default=None, metavar="N",
                       help="train on N GPUs: writes an accelerate config (DDP, or FSDP when one GPU cannot hold the "
                            "job), prints the `accelerate launch` line and runs it")

    ev = sub.add_parser("eval", parents=[common], help="evaluate a run's model against its base")
    ev.add_argument("run_dir")
    ev.add_argument("--data", help="evaluate on this file instead of the run's validation split")

    ex = sub.add_parser("export", parents=[common], help="export a run's model")
    ex.add_argument("run_dir")
    ex.add_argument("--merged", metavar="OUT", help="write a merged, standalone model folder")
    ex.add_argument("--zip", metavar="OUT_DIR", help="write the run as a zip (no checkpoints)")
    ex.add_argument("--hub", metavar="REPO_ID", help="push the model folder to this Hub repository")
    ex.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="Hub write token (default $HF_TOKEN)")
    ex.add_argument("--gguf", metavar="OUT_DIR", help="write GGUF files + an Ollama Modelfile (chat runs)")
    ex.add_argument("--gguf-types", default="f16,q8_0", metavar="TYPES",
                    help="GGUF types, comma-separated: f32, f16, q8_0, q5_1, q5_0, q4_1, q4_0 (default f16,q8_0)")
    ex.add_argument("--check", action="store_true",
                    help="load the f16 GGUF back with transformers and compare its answers with the merged model")

    pr = sub.add_parser("predict", parents=[common], help="predict every row (or image) of a file with a run's model")
    pr.add_argument("run_dir")
    pr.add_argument("--data", required=True, help="a table (CSV, TSV, Excel, JSON, JSONL, Parquet) or an image "
                                                   "folder/zip")
    pr.add_argument("--out", help="the .csv or .jsonl to write (default: <home>/predictions/...)")
    pr.add_argument("--column", dest="columns", action="append", default=[], metavar="ROLE=COLUMN",
                    help="use this column for a role (text, label, prompt, input, system, messages), repeatable")
    pr.add_argument("--max-new-tokens", type=int, default=256, help="chat: the answers' length limit")
    pr.add_argument("--temperature", type=float, default=0.0, help="chat: sampling temperature (0 = greedy)")
    pr.add_argument("--overwrite", action="store_true", help="replace --out when it exists")

    sv = sub.add_parser("serve", parents=[common], help="an OpenAI-compatible API for a run's model")
    sv.add_argument("run_dir")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument("--api-key", default=os.environ.get("STUDIO_API_KEY"),
                    help="require this bearer token (default $STUDIO_API_KEY; none when unset)")
    return parser


def cmd_ui(args, home: Home) -> int:
    from studio.app import launch  # the UI (and gradio) load only for this command

    password = args.password
    if password == ASK:
        import getpass

        password = getpass.getpass("Studio password: ")
        if not password:
            raise ConfigError(["the password is empty: type one, or leave out --password."])
    launch(home, host=args.host, port=args.port, public=args.public, password=password)
    return 0


def cmd_models(args, home: Home) -> int:
    from .catalog import CATALOG
    from .models import model_status

    labels = {"ready": "ready offline", "packaged": "ready offline (converts once)", "download": "needs a download"}
    rows = [("KEY", "TASK", "SIZE", "LICENCE", "OFFLINE")]
    for e in CATALOG:
        size = f"{e.params_m:.0f}M" if e.params_m < 1000 else f"{e.params_m / 1000:.1f}B"
        rows.append((e.key + (" *" if e.default else ""), e.task, size, e.licence, labels[model_status(e, home)]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print("\n* the task's default. Any Hugging Face hub id or local model folder works too.")
    return 0


def cmd_runs(args, home: Home) -> int:
    from .runs import list_runs

    runs = list_runs(home.runs)
    if not runs:
        print(f"No runs yet under {home.runs}.")
    for run in runs:
        status = run.read_status()
        print(f"{run.name}  {status.get('status', '?'):<11}  {status.get('message', '')}")
    return 0


def cmd_train(args, home: Home) -> int:
    from .runs import RunDir
    from .distributed import is_main_process
    from .engine.runner import JobFailed, run_job

    if not args.config and not args.resume:
        raise ConfigError(["give a config.yaml to train, or --resume RUN_DIR to continue a run."])
    if args.gpus:
        return _launch(args, home)
    run = RunDir(Path(args.resume)) if args.resume else None
    if run is not None and not run.config.is_file():
        raise ConfigError([f"{args.resume} is not a run folder (no config.yaml in it)."])
    if run is not None and run.read_status().get("status") == "completed":
        print(f"{run.name} finished ({run.read_status().get('message') or 'completed'}): there is nothing to "
              f"resume, and it is left as it is. To train it again: studio train {run.config}")
        return 0
    config = None
    if args.config:
        # paths in the file are read from its folder; paths given with --set from here
        config = JobConfig.load(args.config).with_overrides(args.overrides).with_paths_from(Path.cwd())
    elif args.overrides:
        raise ConfigError(["--set applies to a config file; a resumed run keeps its own settings."])
    stop = threading.Event()
    _stop_on_interrupt(stop)
    sinks = [_ProgressPrinter()] if is_main_process() else []
    try:
        run = run_job(config, home, sinks=sinks, stop=stop, run=run, resume=run is not None)
    except JobFailed as exc:
        print(f"\nFailed: {exc}", file=sys.stderr)
        return 1
    if is_main_process():  # the last status line was printed as it came; the run folder is the last line
        print(run.path)
    return 0


def _launch(args, home: Home) -> int:
    """``studio train CONFIG --gpus N``: one process per GPU through accelerate (``core.launch``)."""
    import shlex

    from .hardware import detect_hardware
    from .launch import prepare_launch, run_launch

    if args.resume or not args.config:
        raise ConfigError(["--gpus applies to a config file: resume a multi-GPU run with its config.yaml and "
                           "--gpus again (it starts from the beginning) or with --resume on one process."])
    config = JobConfig.load(args.config).with_overrides(args.overrides).with_paths_from(Path.cwd())
    config.validate()
    command, plan, path = prepare_launch(config, Path(args.config), args.gpus, home, detect_hardware(),
                                         args.overrides)
    print(f"{plan.reason}. Accelerate config: {path}")
    print(" ".join(shlex.quote(part) for part in command), flush=True)
    code, run = run_launch(command, path)
    if run is not None:
        print(f"(accelerate config copied to {run / 'accelerate.yaml'})")
    return code


def cmd_eval(args, home: Home) -> int:
    from .engine.runner import evaluate_run

    report = evaluate_run(Path(args.run_dir), home, data_path=args.data)
    print(json.dumps(report, indent=1, default=str))
    for line in eval_summary(report):  # the JSON above is for scripts; these lines for the person who asked
        print(line, file=sys.stderr)
    return 0


def eval_summary(report: dict) -> list[str]:
    """A report's verdict in the words the Evaluate tab uses: whether tuning paid, and what to try."""
    lines = []
    verdict = report.get("verdict")
    if isinstance(verdict, dict) and verdict.get("message"):
        lines.append(verdict["message"])
        lines += [f"  Try: {tip}" for tip in verdict.get("try") or []]
    base, tuned = report.get("base") or {}, report.get("tuned") or {}
    change = (report.get("change") or {}).get("eval_loss")  # chat and documents: the recipe's relative change
    if isinstance(change, (int, float)) and "eval_loss" in tuned and "eval_loss" in base and not verdict:
        lines.append(f"Loss on the answers: {base['eval_loss']:.3f} for the base, {tuned['eval_loss']:.3f} tuned "
                     f"({change:+.1%}) on {report.get('rows') or report.get('examples') or '?'} rows.")
    probe = report.get("probe")
    if isinstance(probe, dict) and probe.get("message"):
        lines.append(probe["message"])
    checked = report.get("against_validation")
    if isinstance(checked, dict) and checked.get("message"):
        lines.append(checked["message"])
    lines += report.get("cautions") or []  # the scored rows are easier than new data (near copies, shared groups)
    left_out = report.get("left_out") or []
    if left_out:  # the file had more rows than were scored: say which and why, as the data checks do
        lines.append(f"Scored {report.get('examples') or report.get('rows') or 0} rows; left out:")
        lines += [f"  {reason}" for reason in left_out]
    return lines


def cmd_export(args, home: Home) -> int:
    from .export import ExportError, export_merged, export_zip, push_to_hub

    if not (args.merged or args.zip or args.hub or args.gguf):
        raise ConfigError(["say what to export: --merged OUT, --zip OUT_DIR, --gguf OUT_DIR or --hub REPO_ID."])
    try:
        if args.merged:
            print(export_merged(Path(args.run_dir), Path(args.merged), home, progress=print))
        if args.zip:
            print(export_zip(Path(args.run_dir), Path(args.zip)))
        if args.hub:
            print(push_to_hub(Path(args.run_dir), args.hub, args.token))
        if args.gguf:
            _export_gguf(args, home)
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def _export_gguf(args, home: Home) -> None:
    from .export.gguf import export_gguf

    stop = threading.Event()
    _stop_on_interrupt(stop)
    result = export_gguf(Path(args.run_dir), Path(args.gguf), home, types=args.gguf_types.split(","),
                         progress=_fraction_printer(), stop=stop, check=args.check)
    for note in result.notes:
        print(f"Note: {note}", file=sys.stderr)
    if result.check:
        c = result.check
        print(f"Check: {c['same_answers']}/{c['prompts']} greedy answers match the merged model; tokenization "
              f"{'matches' if c['same_tokenization'] else 'DIFFERS'}.", file=sys.stderr)
    print(f"Ollama: cd {result.folder} && {result.ollama_command}", file=sys.stderr)
    print(result.folder)


def cmd_predict(args, home: Home) -> int:
    from .predict import PredictError, default_output, predict_file

    columns = dict(item.split("=", 1) for item in args.columns if "=" in item)
    if len(columns) != len(args.columns):
        raise ConfigError(["--column takes ROLE=COLUMN, for example --column text=description."])
    out = Path(args.out) if args.out else default_output(home, Path(args.run_dir), Path(args.data))
    stop = threading.Event()
    _stop_on_interrupt(stop)
    try:
        result = predict_file(Path(args.run_dir), Path(args.data), out, home, columns=columns,
                              overwrite=args.overwrite, max_new_tokens=args.max_new_tokens,
                              temperature=args.temperature, progress=_fraction_printer(), stop=stop)
    except PredictError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"\n{result.summary()}", file=sys.stderr)
    if result.accuracy:
        print(json.dumps({k: result.accuracy[k] for k in ("accuracy", "macro_f1", "examples")}), file=sys.stderr)
    print(result.out)
    return 0


def cmd_serve(args, home: Home) -> int:
    from .serve import serve

    serve(Path(args.run_dir), home, host=args.host, port=args.port, api_key=args.api_key,
          progress=lambda message: print(message, file=sys.stderr, flush=True))
    return 0


COMMANDS = {"ui": cmd_ui, "models": cmd_models, "runs": cmd_runs, "train": cmd_train, "eval": cmd_eval,
            "export": cmd_export, "predict": cmd_predict, "serve": cmd_serve}


def _stop_on_interrupt(stop: threading.Event) -> None:
    """First Ctrl-C stops after the current step and keeps the weights; a second one quits at once."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nStopping after the current step (Ctrl-C again to quit now)...", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, handler)


def _fraction_printer():
    """Progress (sentence, fraction done) on one terminal line, or a line at a time when not a terminal."""
    tty = sys.stderr.isatty()

    def show(message: str, fraction: float | None = None) -> None:
        bar = "" if fraction is None else f"[{'#' * int(24 * fraction)}{'.' * (24 - int(24 * fraction))}] "
        print(("\r" if tty else "") + bar + message, end="" if tty else "\n", file=sys.stderr, flush=True)
    return show


class _ProgressPrinter:
    """A one-line progress bar for the terminal, plus phase and log lines."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def log(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "status" and event.get("status") == "failed":
            return  # the verb prints the failure once, as its last words
        if kind in ("phase", "log", "status"):
            self._line(event.get("message", ""))
        elif kind == "train" and event.get("loss") is not None:
            step, total = event.get("step", 0), event.get("total_steps") or 0
            width = 24
            filled = int(width * step / total) if total else 0
            eta = event.get("eta_s")
            text = (f"[{'#' * filled}{'.' * (width - filled)}] step {step}/{total}  loss {event['loss']:.4f}"
                    + (f"  eta {eta:.0f}s" if eta is not None else ""))
            rate = event.get("tokens_per_s") or event.get("samples_per_s")
            if rate:
                text += f"  {rate:.0f} {'tok' if 'tokens_per_s' in event else 'samples'}/s"
            if self.tty:
                print("\r" + text, end="", file=sys.stderr, flush=True)
            else:
                print(text, file=sys.stderr, flush=True)
        elif kind == "eval":
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in event.items()
                                if isinstance(v, float) and k not in ("time", "elapsed_s", "epoch"))
            self._line(f"eval at step {event.get('step')}: {metrics}")

    def _line(self, text: str) -> None:
        if text:
            print(("\n" if self.tty else "") + text, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
