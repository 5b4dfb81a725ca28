"""Step 6, export and history: download what a run made, list past runs, overlay their loss curves and
open any of them in the playground.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from core.config import ConfigError, JobConfig
from core.engine.events import read_events
from core.export import ExportError, export_merged, export_zip
from core.export.gguf import DEFAULT_TYPES as GGUF_DEFAULT, QUANTS as GGUF_TYPES, export_gguf
from core.runs import RunDir
from core.uploads import UploadError

from . import charts
from .context import Studio, owner_of
from .tab_evaluate import usable_runs
from .tab_train import resume_run
from .views import headline_metric, notice

HISTORY_COLUMNS = ["Run", "Status", "Task", "Model", "Strategy", "Result"]


@dataclass
class ExportTab:
    """The export and history step's components."""

    run: gr.Dropdown
    files: gr.File
    note: gr.HTML
    history: gr.Dataframe
    resumable: gr.Dropdown
    resume_note: gr.HTML
    compare: gr.Dropdown
    overlay: gr.Plot
    settings: gr.Dataframe


def build(st: Studio) -> ExportTab:
    gr.Markdown("## Take it with you\nDownload the trained weights with their config and model card, or the whole "
                "run. Below: every run on this machine.")
    with gr.Row():
        run = gr.Dropdown(label="Run to export", choices=[], scale=5, elem_id="export-run")
        refresh = gr.Button("↻ Refresh", size="sm", scale=1, elem_id="export-refresh")
    with gr.Row():
        weights = gr.Button("Adapter / head (zip)", elem_id="export-weights")
        merged = gr.Button("Merged model (zip)", elem_id="export-merged")
        bundle = gr.Button("Whole run: config, metrics, card, weights (zip)", elem_id="export-bundle")
    with gr.Row():
        gguf_types = gr.CheckboxGroup(list(GGUF_TYPES), value=list(GGUF_DEFAULT), scale=4, elem_id="export-gguf-types",
                                      label="GGUF files (chat, preference and document runs): f16 is exact; q8_0 half the size; the 4/5-bit "
                                            "ones are smaller and change more answers")
        gguf = gr.Button("GGUF + Ollama Modelfile (zip)", scale=2, elem_id="export-gguf")
    files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="export-files")
    export_note = gr.HTML(elem_id="export-note")

    gr.Markdown("## History")
    history = gr.Dataframe(headers=HISTORY_COLUMNS, interactive=False, wrap=True, max_height=360,
                           elem_id="history-table")
    with gr.Row():
        resumable = gr.Dropdown(label="Runs that did not finish: go on from their last checkpoint", choices=[],
                                scale=5, elem_id="history-resumable")
        resume = gr.Button("Resume", scale=1, elem_id="history-resume")
    resume_note = gr.HTML(elem_id="history-resume-note")
    with gr.Row():
        compare = gr.Dropdown(label="Overlay the loss curves of", choices=[], multiselect=True, scale=5,
                              elem_id="history-compare")
        open_run = gr.Button("Open the export run in the playground", scale=2, elem_id="history-open")
    overlay = gr.Plot(charts.overlay_figure({}), show_label=False, elem_id="history-overlay")
    settings = gr.Dataframe(visible=False, interactive=False, wrap=True, max_height=420,
                            label="Their settings side by side (what differed first)", elem_id="history-settings")
    tab = ExportTab(run, files, export_note, history, resumable, resume_note, compare, overlay, settings)

    session = st.session
    listing = [run, history, compare, resumable]
    refresh.click(lambda s, r: _listing(tab, *_refresh(st, s, r)), [session, run], listing)
    # the session changes when a run of this visitor ends: that run becomes the one to export
    session.change(lambda s, r: _listing(tab, *_refresh(st, s, r, newest=True)), [session, run], listing)
    downloads = [files, export_note]
    run.change(lambda s, r: _downloads(tab, *_files_of(st, s, r)), [session, run], downloads)
    weights.click(lambda s, r: _downloads(tab, *_export(st, s, r, "weights")), [session, run], downloads)
    merged.click(_merged_handler(st, tab), [session, run], downloads, concurrency_id="export", concurrency_limit=1)
    bundle.click(lambda s, r: _downloads(tab, *_export(st, s, r, "bundle")), [session, run], downloads)
    compare.change(lambda s, names: {overlay: _overlay(st, s, names), settings: _settings(st, s, names)},
                   [session, compare], [overlay, settings])
    gguf.click(_gguf_handler(st, tab), [session, run, gguf_types], downloads, concurrency_id="export",
               concurrency_limit=1)
    resume.click(lambda s, r: _resume(st, tab, s, r), [session, resumable], [session, resume_note, st.tabs])
    open_run.click(lambda r: {st.evaluate_tab.run: gr.update(value=r), st.tabs: gr.Tabs(selected="evaluate")}, [run],
                   [st.evaluate_tab.run, st.tabs])
    return tab


