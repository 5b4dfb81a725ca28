"""Step 4, training: Start and Stop, the queue position, a progress bar with ETA, live curves, throughput
and the log tail. A ``gr.Timer`` polls the job manager's snapshot, so a reloaded page or a second tab
re-attaches to the running job (its id is in the browser's ``BrowserState``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.config import ConfigError
from core.data.report import DataError
from core.models import ModelUnavailable
from core.strategies import get_strategy
from core.tasks import get_task

from . import charts
from .context import Studio, owner_of
from .views import duration, notice, progress_html, status_html

POLL_SECONDS = 1.5
LOG_LINES = 30


@dataclass
class TrainTab:
    """The training step's components, and the poll timer (built outside the tabs, see ``build_poller``)."""

    summary: gr.HTML
    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    status: gr.HTML
    progress: gr.HTML
    speed: gr.Markdown
    loss: gr.Plot
    evals: gr.Plot
    lr: gr.Plot
    log: gr.Code
    next: gr.Button
    timer: gr.Timer
    seen: gr.Textbox

    def view(self) -> list:
        """What a poll redraws."""
        return [self.status, self.progress, self.speed, self.loss, self.evals, self.lr, self.log, self.stop,
                self.start, self.resume, self.next]


def build_poller() -> tuple[gr.Timer, gr.Textbox]:
    """The timer that polls the job, and what the page has drawn; built outside the tabs.

    gradio mounts a tab's content when the tab is first opened, and a timer inside it ticks only from then on.
    Outside the tabs it ticks from page load, so a reloaded page re-attaches to its job whatever tab is shown;
    an unchanged job costs one skipped update.
    """
    # What this page has drawn ("job id|events|status"), kept in the page rather than in server-side state: it
    # changes in the same answer as the charts, so it never claims a drawing the page did not get.
    seen = gr.Textbox(visible=False, elem_id="train-seen")
    return gr.Timer(POLL_SECONDS), seen


def build(st: Studio, timer: gr.Timer, seen: gr.Textbox) -> TrainTab:
    gr.Markdown("## Train\nTraining runs on this machine in the background: you can close or reload the page "
                "and come back; Stop keeps what was trained so far.")
    summary = gr.HTML(elem_id="train-summary")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start", scale=3)
        stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="train-stop", scale=1)
    resume = gr.Button("Resume", variant="primary", visible=False, elem_id="train-resume")
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
    next_button.click(lambda: gr.Tabs(selected="evaluate"), None, st.tabs)
    return TrainTab(summary, start, stop, resume, status, progress, speed, loss, evals, lr, log, next_button, timer,
                    seen)


def wire(st: Studio) -> None:
    tab, form = st.train_tab, st.form
    def start(got: dict, request: gr.Request) -> dict:
        return _start(st, got, request)

    tab.start.click(start, {st.session, *form.inputs()}, [st.session, tab.status, tab.seen])
    tab.stop.click(lambda session: _stop(st, session), [st.session], [tab.status])
    tab.resume.click(lambda session: _resume(st, session), [st.session], [st.session, tab.status, tab.seen, tab.resume])
    tab.timer.tick(lambda session, seen: _poll(st, session, seen), [st.session, tab.seen],
                   [st.session, tab.seen, *tab.view()], show_progress="hidden", concurrency_limit=None, queue=False)
    listed = [event.then for event in st.settings_tab.listed]  # once the strategies fit new data or another model
    for trigger in (form.strategy.change, form.preset.change, *listed):
        trigger(lambda got: _summary(st, got), form.inputs(), [tab.summary])


def _summary(st: Studio, got: dict) -> str:
    try:
        values = st.form.values(got, st.public)
    except ConfigError as exc:
        return notice(" ".join(exc.problems), "info", "Not ready to train:")
    try:
        task = get_task(values.data.task).title
    except KeyError:
        task = values.data.task
    return notice(f"{task} · model {values.model} · {values.strategy} · preset {values.preset} · "
                  f"data {values.data.path.rsplit('/', 1)[-1]}", "info", "The job:")


def _start(st: Studio, got: dict, request=None) -> dict:
    tab = st.train_tab
    session = st.own(got.get(st.session), request)  # never submit a job no poll can find (a session without owner)
    current = _snapshot(st, session)
    if current is not None and current.active:
        return {st.session: session,
                tab.status: notice("A job of yours is still running: stop it first, or wait for it to finish.",
                                   "warn")}
    try:
        job_id = submit(st, owner_of(session), got)
    except ConfigError as exc:
        return {st.session: session, tab.status: notice(" ".join(exc.problems), "error", "Fix the settings:")}
    except (DataError, ModelUnavailable) as exc:
        return {st.session: session, tab.status: notice(str(exc), "error", "Cannot start:")}
    return {st.session: {**session, "job_id": job_id}, tab.status: notice("Submitted. It starts in a moment.", "info"),
            tab.seen: ""}


def submit(st: Studio, owner: str | None, got: dict) -> str:
    """Queue the job the widgets describe for this visitor, within the public caps; return its id.

    Raises ``ConfigError`` (plain sentences) when a step is missing or the public policy refuses the job.
    """
    config = st.submittable(st.form.values(got, st.public))
    st.policy.require_job(config, owner, st.manager)
    return st.manager.submit(config, owner=owner)


