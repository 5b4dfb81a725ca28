"""Step 4, training: Start and Stop, the queue position, a progress bar with ETA, live curves, throughput
and the log tail. A ``gr.Timer`` polls the job manager's snapshot, so a reloaded page or a second tab
re-attaches to the running job (its id is in the browser's ``BrowserState``).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from core.config import ConfigError
from core.data.report import DataError
from core.models import ModelUnavailable

from . import charts
from .context import Studio, owner_of, with_owner
from .tab_settings import job_from_widgets, job_inputs
from .views import duration, notice, progress_html, status_html

POLL_SECONDS = 1.5
LOG_LINES = 30


def build(st: Studio) -> None:
    gr.Markdown("## Train\nTraining runs on this machine in the background: you can close or reload the page "
                "and come back; Stop keeps what was trained so far.")
    summary = gr.HTML(elem_id="train-summary")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start", scale=3)
        stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="train-stop", scale=1)
    status = gr.HTML(status_html(None, None), elem_id="train-status")
    progress = gr.HTML(elem_id="train-progress")
    speed = gr.Markdown(elem_id="train-speed")
    with gr.Row():
        loss = gr.Plot(charts.loss_figure([]), show_label=False, elem_id="train-loss")
        evals = gr.Plot(charts.eval_figure([]), show_label=False, elem_id="train-eval")
        lr = gr.Plot(charts.lr_figure([]), show_label=False, elem_id="train-lr")
    with gr.Accordion("Log", open=False):
        log = gr.Code(language=None, lines=12, interactive=False, elem_id="train-log")
    next_button = gr.Button("Next: evaluate and try it →", variant="primary", visible=False, elem_id="train-next")
    st.shared.update(train_summary=summary, train_start=start, train_stop=stop, train_status=status,
                     train_view=[status, progress, speed, loss, evals, lr, log, stop, start, next_button])
    next_button.click(lambda: gr.Tabs(selected="evaluate"), None, st["tabs"])


def build_poller(st: Studio) -> None:
    """The timer that polls the job, and what the page has drawn; built outside the tabs.

    gradio mounts a tab's content when the tab is first opened, and a timer inside it ticks only from then on.
    Outside the tabs it ticks from page load, so a reloaded page re-attaches to its job whatever tab is shown;
    an unchanged job costs one skipped update.
    """
    # What this page has drawn ("job id|events|status"), kept in the page rather than in server-side state: it
    # changes in the same answer as the charts, so it never claims a drawing the page did not get.
    seen = gr.Textbox(visible=False, elem_id="train-seen")
    st.shared.update(train_timer=gr.Timer(POLL_SECONDS), train_seen=seen)


def wire(st: Studio) -> None:
    s = st.shared
    session = s["session"]
    view = s["train_view"]
    s["train_start"].click(lambda sess, *vals: _start(st, sess, *vals), [session, *job_inputs(st)],
                           [session, s["train_status"], s["train_seen"]])
    s["train_stop"].click(lambda sess: _stop(st, sess), [session], [s["train_status"]])
    s["train_timer"].tick(lambda sess, seen: _poll(st, sess, seen), [session, s["train_seen"]],
                          [session, s["train_seen"], *view], show_progress="hidden", concurrency_limit=None,
                          queue=False)
    for trigger in (s["strategy"].change, s["preset"].change, s["data"].change, s["model_choice"].change):
        trigger(lambda *vals: _summary(st, *vals), job_inputs(st), [s["train_summary"]])


def _summary(st: Studio, *values) -> str:
    try:
        config = job_from_widgets(st, *values)
    except ConfigError as exc:
        return notice(" ".join(exc.problems), "info", "Not ready to train:")
    return notice(f"{config.task} · model {config.model} · {config.strategy} · preset {config.train.preset} · "
                  f"data {config.data.path.rsplit('/', 1)[-1]}", "info", "The job:")


def _start(st: Studio, session: dict, *values):
    session = with_owner(session)  # never submit a job no poll can find (a session that lost its owner id)
    owner = owner_of(session)
    current = _snapshot(st, session)
    if current is not None and current.active:
        return session, notice("A job of yours is still running: stop it first, or wait for it to finish.",
                               "warn"), gr.skip()
    try:
        job_id = submit(st, owner, *values)
    except ConfigError as exc:
        return session, notice(" ".join(exc.problems), "error", "Fix the settings:"), gr.skip()
    except (DataError, ModelUnavailable) as exc:
        return session, notice(str(exc), "error", "Cannot start:"), gr.skip()
    session.update(job_id=job_id)
    return session, notice("Submitted. It starts in a moment.", "info"), ""


def submit(st: Studio, owner: str | None, *values) -> str:
    """Queue the job the widgets describe for this visitor, within the public caps; return its id.

    Raises ``ConfigError`` (plain sentences) when a step is missing or the public policy refuses the job.
    """
    config = job_from_widgets(st, *values)
    st.policy.require_job(config, owner, st.manager)
    prepared = values[0]["prepared"]
    n_train = len(prepared.train) if prepared.train is not None else None
    return st.manager.submit(st.policy.clamp(config, n_train=n_train), owner=owner)


def _stop(st: Studio, session: dict) -> str:
    snap = _snapshot(st, session)
    if snap is None or not snap.active:
        return notice("There is no job to stop.", "info")
    st.manager.stop(snap.job_id)
    return notice("Stopping after the current step; what was trained so far is kept.", "warn", "Stopping.")


def _snapshot(st: Studio, session: dict):
    """The visitor's current job: the one the browser names if it is theirs, else their latest."""
    session = session or {}
    owner = owner_of(session)
    if owner is None:
        return None
    snap = st.manager.snapshot(session["job_id"]) if isinstance(session.get("job_id"), str) else None
    if snap is not None and snap.owner != owner:
        snap = None  # a job id from edited storage: never show or stop another visitor's job
    return snap or st.manager.latest(owner)