def _listing(tab: ExportTab, run, history, compare, resumable) -> dict:
    return {tab.run: run, tab.history: history, tab.compare: compare, tab.resumable: resumable}


def _resumable(st: Studio, session: dict | None):
    """The visitor's runs that ended without finishing, each with what Resume would do (or why it cannot)."""
    owner = owner_of(session)
    checks = st.manager.resumable_runs(owner if st.public else None)
    choices = [(f"{c.run.name} · {c.status} · {c.reason}", str(c.run.path)) for c in checks if c.can_resume]
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


def _resume(st: Studio, tab: ExportTab, session: dict | None, run_path: str | None) -> dict:
    try:
        session = resume_run(st, session, run_path)
    except ConfigError as exc:
        return {tab.resume_note: notice(" ".join(exc.problems), "warn", "Cannot resume:")}
    return {st.session: session, tab.resume_note: notice("Queued to go on; follow it on the Train tab.", "ok"),
            st.tabs: gr.Tabs(selected="train")}


def _downloads(tab: ExportTab, files, note) -> dict:
    return {tab.files: files, tab.note: note}


def _refresh(st: Studio, session: dict | None, current: str | None, newest: bool = False):
    """The history and the export choices; the run chosen stays chosen, unless ``newest`` (a run just ended)
    asks for the session's latest run."""
    session = session or {}
    runs = st.runs_of(owner_of(session))
    rows = [_history_row(r) for r in runs]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS) if rows else pd.DataFrame(
        [["No runs yet: start one in step 4.", "", "", "", "", ""]], columns=HISTORY_COLUMNS)
    exportable = [(r.name, str(r.path)) for r in usable_runs(st, owner_of(session))]
    paths = [p for _, p in exportable]
    latest = session.get("run") if session.get("run") in paths else None
    if newest and latest:
        value = latest
    else:
        value = current if current in paths else (latest or (paths[0] if paths else None))
    names = [r.name for r in runs]
    return gr.update(choices=exportable, value=value), frame, gr.update(choices=names), _resumable(st, session)


def _history_row(run: RunDir) -> list[str]:
    status = run.read_status()
    try:
        config = JobConfig.load(run.config)
    except ConfigError:
        return [run.name, status.get("status", "?"), "?", "?", "?", ""]
    result = headline_metric(run.read_eval()) or status.get("message", "")
    return [run.name, status.get("status", "?"), config.task, config.model, config.strategy, result]


def _files_of(st: Studio, session: dict | None, run_path: str | None):
    """The small files that need no export step: the config and the model card."""
    owner = owner_of(session)
    run = st.run_for(owner, run_path)
    if run is None:
        return None, notice("No run with a model yet: train one first.", "info")
    try:
        ready = _small_files(st, owner, run)
    except (OSError, UploadError) as exc:
        return None, notice(str(exc), "error", "Cannot list the files.")
    return ready, notice("config.yaml and the model card are ready; the buttons above package the weights.",
                         "info")


def _small_files(st: Studio, owner: str | None, run: RunDir) -> list[str]:
    """The run's config and card, offered from the visitor's export folder in public mode: the runs folder is
    never served there (run names are timestamps, easy to guess)."""
    files = [p for p in (run.config, run.card) if p.is_file()]
    if not st.public:
        return [str(p) for p in files]
    out = _out_dir(st, owner, run)
    return [str(shutil.copyfile(p, out / p.name)) for p in files]


def _out_dir(st: Studio, owner: str | None, run: RunDir) -> Path:
    out = st.export_dir(owner) / run.name
    out.mkdir(parents=True, exist_ok=True)
    return out


def _export(st: Studio, session: dict | None, run_path: str | None, kind: str):
    owner = owner_of(session)
    run = st.run_for(owner, run_path)
    if run is None:
        return None, notice("Choose a run first.", "info")
    try:
        out = _out_dir(st, owner, run)
        if kind == "bundle":
            made = export_zip(run.path, out)
        else:
            if not run.model.is_dir():
                raise ExportError("This run saved no weights (it failed or was stopped before saving).")
            made = Path(shutil.make_archive(str(out / f"{run.name}-model"), "zip", run.model))
        files = [str(made)] + _small_files(st, owner, run)
    except (ExportError, OSError, UploadError) as exc:
        return None, notice(str(exc), "error", "Export failed.")
    return files, notice(f"Ready: {made.name} ({_size(made)}).", "ok")


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.0f} KB"


