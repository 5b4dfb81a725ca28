"""The studio's Gradio app: six steps from a file to a tested, exported model.

``build_app`` lays out the tabs (one module each) around two per-browser stores: a ``gr.BrowserState``
(owner id, current job, current run, data choice) that survives reloads, and a ``gr.State`` holding the
loaded data. The only object shared between visitors is the ``JobManager`` passed in.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import gradio as gr

from core.hardware import detect_hardware
from core.home import Home

from . import tab_data, tab_evaluate, tab_export, tab_model, tab_settings, tab_train
from .context import SESSION_DEFAULT, Studio

ASSETS = Path(__file__).resolve().parent.parent / "assets"
UI_ASSETS = ASSETS / "ui"
TITLE = "Fine-tune Studio"


def build_app(home: Home, manager, public: bool = False) -> gr.Blocks:
    """Build the studio UI.

    Args:
        home: the studio home (models, uploads, runs).
        manager: the one ``core.jobs.JobManager``; every job goes through it.
        public: a shared demo (stricter upload limits, catalog models only, each visitor sees their own runs).
    """
    st = Studio(home=home, manager=manager, public=public, hardware=detect_hardware())
    st.exports.mkdir(parents=True, exist_ok=True)
    with gr.Blocks(title=TITLE) as app:
        st.shared["session"] = gr.BrowserState(dict(SESSION_DEFAULT), storage_key="finetune-studio-session")
        st.shared["data"] = gr.State(None)
        _header(st)
        with gr.Tabs(elem_id="steps") as tabs:
            st.shared["tabs"] = tabs
            with gr.Tab("1 · Data", id="data", elem_id="tab-data"):
                tab_data.build(st)
            with gr.Tab("2 · Model", id="model", elem_id="tab-model"):
                tab_model.build(st)
            with gr.Tab("3 · Settings", id="settings", elem_id="tab-settings"):
                tab_settings.build(st)
            with gr.Tab("4 · Train", id="train", elem_id="tab-train"):
                tab_train.build(st)
            with gr.Tab("5 · Evaluate & try", id="evaluate", elem_id="tab-evaluate"):
                tab_evaluate.build(st)
            with gr.Tab("6 · Export & history", id="export", elem_id="tab-export"):
                tab_export.build(st)
        tab_settings.wire(st)
        tab_train.wire(st)
        app.load(_start_session, [st["session"]], [st["session"]], queue=False).then(
            lambda s: tab_data.restore(st, s), [st["session"]], tab_data.outputs(st))
    return app


def _header(st: Studio) -> None:
    logo = (UI_ASSETS / "logo.svg").read_text(encoding="utf-8") if (UI_ASSETS / "logo.svg").is_file() else ""
    mode = " · public demo" if st.public else ""
    gr.HTML(f'<div class="st-header">{logo}<div><h1>{TITLE}</h1><p>Teach a small model your task: bring a '
            f'file, pick a model, train on this machine ({st.hardware.describe()}){mode}, then try it and take '
            f'it with you.</p></div></div>', elem_id="st-header")


def _start_session(session: dict | None) -> dict:
    """Give a new browser its owner id; an existing one keeps its id, job and run (re-attach)."""
    session = {**SESSION_DEFAULT, **(session or {})}
    if not session.get("owner"):
        session["owner"] = secrets.token_hex(8)
    return session


def _css() -> str:
    path = UI_ASSETS / "studio.css"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def allowed_paths(home: Home) -> list[str]:
    """Only the studio's own folders may be served: uploads, runs, exports and the bundled examples."""
    return [str(home.uploads), str(home.runs), str(home.root / "exports"), str(ASSETS / "examples")]


def launch(home: Home, host: str | None = None, port: int | None = None, public: bool = False,
           manager=None, block: bool = True) -> gr.Blocks:
    """Start the studio server.

    Args:
        home: the studio home.
        host: interface to bind; ``$GRADIO_SERVER_NAME`` or 127.0.0.1 when None (0.0.0.0 on Spaces).
        port: ``$PORT`` (Spaces) or ``$GRADIO_SERVER_PORT`` or 7860 when None.
        public: a shared demo (see ``build_app``).
        manager: a JobManager; one is created for ``home`` when None.
        block: keep the calling thread serving (False for tests, which stop it with ``app.close()``).
    """
    if manager is None:
        from core.jobs import JobManager

        manager = JobManager(home)
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = int(port or os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    app = build_app(home, manager, public=public)
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, allowed_paths=allowed_paths(home), css=_css(),
               theme=gr.themes.Soft(primary_hue="indigo"), favicon_path=_favicon(), show_error=True,
               prevent_thread_lock=not block, max_file_size="2gb" if not public else "100mb",
               footer_links=["gradio"], quiet=True)
    return app


def _favicon() -> str | None:
    path = UI_ASSETS / "logo.png"
    return str(path) if path.is_file() else None