def _poll(st: Studio, session: dict, seen: Any) -> list:
    snap = _snapshot(st, session)
    skip = [gr.skip()] * 10
    if snap is None:
        return [gr.skip(), gr.skip(), *skip]
    marker = f"{snap.job_id}|{len(snap.events)}|{snap.status}"
    if marker == seen:
        return [gr.skip(), gr.skip(), *skip]
    new_session = gr.skip()
    run = str(snap.run_dir) if snap.run_dir else None
    if session.get("job_id") != snap.job_id or (snap.status in ("completed", "stopped") and session.get("run") != run):
        new_session = {**session, "job_id": snap.job_id, "run": run if snap.status in ("completed", "stopped")
                       else session.get("run")}
    events = snap.events
    active = snap.active
    return [new_session, marker,
            status_html(snap.status, snap.message, snap.queue_position, snap.error),
            progress_html(snap.progress, snap.status), _speed(events, snap),
            charts.loss_figure(events), charts.eval_figure(events), charts.lr_figure(events), _log_tail(events),
            gr.update(interactive=active), gr.update(interactive=not active),
            gr.update(visible=snap.status in ("completed", "stopped"))]


def _speed(events: list[dict], snap) -> str:
    last = next((e for e in reversed(events) if e.get("type") == "train"), None)
    if last is None:
        return ""
    parts = []
    if isinstance(last.get("tokens_per_s"), (int, float)):
        parts.append(f"{last['tokens_per_s']:,.0f} tokens/s")
    if isinstance(last.get("samples_per_s"), (int, float)):
        parts.append(f"{last['samples_per_s']:,.1f} examples/s")
    if isinstance(last.get("loss"), (int, float)):
        parts.append(f"loss {last['loss']:.4f}")
    if isinstance(last.get("elapsed_s"), (int, float)):
        parts.append(f"running {duration(last['elapsed_s'])}")
    return " · ".join(parts)


def _log_tail(events: list[dict]) -> str:
    lines = []
    for e in events:
        if e.get("type") == "log":
            lines.append(str(e.get("message", "")))
        elif e.get("type") == "phase":
            lines.append(f"[{e.get('phase', '')}] {e.get('message', '')}")
        elif e.get("type") == "status":
            lines.append(f"status: {e.get('status')} {e.get('message', '')}".rstrip())
    return "\n".join(lines[-LOG_LINES:])
