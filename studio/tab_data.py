"""Step 1, the data: upload a file or a zip, or pick a bundled example; see what the studio found.

The task and column roles are detected by ``core.data.load_data`` and shown as dropdowns the user can
correct; the validation report (errors block, warnings do not), the class balance and token length charts
and one example rendered as the model will see it come from the same call.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core.catalog import default_for
from core.data import groups, inspect_columns, load_data
from core.data.examples import EXAMPLES, example_path
from core.models import ModelUnavailable, load_tokenizer, model_status, resolve_model
from core.tasks import TASK_LIST, get_task
from core.uploads import UploadError, owns_path, save_upload

from . import charts
from .context import Studio, owner_of, with_owner
from .form import DataChoice
from .views import esc, notice, problems_html

ROLES = {  # the columns a table may give each task a role for (image folders and documents have none to choose)
    "chat": ("prompt", "response", "system", "input", "messages", "conversation", "speaker", "content"),
    "text-classification": ("text", "label", groups.ROLE),
    "image-classification": (),
    "preference": ("prompt", "chosen", "rejected", "system"),
    "text-completion": (),
    "text-regression": ("text", "target", groups.ROLE),
    "image-regression": ("image", "target", groups.ROLE),
}
ROLE_HELP = {"prompt": "what the user says", "response": "what the model should answer",
             "system": "instructions for every row (optional)", "input": "extra context (optional)",
             "messages": "whole conversations (instead of prompt/response)",
             "conversation": "which conversation a row belongs to (chat logs, one turn per row)",
             "speaker": "who says the row's message (chat logs)", "content": "the row's message (chat logs)",
             "text": "the text the model reads", "label": "the class to predict",
             "chosen": "the preferred answer", "rejected": "the answer that was not preferred",
             "target": "the number to predict", "image": "the image file of each row", groups.ROLE: groups.HELP}
SLOTS = max(len(roles) for roles in ROLES.values())
TASK_NAMES = {t.key: t.title for t in TASK_LIST}
PREVIEW_ROWS = 20


@dataclass
class DataTab:
    """The data step's components."""

    status: gr.HTML
    found: gr.Group
    detection: gr.Markdown
    task: gr.Dropdown
    roles: list
    sheets: gr.Dropdown
    report: gr.HTML
    chart_row: gr.Row
    balance: gr.Plot
    lengths: gr.Plot
    details: gr.Accordion
    gallery: gr.Gallery
    preview: gr.Dataframe
    example: gr.Code
    next: gr.Button
    upload: gr.File
    validation_upload: gr.File

    def outputs(self, st: Studio) -> list:
        """Everything a data load may update (with the session and the loaded-data state)."""
        return [st.session, st.data, self.status, self.found, self.detection, self.task, *self.roles, self.sheets,
                self.report,
                self.chart_row, self.balance, self.lengths, self.details, self.gallery, self.preview, self.example,
                self.next]

    def restored(self, st: Studio) -> list:
        """What a reload updates: a load's outputs and the two upload boxes, which show the files read again."""
        return self.outputs(st) + [self.upload, self.validation_upload]