def _stop(st: Studio, session: dict) -> str:
    snap = _snapshot(st, session)
    if snap is None or not snap.active:
        return notice("There is no job to stop.", "info")
    st.manager.stop(snap.job_id)
    return notice("Stopping after the current step; what was trained so far is kept.", "warn", "Stopping.")


def resume_run(st: Studio, session: dict | None, run_path: str | None) -> dict:
    """Queue ``run_path`` to go on from its last sound checkpoint for this visitor; the session then follows the
    new job. ``ConfigError`` (in words) when the run cannot be resumed or is not theirs."""
    session = st.own(session)
    run = st.run_for(owner_of(session), run_path)
    if run is None:
        raise ConfigError(["choose one of your runs to resume."])
    job_id = st.manager.resume(run.path, owner=owner_of(session))
    return {**session, "job_id": job_id}


def _resume(st: Studio, session: dict) -> dict:
    tab = st.train_tab
    snap = _snapshot(st, session)
    try:
        session = resume_run(st, session, str(snap.run_dir) if snap is not None and snap.run_dir else None)
    except ConfigError as exc:
        return {tab.status: notice(" ".join(exc.problems), "warn", "Cannot resume:")}
    return {st.session: session, tab.status: notice("Resuming: it starts in a moment.", "info"), tab.seen: "",
            tab.resume: gr.update(visible=False)}


def _resume_button(snap) -> dict:
    """Resume, with what it would do, for a run that ended without finishing and has what it needs to go on."""
    check = snap.resume
    if snap.active or check is None or not check.can_resume:
        return gr.update(visible=False)
    label = check.reason.rstrip(".") if check.reason.lower().startswith("resume") else f"Resume: {check.reason}"
    return gr.update(visible=True, value=label)


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


def _poll(st: Studio, session: dict, seen: Any):
    tab = st.train_tab
    snap = _snapshot(st, session)
    if snap is None:
        return gr.skip()
    marker = f"{snap.job_id}|{len(snap.events)}|{snap.status}"
    if marker == seen:
        return gr.skip()
    out: dict = {tab.seen: marker}
    run = str(snap.run_dir) if snap.run_dir else None
    done = snap.status in ("completed", "stopped")
    if session.get("job_id") != snap.job_id or (done and session.get("run") != run):
        out[st.session] = {**session, "job_id": snap.job_id, "run": run if done else session.get("run")}
    events = snap.events
    progress = _search_progress(events, snap.progress) if snap.status in ("training", "completed") \
        else snap.progress
    out.update({
        tab.status: status_html(snap.status, snap.message, snap.queue_position, snap.error),
        tab.progress: progress_html(progress, snap.status), tab.speed: _speed(events),
        **_curves(tab, snap.config, events),
        tab.log: _log_tail(events), tab.stop: gr.update(interactive=snap.active),
        tab.start: gr.update(interactive=not snap.active), tab.next: gr.update(visible=done),
        tab.resume: _resume_button(snap),
    })
    return out


def _curves(tab: TrainTab, config, events: list[dict]) -> dict:
    """The three charts. A regression head on frozen features is solved exactly once per ridge penalty: its points
    are the cross-validated error of each penalty, not a loss over steps, and it has no learning rate."""
    if _ridge_path(config):
        return {tab.loss: charts.penalty_figure(events), tab.evals: charts.eval_figure(events),
                tab.lr: charts.empty_figure("Learning rate", "A ridge head has no learning rate:<br>it is "
                                                             "solved exactly for each penalty.")}
    try:
        perplexity = get_task(config.task).metric == "perplexity"
    except (KeyError, AttributeError):
        perplexity = False
    evals = charts.perplexity_figure(events) if perplexity else charts.eval_figure(events)
    return {tab.loss: charts.loss_figure(events), tab.evals: evals, tab.lr: charts.lr_figure(events)}


def _ridge_path(config) -> bool:
    """Whether the job fits a regression head on cached features (its "train" points are ridge penalties)."""
    try:
        strategy = get_strategy(config.strategy)
        return get_task(config.task).kind == "regression" and strategy.on_features and not strategy.searches
    except (KeyError, AttributeError):
        return False


def _search_progress(events: list[dict], progress: dict) -> dict:
    """An automatic search has no steps until it fine-tunes: its bar is the time it has used of its budget."""
    search = next((e for e in reversed(events) if e.get("type") == "search"), None)
    if search is None or progress.get("total_steps") or not search.get("budget_s"):
        return progress
    scored = sum(1 for e in events if e.get("type") == "candidate" and e.get("time", 0) >= search.get("time", 0))
    used = max(0.0, time.time() - float(search.get("time", time.time())))
    budget = float(search["budget_s"])
    return {**progress, "current": int(min(used, budget)), "total": int(budget), "unit": "s", "candidates": scored,
            "phase_message": f"Automatic search: {scored} candidate(s) scored so far, within its budget"}


def _speed(events: list[dict]) -> str:
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
