"""Step 2, the model: the catalog for the data's task, with size, licence and whether it works offline.

A hub id or a local folder may be typed instead; in public mode there is no box for it, and
``PublicPolicy.require_job`` refuses any model outside the catalog on the server side too. The memory estimate
for this machine is drawn by the settings step's wiring, because it depends on the strategy and batch size.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio import component_meta
import pandas as pd

from core.catalog import entries_for, get_entry
from core.models import model_status
from core.tasks import get_task

from .context import Studio
from .views import MODEL_BADGES, notice

COLUMNS = ["Model", "Size", "Licence", "Offline?", "When to pick it"]


@dataclass
class ModelTab:
    """The model step's components."""

    empty: gr.HTML
    note: gr.HTML
    table: gr.Dataframe
    choice: gr.Radio
    custom: Any  # a Textbox, or in public mode a State holding "" (no box to type a path into)
    memory: gr.HTML
    next: gr.Button
    # The event that lists the data's models. What reads the model choice after new data chains on it (``.then``)
    # rather than on the data's change: run side by side, it would get the previous task's model, which the new
    # list no longer holds, and gradio refuses a radio value outside its choices with an error toast.
    listed: Any = None


@contextmanager
def _no_stub_file():
    """Gradio writes a ``.pyi`` stub beside the source of any module that subclasses one of its components, each
    time the module is imported; the studio writes nothing beside its own code (or a user's files)."""
    writer = getattr(component_meta, "create_or_modify_pyi", None)
    if writer is not None:
        component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:
        yield
    finally:
        if writer is not None:
            component_meta.create_or_modify_pyi = writer


with _no_stub_file():
    class ChoiceRadio(gr.Radio):
        """The model list: a Radio that reads a value no longer among its choices as no choice.

        New data replaces the list (an image example's models, then a text example's); an event the browser sent
        with the old list's value can arrive after the new list, and a plain Radio then raises ("not in the list
        of choices"), which the page shows as an "Error" toast although the next event carries the right value.
        Gradio re-creates a component from its class for each session's update, so this is a class, not a patched
        instance.
        """

        is_template = True  # drawn by the frontend's own Radio

        def preprocess(self, payload):
            if payload is not None and payload not in [value for _, value in self.choices]:
                return None
            return super().preprocess(payload)


def build(st: Studio) -> ModelTab:
    gr.Markdown("## Choose the model to teach\nSmaller models train faster; the ones marked *ships with the "
                "studio* work without internet.")
    empty = gr.HTML(notice("Load data first (step 1): the list shows the models made for your task.", "info"),
                    elem_id="model-empty")
    note = gr.HTML(elem_id="model-note")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, visible=False, elem_id="model-table",
                         column_widths=["20%", "9%", "11%", "20%", "40%"])
    choice = ChoiceRadio(label="Model", choices=[], visible=False, elem_id="model-choice")
    if st.public:  # catalog models only: no box to type a hub id or a server folder into
        custom = gr.State("")
    else:
        custom = gr.Textbox(label="Or type a Hugging Face hub id or a local folder (overrides the choice above)",
                            placeholder="e.g. HuggingFaceTB/SmolLM2-360M-Instruct or /path/to/model",
                            visible=False, elem_id="model-custom")
    memory = gr.HTML(elem_id="model-memory")
    next_button = gr.Button("Next: settings →", variant="primary", interactive=False, elem_id="model-next")
    tab = ModelTab(empty, note, table, choice, custom, memory, next_button)
    outputs = [empty, note, table, choice, next_button] + ([] if st.public else [custom])
    tab.listed = st.data.change(lambda data: _catalog_view(st, tab, data), [st.data], outputs)
    next_button.click(lambda: gr.Tabs(selected="settings"), None, st.tabs)
    return tab


def _catalog_view(st: Studio, tab: ModelTab, data: dict | None) -> dict:
    custom = {} if st.public else {tab.custom: gr.update(visible=bool(data))}
    if not data:
        return {tab.empty: gr.update(visible=True), tab.note: "", tab.table: gr.update(visible=False),
                tab.choice: gr.update(visible=False, choices=[], value=None), tab.next: gr.update(interactive=False),
                **custom}
    entries = entries_for(data["choice"].task)
    rows = [[e.title, f"{e.params_m:,.0f} M" if e.params_m >= 1 else f"{e.params_m:.1f} M", e.licence,
             _badge(st, e), e.description] for e in entries]
    choices = [(f"{e.title} · {e.params_m:,.0f} M" + (" · ships with the studio" if e.packaged else ""), e.key)
               for e in entries]
    default = next((e.key for e in entries if e.default), entries[0].key if entries else None)
    return {tab.empty: gr.update(visible=False), tab.note: _task_note(data["choice"].task), tab.table: gr.update(value=pd.DataFrame(rows, columns=COLUMNS),
                                                                        visible=True),
            tab.choice: gr.update(choices=choices, value=default, visible=True), tab.next: gr.update(interactive=True),
            **custom}


TASK_NOTES = {  # why the list holds the models it holds, for the tasks that borrow another task's models
    "generation": "{title} starts from an instruction-tuned chat model: the tuned model stays a chat model, so it "
                  "can be tried in the chat playground and exported like any chat run.",
    "regression": "{title} puts a one-number head on {encoder} encoder (the models of {modality} "
                  "classification): the head learns to read your number from the encoder's features.",
}


def _task_note(task_key: str) -> str:
    try:
        task = get_task(task_key)
    except KeyError:
        return ""
    if task.models == task.key or task.kind not in TASK_NOTES:
        return ""
    modality = "image" if task.modality == "image" else "text"
    encoder = "an image" if modality == "image" else "a text"
    return notice(TASK_NOTES[task.kind].format(title=task.title, modality=modality, encoder=encoder), "info")


def _badge(st: Studio, entry) -> str:
    status = model_status(entry, st.home)
    text = MODEL_BADGES.get(status, (status, ""))[0]
    if entry.gated and status == "download":
        text += " (gated: accept the licence on the hub)"
    return text


def model_entry(model: str):
    return get_entry(model) if model else None