def build(st: Studio) -> DataTab:
    gr.Markdown("## Bring your data\nA table (CSV, Excel, JSONL, Parquet) of prompts and answers, of prompts with a "
                "chosen and a rejected answer, or of texts with a label or a number; images in one folder per class "
                "or with a metadata.csv of numbers (as a zip); or documents (PDF, Word, Markdown, text) to adapt a "
                "model to your domain. Or start with an example.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, elem_classes="st-card"):
            gr.Markdown("### Try an example")
            buttons = []
            for ex in EXAMPLES:
                buttons.append((ex.key, gr.Button(ex.title, size="sm", elem_id=f"example-{ex.key}")))
                gr.Markdown(f'<span class="st-muted">{esc(ex.description)}</span>')
        with gr.Column(scale=6, elem_classes="st-card"):
            gr.Markdown("### Or upload yours")
            upload = gr.File(label="A file, or a zip of image folders or documents", file_count="single",
                             height=130, elem_id="data-upload")
            gr.Markdown('<span class="st-muted">Images: zip the folder that holds one sub-folder per class, or '
                        'the images with a metadata.csv (file_name and a number per image). A '
                        'folder cannot be dropped here as it is: the page receives its files without their '
                        'sub-folder names (checked with this Gradio, 6.31), so the classes would be lost.</span>')
            validation_upload = gr.File(label="Validation data (optional): scored, never trained on",
                                        file_count="single", height=120, elem_id="data-validation")
            gr.Markdown('<span class="st-muted">In the same layout as your data. Its rows score the run instead of '
                        'a share split off your upload: give one when your data holds near copies (one item drawn '
                        'or photographed several times, one customer\'s several messages), so that the score says '
                        'how the model does on new data. For a table, choosing a group column (below, once the data '
                        'is read) keeps each customer or source on one side of the split instead.</span>')
    status = gr.HTML(notice("No data yet: pick an example or upload a file to see what the studio makes of it.",
                            "info"), elem_id="data-status")
    with gr.Group(visible=False) as found:
        detection = gr.Markdown(elem_id="data-detection")
        with gr.Row():
            task = gr.Dropdown([(t.title, t.key) for t in TASK_LIST], label="Task", interactive=True,
                               elem_id="data-task", scale=2)
            roles = [gr.Dropdown(label=f"role {i}", visible=False, interactive=True, elem_id=f"data-role-{i}")
                     for i in range(SLOTS)]
        sheets = gr.Dropdown(label="Sheets to read (the workbook's sheets differ: choose which)", multiselect=True,
                             visible=False, interactive=True, elem_id="data-sheets")
    report = gr.HTML(elem_id="data-report")
    with gr.Row(visible=False) as chart_row:
        balance = gr.Plot(label="Class balance", show_label=False, elem_id="data-balance")
        lengths = gr.Plot(label="Token lengths", show_label=False, elem_id="data-lengths")
    with gr.Accordion("Preview and one example as the model sees it", open=True, visible=False) as details:
        gallery = gr.Gallery(label="Some training images", columns=12, height=140, visible=False,
                             object_fit="contain", elem_id="data-gallery")  # whole images, not cropped to squares
        preview = gr.Dataframe(label="First rows", interactive=False, max_height=320, wrap=True)
        example = gr.Code(label="One training example, rendered", language=None, lines=8, interactive=False,
                          wrap_lines=True, elem_id="data-example")
    next_button = gr.Button("Next: choose a model →", variant="primary", interactive=False, elem_id="data-next")
    tab = DataTab(status, found, detection, task, roles, sheets, report, chart_row, balance, lengths, details,
                  gallery, preview, example, next_button, upload, validation_upload)

    pending = gr.State(None)  # what the first, instant step of a load hands to the second, slow one
    outs = tab.outputs(st)
    session, data = st.session, st.data
    # Each load is two chained steps: the first answers at once with what is about to happen (a one-time model
    # preparation takes half a minute), the second reads the data. The status line is not a target of the
    # second step's progress overlay, so the message stays readable while it works.
    load = {"fn": _load_step(st), "inputs": [pending, session], "outputs": outs, "show_progress_on": [report]}
    # new data drops the validation file chosen for the old (it must match the data's layout)
    for key, button in buttons:
        button.click(_example_step(st, key), None, [pending, status, validation_upload], queue=False).then(**load)
    upload.upload(_upload_step(st), [upload, session], [pending, status, session, validation_upload]).then(**load)
    validation_upload.upload(_validation_step(st), [validation_upload, session, data],
                             [pending, status, session]).then(**load)
    validation_upload.clear(lambda sess, d: _pending(st, _path_of(d, sess), *_asked(sess)), [session, data],
                            [pending, status], queue=False).then(**load)
    task.input(lambda t, sess, d: _pending(st, _path_of(d, sess), t, {}, validation=_validation_of(sess)),
               [task, session, data], [pending, status], queue=False).then(**load)
    for slot in roles:
        slot.input(lambda sess, d, t, *values: _pending(st, _path_of(d, sess), *_role_choice(sess, d, t, values),
                                                        validation=_validation_of(sess)),
                   [session, data, task, *roles], [pending, status], queue=False).then(**load)
    sheets.input(lambda sess, d, chosen: _pending(st, _with_sheets(_path_of(d, sess), chosen), None, {},
                                                  validation=_validation_of(sess)),
                 [session, data, sheets], [pending, status], queue=False).then(**load)
    next_button.click(lambda: gr.Tabs(selected="model"), None, st.tabs)
    return tab


# --- step one: say what is about to happen --------------------------------------------------------------
def _kind(task: str | None) -> str | None:
    """The task's kind (generation, classification, regression); None for no task or an unknown one."""
    try:
        return get_task(task).kind if task else None
    except KeyError:
        return None


def _modality(task: str | None) -> str | None:
    try:
        return get_task(task).modality if task else None
    except KeyError:
        return None


def needs_preparing(st: Studio, task: str | None) -> bool:
    """True when reading ``task`` data would first convert the packaged chat model (half a minute, once): chat,
    preference pairs and documents are all read with the chat model's tokenizer."""
    if task is not None and _kind(task) != "generation":
        return False
    try:
        return model_status(default_for("chat"), st.home) == "packaged"
    except (KeyError, OSError):
        return False


def preparing_message() -> str:
    return f"Preparing the packaged {default_for('chat').title} model for first use (one time, about 30 s)..."


def _pending(st: Studio, path: str | None, task: str | None, columns: dict[str, str],
             fallback: str | None = None, validation: str | None = None) -> tuple[dict, str]:
    """The load to run next and the status line to show meanwhile (``fallback``: the task to read the data as when
    detection does not find one, for the bundled examples; ``validation``: a separate validation file)."""
    pending = {"path": str(path) if path else None, "task": task, "columns": columns, "error": None,
               "fallback": fallback, "validation": str(validation) if validation else None}
    if not path:
        return {**pending, "error": "Nothing was uploaded. Choose a file again."}, gr.skip()
    slow = needs_preparing(st, task or fallback)
    if slow and task is None:  # an upload: one quick read (no tokenizer) tells whether it is chat data
        slow = _kind(load_data(path, limits=st.policy.data_limits()).task) == "generation"
    if slow:
        return pending, notice(preparing_message() + " Then the data is checked.", "info", "One moment.")
    return pending, notice("Reading and checking the data...", "info")


def _example_step(st: Studio, key: str):
    def handler():
        # detected like an upload (the page then says why it is that task), the example's own task as a fallback
        return (*_pending(st, str(example_path(key)), None, {}, fallback=_example_task(key)), None)
    return handler


def _example_task(key: str) -> str | None:
    return next((ex.task for ex in EXAMPLES if ex.key == key), None)


def _saved(st: Studio, files, session: dict, again: str) -> tuple[str | None, str | None]:
    """The uploaded file copied into the session's folder, or why it was refused: ``(path, None)`` or
    ``(None, message)``; ``again`` says what to choose again when nothing came."""
    files = [f for f in (files if isinstance(files, list) else [files]) if f]
    try:
        if not files:
            raise UploadError(f"Nothing was uploaded. Choose {again} again.")
        return str(save_upload(st.home, owner_of(session), files[0], Path(files[0]).name,
                               limits=st.policy.data_limits())), None
    except UploadError as exc:
        return None, str(exc)


def _refused(message: str, title: str) -> tuple[dict, str]:
    return {"path": None, "error": message}, notice(message, "error", title)


def _upload_step(st: Studio):
    def handler(files, session, request: gr.Request = None):
        # A file dropped before the page-load handler ran arrives with a session that has no owner yet: give it
        # the page's one here (and send it back), rather than asking the visitor to reload.
        session = st.own(session, request)
        path, refused = _saved(st, files, session, "a file")
        if refused:
            return (*_refused(refused, "Upload refused."), session, None)
        pending, status = _pending(st, path, None, {})
        return pending, status, session, None
    return handler


def _validation_step(st: Studio):
    """A validation file uploaded beside the data: the data is read again with it as the validation split."""
    def handler(files, session, data, request: gr.Request = None):
        session = st.own(session, request)
        path = _path_of(data, session)
        if not path:
            return (*_refused("Bring your data first (an example or an upload), then its validation file.",
                              "Not yet."), session)
        saved, refused = _saved(st, files, session, "the validation file")
        if refused:
            return (*_refused(refused, "Upload refused."), session)
        pending, status = _pending(st, path, *_asked(session), validation=saved)
        return pending, status, session
    return handler


def _asked(session: dict | None) -> tuple[str | None, dict[str, str]]:
    """The task and roles the user chose for the loaded data (None and {} where detection decided)."""
    choice = (session or {}).get("data")
    asked = choice.get("asked") if isinstance(choice, dict) and isinstance(choice.get("asked"), dict) else {}
    return asked.get("task"), dict(asked.get("columns") or {})


def _validation_of(session: dict | None) -> str | None:
    """The validation file chosen for the loaded data, if any."""
    choice = (session or {}).get("data")
    return choice.get("validation_path") if isinstance(choice, dict) else None


# --- step two: read the data ------------------------------------------------------------------------------
def _load_step(st: Studio):
    # A named function with a ``progress`` parameter: Gradio injects the progress tracker by its default.
    def handler(pending, session, request: gr.Request = None, progress=gr.Progress()):
        if not pending:
            return gr.skip()
        if pending.get("error"):
            return _empty(st, session, pending["error"])
        validation = pending.get("validation")
        if not st.may_read(owner_of(session), pending.get("path")) or (
                validation and not st.may_read(owner_of(session), validation)):
            return _empty(st, session, "This data is not available to this browser session: upload the file "
                                       "again or pick an example.")
        return _load(st, st.own(session, request), pending["path"], pending.get("task"), pending.get("columns") or {},
                     progress, pending.get("fallback"), validation)
    return handler


def restore(st: Studio, session: dict | None) -> dict:
    """After a reload, read the session's data again so every step shows what it showed before."""
    choice = (session or {}).get("data")
    path = choice.get("path") if isinstance(choice, dict) else None
    if not path or not st.may_read(owner_of(session), path) or not Path(path).exists():
        return gr.skip()
    asked = choice.get("asked") if isinstance(choice.get("asked"), dict) else choice  # sessions before "asked"
    validation = choice.get("validation_path")
    if validation and not (st.may_read(owner_of(session), validation) and Path(validation).exists()):
        validation = None
    shown = _load(st, session, path, asked.get("task"), asked.get("columns") or {}, None, validation=validation)
    if not isinstance(shown, dict):
        return shown
    # never the session itself: reading the data again can take seconds, and a Resume or Start clicked meanwhile
    # has written a new job into the session that this stale copy would overwrite
    shown = {key: value for key, value in shown.items() if key is not st.session}
    # the upload boxes show the files read again (an example's folder is no upload: its box stays empty)
    tab = st.data_tab
    uploaded = Path(path).is_file() and owns_path(st.home, owner_of(session), path)
    return {**shown, tab.upload: path if uploaded else None, tab.validation_upload: validation}


def _path_of(data: dict | None, session: dict | None) -> str | None:
    """The loaded data's path; with blocking errors there is no loaded data, so take the session's."""
    if data:
        return data["choice"].path
    choice = (session or {}).get("data")
    return choice.get("path") if isinstance(choice, dict) else None


def _with_sheets(path: str | None, sheets: list[str] | None) -> str | None:
    """The workbook path with the chosen sheets (``book.xlsx#Jan,Feb``); the whole workbook when none is chosen."""
    if not path:
        return path
    base = path.rpartition("#")[0] if "#" in Path(path).name and not Path(path).exists() else path
    return f"{base}#{','.join(sheets)}" if sheets else base


def _roles_from(task: str, values) -> dict[str, str]:
    return {role: value for role, value in zip(ROLES.get(task, ()), values) if value}


def _role_choice(session: dict | None, data: dict | None, task: str, values) -> tuple[str | None, dict[str, str]]:
    """The task and roles to read the data with after the user changed one role: what they asked for before, and
    each role now set to another column than the studio read. The roles left alone stay detection's, and keep
    saying why ("the only column of free text"), instead of turning into "as you chose"."""
    asked_task, asked = _asked(session)
    choice = data["choice"] if data else None
    read = choice.columns if choice else {}
    chosen = _roles_from(task, values)
    asked.update({role: column for role, column in chosen.items() if read.get(role) != column})
    for role in ROLES.get(task, ()):
        if role not in chosen:
            asked.pop(role, None)  # set back to "(not used)": detection decides again (an optional role stays out)
    return asked_task or (task if choice is None or task != choice.task else None), asked


def _tokenizer_for(st: Studio, task: str | None):
    """The default model's tokenizer, to count tokens and render the chat template; None if not at hand."""
    if _modality(task) != "text":
        return None
    try:
        entry = default_for(task)
        if model_status(entry, st.home) == "download":
            return None
        return load_tokenizer(resolve_model(entry.key, st.home, task=get_task(task).models))
    except (ModelUnavailable, KeyError, OSError, ValueError):
        return None


def _load(st: Studio, session: dict, path: str | None, task: str | None, columns: dict[str, str],
          progress=None, fallback: str | None = None, validation: str | None = None) -> dict:
    progress = progress or (lambda *a, **k: None)
    session = with_owner(session)  # a click racing the page load gets the session before its owner id
    if not path:
        return _empty(st, session, "Nothing was uploaded. Choose a file again.")
    limits = st.policy.data_limits()
    progress(0.1, desc="Reading the data")
    first = load_data(path, task=task, columns=columns or None, limits=limits, validation_path=validation)
    if task is None and fallback and first.task != fallback:  # an example detection misreads: read it as meant
        task = fallback
        first = load_data(path, task=task, columns=columns or None, limits=limits, validation_path=validation)
    tokenizer = None
    if _modality(first.task) == "text":
        slow = needs_preparing(st, first.task)
        progress(0.4, desc=preparing_message() if slow else "Loading the tokenizer")
        tokenizer = _tokenizer_for(st, first.task)
    prepared = first
    if tokenizer is not None:
        progress(0.7, desc="Counting tokens")
        # the user's own choices only: what detection found is found again, and its reasons stay its own
        prepared = load_data(path, task=task, columns=columns or None, tokenizer=tokenizer, limits=limits,
                             validation_path=validation)
    choice = DataChoice(path=str(path), task=prepared.task or "", columns=dict(prepared.columns or {}),
                        validation_path=validation)
    # what was found, for the other steps, and what the user asked for, so a reload reads the data as they did (the
    # found task passed back as their choice would turn detection's reasons into "as you chose")
    session = {**(session or {}), "data": {"path": choice.path, "task": choice.task, "columns": choice.columns,
                                           "asked": {"task": task, "columns": dict(columns or {})},
                                           "validation_path": validation}}
    try:
        columns = [str(c) for c in inspect_columns(path, limits)]
    except Exception:  # an unreadable file is already explained by the report; the roles just stay empty
        columns = []
    return _render(st, prepared, choice, session, columns)


def _empty(st: Studio, session: dict, message: str) -> dict:
    tab, hidden = st.data_tab, gr.update(visible=False)
    return {st.session: with_owner(session), st.data: None, tab.status: notice(message, "error"), tab.found: hidden,
            tab.detection: "", tab.task: gr.update(), **{slot: hidden for slot in tab.roles}, tab.sheets: hidden,
            tab.report: "",
            tab.chart_row: hidden, tab.balance: None, tab.lengths: None, tab.details: hidden, tab.gallery: hidden,
            tab.preview: None, tab.example: "", tab.next: gr.update(interactive=False)}


def _render(st: Studio, prepared, choice: DataChoice, session: dict, columns: list[str]) -> dict:
    tab = st.data_tab
    ok = prepared.report.ok and prepared.task is not None
    summary = prepared.summary or {}
    candidates = prepared.candidates or {}
    role_updates = _role_updates(prepared.task, prepared.columns or {}, columns, candidates)
    detection = "\n".join(f"- {esc(line)}" for line in (prepared.detection or []))
    validation = choice.validation_path
    headline = _headline(prepared, summary, Path(validation).name if validation else None)
    status = notice(headline, "ok" if ok else "error", "Ready." if ok else "Not ready yet.")
    balance = _balance_figure(prepared, summary)
    lengths = _lengths_view(prepared, summary)
    gallery = _gallery(prepared)
    return {
        st.session: session, st.data: {"choice": choice, "prepared": prepared} if ok else None,
        tab.status: status, tab.found: gr.update(visible=True), tab.detection: detection,
        tab.task: gr.update(value=prepared.task), **dict(zip(tab.roles, role_updates)),
        tab.sheets: gr.update(choices=candidates.get("sheet") or [], value=[],
                              visible=bool(candidates.get("sheet"))),
        tab.report: problems_html(prepared.report.errors, prepared.report.warnings),
        tab.chart_row: gr.update(visible=balance is not None or lengths is not None),
        tab.balance: gr.update(value=balance, visible=balance is not None),
        tab.lengths: gr.update(value=lengths, visible=lengths is not None),
        tab.details: gr.update(visible=_has_rows(prepared)),
        tab.gallery: gr.update(value=gallery, visible=bool(gallery)),
        tab.preview: _preview_update(prepared),
        tab.example: gr.update(value=_example_text(summary), visible=_modality(prepared.task) == "text"),
        tab.next: gr.update(interactive=ok),
    }


def _lengths_figure(summary: dict):
    return charts.token_length_figure(summary.get("token_lengths"), (summary.get("truncated") or {}).get("max_length"))


def _balance_figure(prepared, summary: dict):
    """The left chart: rows per class (training and validation), the spread of the number to predict, or the
    documents and their split."""
    counts = _class_counts(summary)
    if counts:
        return charts.class_balance_figure(counts, _class_counts(summary, "validation"))
    if _kind(prepared.task) == "regression" and summary.get("target"):
        return charts.target_figure(summary["target"])
    if prepared.task == "text-completion" and _has_rows(prepared):
        return charts.documents_figure(prepared.preview)
    return None


def _lengths_view(prepared, summary: dict):
    """The right chart: token lengths for text read by rows; None for images and for documents (cut into blocks)."""
    if _modality(prepared.task) != "text" or prepared.task == "text-completion":
        return None
    return _lengths_figure(summary)


def _headline(prepared, summary: dict, validation_file: str | None = None) -> str:
    if prepared.task is None and not prepared.report.ok:
        return "The data could not be used as it is: see the problems below."
    if prepared.task is None:
        return "The studio could not tell what this data is for: choose the task below."
    rows = (summary.get("rows") or {}).get("train")
    val = (summary.get("rows") or {}).get("validation")
    text = f"{TASK_NAMES.get(prepared.task, prepared.task)}"
    unit = {"preference": "pairs", "text-completion": "blocks"}.get(prepared.task, "rows")
    if prepared.task == "text-completion" and summary.get("blocks", {}).get("length"):
        unit = f"blocks of {summary['blocks']['length']} tokens"
    if rows is not None:
        text += f": {rows} training {unit}" + (f" and {val} for validation" if val is not None else "") \
            + (f" (from {validation_file})" if validation_file and val is not None else "")
    if prepared.task == "text-completion" and summary.get("documents"):
        text += f", from {len(summary['documents'])} documents"
    if prepared.labels:
        text += f", {len(prepared.labels)} classes"
    target = summary.get("target") or {}
    if _kind(prepared.task) == "regression" and isinstance(target.get("min"), (int, float)):
        text += f", '{target.get('column', 'target')}' from {target['min']:g} to {target['max']:g}"
    if not prepared.report.ok:
        text += ". Fix the problems listed below, then upload again."
    elif _modality(prepared.task) == "image":
        text += ". Check the images and their " + ("numbers" if _kind(prepared.task) == "regression" else "classes") \
            + " below, then go on."
    elif prepared.task == "text-completion":
        text += ". Check the documents and the first block below, then go on."
    else:
        text += ". Check the roles and the example below, then go on."
    return text


def _has_rows(prepared) -> bool:
    return prepared.preview is not None and len(prepared.preview) > 0


def _role_updates(task: str | None, chosen: dict[str, str], columns: list[str],
                  candidates: dict[str, list[str]] | None = None) -> list:
    """One dropdown per role of the task; a role the studio could not settle lists its candidates first."""
    roles = ROLES.get(task or "", ()) if columns else ()
    updates = []
    for i in range(SLOTS):
        if i >= len(roles):
            updates.append(gr.update(visible=False, value=None))
            continue
        role = roles[i]
        likely = [c for c in (candidates or {}).get(role, []) if c in columns and role not in chosen]
        choices = [("(not used)", "")] + [(f"{c} (could be the {role})", c) for c in likely] + \
            [(c, c) for c in columns if c not in likely]
        label = f"{role}: {ROLE_HELP.get(role, '')}" + (" (choose one)" if likely and role != groups.ROLE else "")
        updates.append(gr.update(visible=True, label=label, choices=choices, value=chosen.get(role, "")))
    return updates


def _class_counts(summary: dict, split: str = "train") -> dict[str, int]:
    if summary.get("classes"):
        return {str(c["label"]): int(c.get(split, 0)) for c in summary["classes"]}
    if split != "train":
        return {}
    counts = summary.get("class_counts") or {}
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


SHORT_COLUMNS = ("row", "target", "label", "turns", "format", "pages", "words", "split")


def _preview_update(prepared) -> dict:
    """The first rows, with the short columns narrow so long texts (a chosen and a rejected answer side by side)
    share the width instead of pushing the last column out of sight."""
    frame = _preview_frame(prepared)
    if frame is None or not len(frame.columns):
        return gr.update(value=frame)
    short = [c for c in frame.columns if c in SHORT_COLUMNS]
    if len(short) == len(frame.columns):  # nothing long (images: the file and its class): the file name is widest
        rest = 100 - 20 * (len(frame.columns) - 1)
        return gr.update(value=frame, column_widths=[f"{rest if i == 0 else 20}%" for i in range(len(frame.columns))])
    long_share = (100 - 8 * len(short)) / max(1, len(frame.columns) - len(short))
    widths = [f"{8 if c in short else long_share:.0f}%" for c in frame.columns]
    return gr.update(value=frame, column_widths=widths)


def _preview_frame(prepared) -> Any:
    frame = prepared.preview
    if frame is None:
        return None
    frame = frame.head(PREVIEW_ROWS).copy()
    if "image" in frame.columns:  # the path of the studio's own copy says nothing: the file's name, or nothing
        names = frame["image"].map(lambda v: Path(str(v)).name)  # when the row already gives it with its folder
        if "row" in frame.columns and all(str(r).endswith(n) for r, n in zip(frame["row"], names)):
            frame = frame.drop(columns="image")
        else:
            frame["image"] = names
    if "text" in frame.columns and ("target" in frame.columns or "label" in frame.columns):
        # the short column first: a long text would push what is predicted out of sight
        answer = "target" if "target" in frame.columns else "label"
        frame = frame[[c for c in frame.columns if c not in (answer, "text")] + [answer, "text"]]
    for col in frame.columns:
        frame[col] = frame[col].map(lambda v: v if isinstance(v, (int, float)) else _short(v))
    return frame


def _short(value: Any, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _example_text(summary: dict) -> str:
    """The first training example: the chat template's rendering when there is one, else its fields."""
    example = summary.get("example") or {}
    if example.get("rendered_chosen"):  # a preference pair, through the chat template
        return (f"── chosen ──\n{example['rendered_chosen']}\n\n── rejected (the same prompt) ──\n"
                f"{_answer_part(example.get('rendered_rejected', ''), example['rendered_chosen'])}")
    if "chosen" in example:
        prompt = "\n".join(f"{t['role']}: {t['content']}" for t in example.get("prompt") or [])
        return f"{prompt}\n\n── chosen ──\n{example['chosen']}\n\n── rejected ──\n{example.get('rejected', '')}"
    if example.get("rendered"):
        head = f"{example['document']}, the first block of {example.get('tokens')} tokens:\n\n" \
            if example.get("document") else ""
        return head + str(example["rendered"])
    if example.get("messages"):
        return "\n".join(f"{t['role']}: {t['content']}" for t in example["messages"])
    if "document" in example:
        return f"{example['document']}:\n\n{example.get('text', '')}"
    if "target" in example:
        return f"text: {example.get('text')}\ntarget: {example['target']:g}"
    if "text" in example:
        return f"text: {example['text']}\nlabel: {example.get('label')}"
    return "(images: see the thumbnails above)"


def _answer_part(rejected: str, chosen: str) -> str:
    """The rejected rendering from where it parts from the chosen one (the shared prompt is shown once)."""
    shared = 0
    for a, b in zip(rejected, chosen):
        if a != b:
            break
        shared += 1
    start = rejected.rfind("\n", 0, shared) + 1  # from the start of the line where they part
    return ("…" if start else "") + rejected[start:]


def _gallery(prepared) -> list:
    """A few training images with their class, or their number, for image data."""
    frame = prepared.preview
    if _modality(prepared.task) != "image" or frame is None or "image" not in frame.columns:
        return []
    caption = "target" if "target" in frame.columns else "label"
    return [(str(row["image"]), _caption(row.get(caption, ""))) for _, row in frame.head(12).iterrows()]


def _caption(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