def _merged_handler(st: Studio, tab: ExportTab):
    def handler(session, run_path, progress=gr.Progress()) -> dict:
        return _downloads(tab, *merged_export(st, session, run_path, progress))
    return handler


def merged_export(st: Studio, session: dict | None, run_path: str | None, progress) -> tuple:
    """(files, note) for the merged model of the chosen run, zipped for download."""
    owner = owner_of(session)
    run = st.run_for(owner, run_path)
    if run is None:
        return None, notice("Choose a run first.", "info")
    progress(0.1, desc="Merging")
    try:
        target = _out_dir(st, owner, run) / f"merged-{time.strftime('%Y%m%d-%H%M%S')}"
        folder = export_merged(run.path, target, st.home, progress=lambda m: progress(0.5, desc=m))
        progress(0.9, desc="Zipping the merged model")
        made = Path(shutil.make_archive(str(folder), "zip", folder))
    except (ExportError, ConfigError, OSError, UploadError) as exc:
        return None, notice(str(exc), "error", "Cannot merge.")
    return [str(made)], notice(f"Merged model ready: {made.name} ({_size(made)}). "
                               "It loads with transformers' from_pretrained, no adapter needed.", "ok")


def _gguf_handler(st: Studio, tab: ExportTab):
    def handler(session, run_path, types, progress=gr.Progress()) -> dict:
        return _downloads(tab, *gguf_export(st, session, run_path, types, progress))
    return handler


def gguf_export(st: Studio, session: dict | None, run_path: str | None, types, progress) -> tuple:
    """(files, note) for a chat run as GGUF files with an Ollama Modelfile, zipped for download."""
    owner = owner_of(session)
    run = st.run_for(owner, run_path)
    if run is None:
        return None, notice("Choose a run first.", "info")
    if not types:
        return None, notice("Tick at least one GGUF type.", "info")
    try:
        target = _out_dir(st, owner, run) / f"gguf-{time.strftime('%Y%m%d-%H%M%S')}"
        result = export_gguf(run.path, target, st.home, types=list(types),
                             progress=lambda message, fraction=None: progress(fraction or 0, desc=message))
        progress(0.95, desc="Zipping the GGUF files")
        made = Path(shutil.make_archive(str(result.folder), "zip", result.folder))
    except (ExportError, ConfigError, OSError, UploadError) as exc:
        return None, notice(str(exc), "error", "Cannot write GGUF:")
    notes = " ".join(result.notes)
    return [str(made)], notice(f"Ready: {made.name} ({_size(made)}), with {len(result.files)} GGUF file(s) and a "
                               f"Modelfile. In the unzipped folder: `{result.ollama_command}`, then `ollama run "
                               f"{result.ollama_name}`; llama.cpp and LM Studio open the .gguf files. {notes}", "ok")


def _settings(st: Studio, session: dict | None, names: list[str] | None):
    """The chosen runs' settings in one table, the settings that differ between them first."""
    from core.engine.tracking import hyperparameters

    known = {r.name: r for r in st.runs_of(owner_of(session))}
    columns = {}
    for name in names or []:
        run = known.get(name)
        try:
            columns[name] = hyperparameters(JobConfig.load(run.config)) if run is not None else None
        except ConfigError:
            columns[name] = None
    columns = {k: v for k, v in columns.items() if v}
    if len(columns) < 1:
        return gr.update(visible=False, value=None)
    keys = list(dict.fromkeys(k for values in columns.values() for k in values))
    differs = {k: len({str(v.get(k)) for v in columns.values()}) > 1 for k in keys}
    rows = [{"setting": k + (" ≠" if differs[k] else ""), **{n: v.get(k, "") for n, v in columns.items()}}
            for k in sorted(keys, key=lambda k: not differs[k])]
    return gr.update(visible=True, value=pd.DataFrame(rows))


def _overlay(st: Studio, session: dict | None, names: list[str] | None):
    curves = {}
    known = {r.name: r for r in st.runs_of(owner_of(session))}  # a name is never used as a path
    for name in names or []:
        run = known.get(name)
        if run is None:
            continue
        if run.metrics.is_file():
            curves[name] = read_events(run.metrics)
    return charts.overlay_figure(curves)
