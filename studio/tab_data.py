"""Step 1, the data: upload a file, a folder or a zip, or pick a bundled example; see what the studio found.

The task and column roles are detected by ``core.data.load_data`` and shown as dropdowns the user can
correct; the validation report (errors block, warnings do not), the class balance and token length charts
and one example rendered as the model will see it come from the same call.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr

from core.catalog import default_for
from core.config import TASKS
from core.data import inspect_columns, load_data
from core.data.examples import EXAMPLES, example_path
from core.data.limits import DataLimits
from core.models import ModelUnavailable, load_tokenizer, model_status, resolve_model

from . import charts
from .context import Studio
from .form import DataChoice
from .views import esc, notice, problems_html

ROLES = {
    "chat": ("prompt", "response", "system", "input", "messages"),
    "text-classification": ("text", "label"),
    "image-classification": (),
}
ROLE_HELP = {"prompt": "what the user says", "response": "what the model should answer",
             "system": "instructions for every row (optional)", "input": "extra context (optional)",
             "messages": "whole conversations (instead of prompt/response)", "text": "the text to classify",
             "label": "the class to predict"}
SLOTS = 5
TASK_NAMES = {"chat": "Chat (teach answers)", "text-classification": "Text classification",
              "image-classification": "Image classification"}
PREVIEW_ROWS = 20


def build(st: Studio) -> None:
    gr.Markdown("## Bring your data\nA table (CSV, Excel, JSONL, Parquet) of prompts and answers or texts and "
                "labels, or images in one folder per class (a folder or a zip). Or start with an example.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, elem_classes="st-card"):
            gr.Markdown("### Try an example")
            buttons = []
            for ex in EXAMPLES:
                buttons.append((ex.key, gr.Button(ex.title, size="sm", elem_id=f"example-{ex.key}")))
                gr.Markdown(f'<span class="st-muted">{esc(ex.description)}</span>')
        with gr.Column(scale=6, elem_classes="st-card"):
            gr.Markdown("### Or upload yours")
            upload = gr.File(label="A file, or a zip of image folders", file_count="single", height=130,
                             elem_id="data-upload")
            folder = gr.UploadButton("Upload a folder of images", file_count="directory", size="sm",
                                     elem_id="data-folder")
    status = gr.HTML(notice("No data yet: pick an example or upload a file to see what the studio makes of it.",
                            "info"), elem_id="data-status")
    with gr.Group(visible=False) as found:
        detection = gr.Markdown(elem_id="data-detection")
        with gr.Row():
            task = gr.Dropdown([(TASK_NAMES[t], t) for t in TASKS], label="Task", interactive=True,
                               elem_id="data-task", scale=2)
            roles = [gr.Dropdown(label=f"role {i}", visible=False, interactive=True, elem_id=f"data-role-{i}")
                     for i in range(SLOTS)]
    report = gr.HTML(elem_id="data-report")
    with gr.Row(visible=False) as chart_row:
        balance = gr.Plot(label="Class balance", show_label=False)
        lengths = gr.Plot(label="Token lengths", show_label=False)
    with gr.Accordion("Preview and one example as the model sees it", open=True, visible=False) as details:
        gallery = gr.Gallery(label="Some training images", columns=12, height=140, visible=False,
                             elem_id="data-gallery")
        preview = gr.Dataframe(label="First rows", interactive=False, max_height=320, wrap=True)
        example = gr.Code(label="One training example, rendered", language=None, lines=8, interactive=False,
                          wrap_lines=True)
    next_button = gr.Button("Next: choose a model →", variant="primary", interactive=False, elem_id="data-next")

    st.shared.update(data_status=status, data_found=found, data_detection=detection, data_task=task,
                     data_roles=roles, data_report=report, data_chart_row=chart_row, data_balance=balance,
                     data_lengths=lengths, data_details=details, data_gallery=gallery, data_preview=preview, data_example=example,
                     data_next=next_button)
    outs = outputs(st)
    session, data = st["session"], st["data"]
    for key, button in buttons:
        button.click(_on_example(st, key), [session], outs)
    upload.upload(_on_upload(st, as_folder=False), [upload, session], outs)
    folder.upload(_on_upload(st, as_folder=True), [folder, session], outs)
    task.input(_on_task(st), [task, session, data], outs)
    for slot in roles:
        slot.input(_on_roles(st), [session, data, task, *roles], outs)
    next_button.click(lambda: gr.Tabs(selected="model"), None, st["tabs"])


# Handlers are named functions with a ``progress`` parameter: Gradio injects the progress tracker by position.
def _on_example(st: Studio, key: str):
    def handler(session, progress=gr.Progress()):
        return _load(st, session, str(example_path(key)), None, {}, progress)
    return handler


def _on_upload(st: Studio, as_folder: bool):
    def handler(files, session, progress=gr.Progress()):
        files = files if isinstance(files, list) else [files]
        return _load(st, session, _keep_upload(st, session, files, as_folder), None, {}, progress)
    return handler


def _on_task(st: Studio):
    def handler(task, session, data, progress=gr.Progress()):
        return _load(st, session, _path_of(data, session), task, {}, progress)
    return handler


def _on_roles(st: Studio):
    def handler(session, data, task, r0, r1, r2, r3, r4, progress=gr.Progress()):
        roles = _roles_from(task, (r0, r1, r2, r3, r4))
        return _load(st, session, _path_of(data, session), task, roles, progress)
    return handler


def outputs(st: Studio) -> list:
    """The components a data load updates, in the order ``_load`` returns them."""
    s = st.shared
    return [s["session"], s["data"], s["data_status"], s["data_found"], s["data_detection"], s["data_task"],
            *s["data_roles"], s["data_report"], s["data_chart_row"], s["data_balance"], s["data_lengths"],
            s["data_details"], s["data_gallery"], s["data_preview"], s["data_example"], s["data_next"]]


def restore(st: Studio, session: dict | None) -> list:
    """After a reload, read the session's data again so every step shows what it showed before."""
    choice = (session or {}).get("data")
    if not choice or not Path(choice.get("path", "")).exists():
        return [gr.skip()] * len(outputs(st))
    return _load(st, session, choice["path"], choice.get("task"), choice.get("columns") or {}, None)


