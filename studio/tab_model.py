"""Step 2, the model: the catalog for the data's task, with size, licence and whether it works offline.

A hub id or a local folder may be typed instead; in public mode there is no box for it, and
``PublicPolicy.require_job`` refuses any model outside the catalog on the server side too. The memory estimate
for this machine is drawn by the settings step's wiring, because it depends on the strategy and batch size.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from core.catalog import entries_for, get_entry
from core.models import model_status

from .context import Studio
from .views import MODEL_BADGES, notice

COLUMNS = ["Model", "Size", "Licence", "Offline?", "When to pick it"]


def build(st: Studio) -> None:
    gr.Markdown("## Choose the model to teach\nSmaller models train faster; the ones marked *ships with the "
                "studio* work without internet.")
    empty = gr.HTML(notice("Load data first (step 1): the list shows the models made for your task.", "info"),
                    elem_id="model-empty")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, visible=False, elem_id="model-table",
                         column_widths=["20%", "9%", "11%", "20%", "40%"])
    choice = gr.Radio(label="Model", choices=[], visible=False, elem_id="model-choice")
    if st.public:  # catalog models only: no box to type a hub id or a server folder into
        custom = gr.State("")
    else:
        custom = gr.Textbox(label="Or type a Hugging Face hub id or a local folder (overrides the choice above)",
                            placeholder="e.g. HuggingFaceTB/SmolLM2-360M-Instruct or /path/to/model",
                            visible=False, elem_id="model-custom")
    memory = gr.HTML(elem_id="model-memory")
    next_button = gr.Button("Next: settings →", variant="primary", interactive=False, elem_id="model-next")
    st.shared.update(model_choice=choice, model_custom=custom, model_memory=memory)

    def refresh(data):
        return _catalog_view(st, data)

    outputs = [empty, table, choice] + ([] if st.public else [custom]) + [next_button]
    st["data"].change(refresh, [st["data"]], outputs)
    next_button.click(lambda: gr.Tabs(selected="settings"), None, st["tabs"])


def _catalog_view(st: Studio, data: dict | None) -> list:
    if not data:
        return [gr.update(visible=True), gr.update(visible=False), gr.update(visible=False, choices=[], value=None),
                *_custom_update(st, False), gr.update(interactive=False)]
    task = data["choice"].task
    entries = entries_for(task)
    rows = [[e.title, f"{e.params_m:,.0f} M" if e.params_m >= 1 else f"{e.params_m:.1f} M", e.licence,
             _badge(st, e), e.description] for e in entries]
    choices = [(f"{e.title} · {e.params_m:,.0f} M" + (" · ships with the studio" if e.packaged else ""), e.key)
               for e in entries]
    default = next((e.key for e in entries if e.default), entries[0].key if entries else None)
    return [gr.update(visible=False), gr.update(value=pd.DataFrame(rows, columns=COLUMNS), visible=True),
            gr.update(choices=choices, value=default, visible=True),
            *_custom_update(st, True), gr.update(interactive=True)]


def _custom_update(st: Studio, visible: bool) -> list:
    return [] if st.public else [gr.update(visible=visible)]


def _badge(st: Studio, entry) -> str:
    status = model_status(entry, st.home)
    text = MODEL_BADGES.get(status, (status, ""))[0]
    if entry.gated and status == "download":
        text += " (gated: accept the licence on the hub)"
    return text


def chosen_model(choice: str | None, custom: str | None, public: bool) -> str:
    """The model the job will use: the typed id/folder when given (never in public mode), else the choice."""
    typed = (custom or "").strip()
    if typed and not public:
        return typed
    return choice or ""


def model_entry(model: str):
    return get_entry(model) if model else None
