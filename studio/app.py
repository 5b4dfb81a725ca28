"""The studio's Gradio app: six steps from a file to a tested, exported model.

``build_app`` lays out the tabs (one module each) around two per-browser stores: a ``gr.BrowserState``
(owner id, current job, current run, data choice) that survives reloads, and a ``gr.State`` holding the
loaded data. The only object shared between visitors is the ``JobManager`` passed in. In public mode
(``--public``, ``$STUDIO_PUBLIC=1`` or a Space) ``core.public.PublicPolicy`` sets the caps and what is served.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import gradio as gr

from core import stack
from core.data.limits import DataLimits
from core.hardware import detect_hardware
from core.home import Home
from core.public import PublicPolicy

from . import tab_data, tab_evaluate, tab_export, tab_model, tab_settings, tab_train
from .context import SESSION_DEFAULT, Studio, with_owner
from .views import esc

ASSETS = Path(__file__).resolve().parent.parent / "assets"
UI_ASSETS = ASSETS / "ui"
TITLE = "Fine-tune Studio"
EXPIRE_EVERY_S = 600.0
log = logging.getLogger(__name__)


def build_app(home: Home, manager, public: bool = False, policy: PublicPolicy | None = None) -> gr.Blocks:
    """Build the studio UI.

    Args:
        home: the studio home (models, uploads, runs).
        manager: the one ``core.jobs.JobManager``; every job goes through it.
        public: a shared demo (upload caps, catalog models only, each visitor sees only their own runs).
        policy: the caps to apply; ``PublicPolicy.from_env(public)`` when None.
    """
    policy = policy or PublicPolicy.from_env(public)
    st = Studio(home=home, manager=manager, policy=policy, hardware=detect_hardware())
    with gr.Blocks(title=TITLE) as app:
        # the home's own key: a random one per start would make every page's stored session unreadable after a
        # restart of the studio (the page would forget its owner and its runs)
        st.session = gr.BrowserState(dict(SESSION_DEFAULT), storage_key="finetune-studio-session",
                                     secret=home.secret("browser-state"))
        st.data = gr.State(None)
        _header(st)
        timer, seen = tab_train.build_poller()
        with gr.Tabs(elem_id="steps") as tabs:
            st.tabs = tabs
            with gr.Tab("1 · Data", id="data", elem_id="tab-data"):
                st.data_tab = tab_data.build(st)
            with gr.Tab("2 · Model", id="model", elem_id="tab-model"):
                st.model_tab = tab_model.build(st)
            with gr.Tab("3 · Settings", id="settings", elem_id="tab-settings"):
                st.settings_tab = tab_settings.build(st)
            with gr.Tab("4 · Train", id="train", elem_id="tab-train"):
                st.train_tab = tab_train.build(st, timer, seen)
            with gr.Tab("5 · Evaluate & try", id="evaluate", elem_id="tab-evaluate"):
                st.evaluate_tab = tab_evaluate.build(st)
            with gr.Tab("6 · Export & history", id="export", elem_id="tab-export"):
                st.export_tab = tab_export.build(st)
        st.form = tab_settings.job_form(st)
        tab_settings.wire(st)
        tab_train.wire(st)
        def start(session: dict | None, request: gr.Request) -> dict:
            return start_session(session, st, request)

        app.load(start, [st.session], [st.session], queue=False).then(
            lambda s: tab_data.restore(st, s), [st.session], st.data_tab.restored(st))
    app.studio = st  # the components and shared objects, for tests
    return app


def _header(st: Studio) -> None:
    logo = (UI_ASSETS / "logo.svg").read_text(encoding="utf-8") if (UI_ASSETS / "logo.svg").is_file() else ""
    mode = " · public demo" if st.public else ""
    limits = f'<p class="st-muted" id="st-public-limits">{esc(st.policy.describe())}</p>' if st.public else ""
    gr.HTML(f'<div class="st-header">{logo}<div><h1>{TITLE}</h1><p>Teach a small model your task: bring a '
            f'file, pick a model, train on this machine ({esc(st.hardware.describe())}){mode}, then try it and take '
            f'it with you.</p>{limits}</div></div>', elem_id="st-header")


def start_session(session: dict | None, st: Studio | None = None, request=None) -> dict:
    """Give a new browser its owner id; an existing one keeps its id, job and run (re-attach)."""
    return st.own(session, request) if st is not None else with_owner(session)


def add_health_route(app: gr.Blocks, manager) -> None:
    """``GET /studio/health``: whether the studio is up and since when (the page's watchdog asks it every few
    seconds to say when it has lost the studio, and reloads itself when the studio has restarted)."""
    from fastapi.responses import JSONResponse

    def health() -> JSONResponse:
        state = manager.health()
        return JSONResponse({"up_since": state.up_since, "worker": state.worker, "running": state.running,
                             "queued": state.queued}, headers={"Cache-Control": "no-store"})

    app.app.add_api_route("/studio/health", health, methods=["GET"])


def _head() -> str:
    path = UI_ASSETS / "watchdog.js"
    return f"<script>{path.read_text(encoding='utf-8')}</script>" if path.is_file() else ""


def _css() -> str:
    path = UI_ASSETS / "studio.css"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def launch(home: Home, host: str | None = None, port: int | None = None, public: bool = False,
           manager=None, block: bool = True, password: str | None = None) -> gr.Blocks:
    """Start the studio server.

    Args:
        home: the studio home.
        host: interface to bind; ``$GRADIO_SERVER_NAME`` or 127.0.0.1 when None (0.0.0.0 on Spaces).
        port: ``$PORT`` (Spaces) or ``$GRADIO_SERVER_PORT`` or 7860 when None.
        public: a shared demo (see ``build_app``); also on with ``$STUDIO_PUBLIC=1`` or ``$SPACE_ID``.
        manager: a JobManager; one is created for ``home`` when None.
        block: keep the calling thread serving (False for tests, which stop it with ``app.close()``).
        password: asked at a login page when served beyond this machine (``core.access``); default
            ``$STUDIO_PASSWORD``.
    """
    import sys

    from core.access import LOGIN_MESSAGE, decide_access

    if manager is None:
        from core.jobs import JobManager

        manager = JobManager(home)
    policy = PublicPolicy.from_env(public)
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = int(port or os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    (home.root / "exports").mkdir(parents=True, exist_ok=True)
    app = build_app(home, manager, policy=policy)
    app.queue(default_concurrency_limit=4)
    if policy.enabled:
        start_expiry(policy, home, manager)
    max_upload = policy.max_upload_bytes if policy.enabled else DataLimits().max_bytes
    access = decide_access(host, password or os.environ.get("STUDIO_PASSWORD") or None, policy.enabled)
    if access.warning:
        print(access.warning, file=sys.stderr, flush=True)
    app.launch(server_name=host, server_port=port, allowed_paths=policy.allowed_paths(home),
               blocked_paths=policy.blocked_paths(home), max_file_size=max_upload, css=_css(),
               theme=gr.themes.Soft(primary_hue="indigo"), favicon_path=_favicon(), show_error=True,
               prevent_thread_lock=True, footer_links=["gradio"], quiet=True, auth=access.auth,
               auth_message=LOGIN_MESSAGE if access.auth else None, head=_head())
    add_health_route(app, manager)
    # The training stack imports while the visitor picks data, first in the warm training process (Start's first
    # loss point waits on that one), then here, while no job trains (on a small machine it would take the job's
    # cores; the page's previews and the playground import it themselves if they come first).
    threading.Thread(target=_warm_up_when_idle, args=(manager,), name="studio-warm-up", daemon=True).start()
    if block:
        app.block_thread()
    return app


def _warm_up_when_idle(manager) -> None:
    import time

    manager.wait_ready()
    while manager.busy():
        time.sleep(1.0)
    stack.warm_up(then=_import_engine)


def _import_engine() -> None:
    """The studio's own modules that import transformers at their top, imported once the stack is in."""
    import core.engine.chat  # noqa: F401
    import core.engine.classify  # noqa: F401
    import core.inference.chat  # noqa: F401
    import core.inference.classify  # noqa: F401
    import core.inference.regress  # noqa: F401


def start_expiry(policy: PublicPolicy, home: Home, manager, every_s: float = EXPIRE_EVERY_S) -> threading.Event:
    """Delete old uploads, exports and runs now and then every ``every_s`` seconds, in a daemon thread.

    One thread for the server rather than a ``gr.Timer``, which would tick once per open browser tab.
    Returns the event that stops it.
    """
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                removed = policy.expire(home, manager)
                if removed["uploads"] or removed["runs"]:
                    log.info("expired %d uploads and %d runs", len(removed["uploads"]), len(removed["runs"]))
            except Exception:  # a cleanup hiccup (a file in use, a race) must not end cleaning for good
                log.exception("expiring old uploads and runs failed; trying again later")
            if stop.wait(every_s):
                return

    threading.Thread(target=loop, name="studio-expiry", daemon=True).start()
    return stop


def _favicon() -> str | None:
    path = UI_ASSETS / "logo.png"
    return str(path) if path.is_file() else None