def _path_of(data: dict | None, session: dict | None) -> str | None:
    """The loaded data's path; with blocking errors there is no loaded data, so take the session's."""
    if data:
        return data["choice"].path
    return ((session or {}).get("data") or {}).get("path")


def _roles_from(task: str, values) -> dict[str, str]:
    return {role: value for role, value in zip(ROLES.get(task, ()), values) if value}


def _keep_upload(st: Studio, session: dict, files, as_folder: bool = False) -> str | None:
    """Copy an upload out of Gradio's temporary cache into the session's folder in the studio home."""
    files = [f for f in (files or []) if f]
    if not files:
        return None
    owner = (session or {}).get("owner") or "anonymous"
    dest = st.home.uploads / owner / time.strftime("%Y%m%d-%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    if not as_folder:
        source = Path(files[0])
        return str(shutil.copy2(source, dest / source.name))
    for f in files:
        source = Path(f)
        # A folder upload keeps one level of sub-folders (the class names) when the browser sends them.
        parts = Path(getattr(f, "orig_name", None) or source.name).parts[-2:]
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return str(dest)


def _tokenizer_for(st: Studio, task: str | None):
    """The default model's tokenizer, to count tokens and render the chat template; None if not at hand."""
    if task not in ("chat", "text-classification"):
        return None
    try:
        entry = default_for(task)
        if model_status(entry, st.home) == "download":
            return None
        return load_tokenizer(resolve_model(entry.key, st.home, task=task))
    except (ModelUnavailable, KeyError, OSError, ValueError):
        return None


def _load(st: Studio, session: dict, path: str | None, task: str | None, columns: dict[str, str],
          progress=None) -> list:
    progress = progress or (lambda *a, **k: None)
    if not path:
        return _empty(st, session, "Nothing was uploaded. Choose a file again.")
    limits = DataLimits.public() if st.public else None
    progress(0.1, desc="Reading the data")
    first = load_data(path, task=task, columns=columns or None, limits=limits)
    tokenizer = None
    if first.task in ("chat", "text-classification"):
        progress(0.4, desc="Loading the tokenizer (the first time converts the packaged model, ~20 s)")
        tokenizer = _tokenizer_for(st, first.task)
    prepared = first
    if tokenizer is not None:
        progress(0.7, desc="Counting tokens")
        prepared = load_data(path, task=first.task, columns=columns or first.columns or None,
                             tokenizer=tokenizer, limits=limits)
    choice = DataChoice(path=str(path), task=prepared.task or "", columns=dict(prepared.columns or {}))
    session = {**(session or {}), "data": {"path": choice.path, "task": choice.task, "columns": choice.columns}}
    try:
        columns = [str(c) for c in inspect_columns(path, limits)]
    except Exception:  # an unreadable file is already explained by the report; the roles just stay empty
        columns = []
    return _render(prepared, choice, session, columns)


def _empty(st: Studio, session: dict, message: str) -> list:
    hidden = gr.update(visible=False)
    return [session, None, notice(message, "error"), hidden, "", gr.update(), *[hidden] * SLOTS, "", hidden,
            None, None, hidden, hidden, None, "", gr.update(interactive=False)]


def _render(prepared, choice: DataChoice, session: dict, columns: list[str]) -> list:
    ok = prepared.report.ok and prepared.task is not None
    summary = prepared.summary or {}
    role_updates = _role_updates(prepared.task, prepared.columns or {}, columns)
    detection = "\n".join(f"- {esc(line)}" for line in (prepared.detection or []))
    headline = _headline(prepared, summary)
    status = notice(headline, "ok" if ok else "error", "Ready." if ok else "Not ready yet.")
    counts = _class_counts(summary)
    is_text = prepared.task in ("chat", "text-classification")
    show_charts = bool(counts) or is_text
    balance = charts.class_balance_figure(counts) if counts else None
    token_stats = summary.get("token_lengths")
    data_value = {"choice": choice, "prepared": prepared} if ok else None
    return [
        session, data_value, status, gr.update(visible=True), detection,
        gr.update(value=prepared.task), *role_updates,
        problems_html(prepared.report.errors, prepared.report.warnings),
        gr.update(visible=show_charts),
        gr.update(value=balance, visible=balance is not None),
        charts.token_length_figure(token_stats, (summary.get("truncated") or {}).get("max_length")) if is_text else charts.empty_figure(
            "Length in tokens", "Images have no tokens."),
        gr.update(visible=_has_rows(prepared)),
        gr.update(value=_gallery(prepared), visible=bool(_gallery(prepared))),
        _preview_frame(prepared),
        gr.update(value=_example_text(summary), visible=prepared.task != "image-classification"),
        gr.update(interactive=ok),
    ]


def _headline(prepared, summary: dict) -> str:
    if prepared.task is None and not prepared.report.ok:
        return "The data could not be used as it is: see the problems below."
    if prepared.task is None:
        return "The studio could not tell what this data is for: choose the task below."
    rows = (summary.get("rows") or {}).get("train")
    val = (summary.get("rows") or {}).get("validation")
    text = f"{TASK_NAMES.get(prepared.task, prepared.task)}"
    if rows is not None:
        text += f": {rows} training rows" + (f" and {val} for validation" if val is not None else "")
    if prepared.labels:
        text += f", {len(prepared.labels)} classes"
    if not prepared.report.ok:
        text += ". Fix the problems listed below, then upload again."
    else:
        text += ". Check the roles and the example below, then go on."
    return text


def _has_rows(prepared) -> bool:
    return prepared.preview is not None and len(prepared.preview) > 0


def _role_updates(task: str | None, chosen: dict[str, str], columns: list[str]) -> list:
    roles = ROLES.get(task or "", ()) if columns else ()
    updates = []
    for i in range(SLOTS):
        if i < len(roles):
            role = roles[i]
            updates.append(gr.update(visible=True, label=f"{role}: {ROLE_HELP.get(role, '')}",
                                     choices=[("(not used)", "")] + [(c, c) for c in columns],
                                     value=chosen.get(role, "")))
        else:
            updates.append(gr.update(visible=False, value=None))
    return updates


def _class_counts(summary: dict) -> dict[str, int]:
    if summary.get("classes"):
        return {str(c["label"]): int(c.get("train", 0)) for c in summary["classes"]}
    counts = summary.get("class_counts") or {}
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


def _preview_frame(prepared) -> Any:
    frame = prepared.preview
    if frame is None:
        return None
    frame = frame.head(PREVIEW_ROWS).copy()
    for col in frame.columns:
        frame[col] = frame[col].map(lambda v: v if isinstance(v, (int, float)) else _short(v))
    return frame


def _short(value: Any, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _example_text(summary: dict) -> str:
    """The first training example: the chat template's rendering when there is one, else its fields."""
    example = summary.get("example") or {}
    if example.get("rendered"):
        return str(example["rendered"])
    if example.get("messages"):
        return "\n".join(f"{t['role']}: {t['content']}" for t in example["messages"])
    if "text" in example:
        return f"text: {example['text']}\nlabel: {example.get('label')}"
    return "(images: see the thumbnails above)"


def _gallery(prepared) -> list:
    """A few training images with their class, for image data."""
    frame = prepared.preview
    if prepared.task != "image-classification" or frame is None or "image" not in frame.columns:
        return []
    return [(str(row["image"]), str(row.get("label", ""))) for _, row in frame.head(12).iterrows()]
