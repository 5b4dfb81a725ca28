"""Step 5, evaluate and try: before/after on the validation split, then a playground.

Chat runs get base and tuned answers side by side, streamed, for the same prompt and settings; classifiers
get a text box or an image upload with the labels and probabilities of both models.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from core import stack
from core.config import ConfigError, JobConfig
from core.runs import RunDir

from . import charts
from .context import Studio, owner_of
from .views import esc, notice

SKIP_SECTIONS = ("base", "tuned", "change", "deltas", "confusion", "confusion_matrix", "head")
PLAYGROUND = {"concurrency_id": "playground", "concurrency_limit": 1}
log = logging.getLogger(__name__)


@dataclass
class EvaluateTab:
    """The evaluate step's components: the report of the chosen run, and the playground."""

    run: gr.Dropdown
    shown: gr.Textbox
    verdict: gr.HTML
    report: gr.HTML
    leaderboard: gr.Dataframe
    search_note: gr.Markdown
    confusion: gr.Plot
    mistakes_table: gr.Dataframe
    mistakes_gallery: gr.Gallery
    answers: gr.Dataframe
    chat_box: gr.Group
    classify_box: gr.Group
    text_in: gr.Textbox
    image_in: gr.Image
    base_chat: gr.Chatbot
    tuned_chat: gr.Chatbot
    base_label: gr.Label
    tuned_label: gr.Label
    play_note: gr.HTML
    prompt: gr.Textbox
    batch_out: gr.File
    batch_note: gr.HTML

    def view(self) -> list:
        """What showing a run redraws."""
        return [self.verdict, self.report, self.leaderboard, self.search_note, self.confusion, self.mistakes_table, self.mistakes_gallery, self.answers, self.chat_box,
                self.classify_box, self.text_in, self.image_in, self.base_chat, self.tuned_chat, self.base_label,
                self.tuned_label]


def build(st: Studio) -> EvaluateTab:
    gr.Markdown("## Did it learn?\nThe tuned model against the model you started from, on validation rows it "
                "never trained on. Then try it yourself.")
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=[], scale=5, elem_id="eval-run", allow_custom_value=False)
        refresh = gr.Button("↻ Refresh", size="sm", scale=1, elem_id="eval-refresh")
    verdict = gr.HTML(elem_id="eval-verdict")
    report = gr.HTML(notice("No finished run yet: train one in step 4, or open a past run from step 6.", "info"),
                     elem_id="eval-report")
    with gr.Accordion("How the model was chosen (every candidate the automatic search tried)", open=False,
                      visible=True) as search_box:
        search_note = gr.Markdown(elem_id="eval-search-note")
        leaderboard = gr.Dataframe(visible=False, interactive=False, wrap=True, max_height=360,
                                   elem_id="eval-leaderboard")
    confusion = gr.Plot(visible=False, show_label=False, elem_id="eval-confusion")
    mistakes_table = gr.Dataframe(visible=False, label="Misclassified examples (most confident first)",
                                  interactive=False, wrap=True, max_height=320, elem_id="eval-mistakes")
    mistakes_gallery = gr.Gallery(visible=False, label="Misclassified images: true → predicted", columns=10,
                                  height="auto", object_fit="contain", elem_id="eval-mistakes-gallery")
    answers = gr.Dataframe(visible=False, label="Validation prompts: the base and the tuned answers",
                           interactive=False, wrap=True, max_height=420, elem_id="eval-answers")
    gr.Markdown("### Playground")
    with gr.Group(visible=False) as chat_box:
        with gr.Row():
            base_chat = gr.Chatbot(label="Base model", height=340, elem_id="chat-base")
            tuned_chat = gr.Chatbot(label="Tuned model", height=340, elem_id="chat-tuned")
        with gr.Row():
            prompt = gr.Textbox(placeholder="Ask something your data is about…", show_label=False, scale=6,
                                elem_id="chat-prompt", submit_btn=False)
            send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
            clear = gr.Button("Clear", scale=1, elem_id="chat-clear")
        with gr.Accordion("Generation settings (the same for both)", open=False):
            with gr.Row():
                max_new = gr.Slider(16, 1024, value=192, step=16, label="Max new tokens")
                temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature (0 = always the same answer)")
                top_p = gr.Slider(0.1, 1.0, value=0.9, step=0.05, label="Top-p")
            system = gr.Textbox(label="System prompt (optional)", lines=2)
    with gr.Group(visible=False) as classify_box:
        with gr.Row():
            with gr.Column():
                text_in = gr.Textbox(label="Text to classify", lines=3, visible=False, elem_id="clf-text")
                image_in = gr.Image(label="Image to classify", type="filepath", visible=False, height=220,
                                    elem_id="clf-image")
                predict = gr.Button("Classify", variant="primary", elem_id="clf-predict")
            base_label = gr.Label(label="Base model", num_top_classes=5, elem_id="clf-base")
            tuned_label = gr.Label(label="Tuned model", num_top_classes=5, elem_id="clf-tuned")
    play_note = gr.HTML(elem_id="play-note")
    gr.Markdown("### Label a whole file\nEvery row of a file (or every image of a zip) through the tuned model: "
                "the input columns are kept and the prediction added, so it goes straight back into a "
                "spreadsheet. When the file has the true labels, the accuracy is scored as `studio eval` does.")
    with gr.Row():
        batch_in = gr.File(label="A file to predict (the run's columns), or a zip of images", file_count="single",
                           height=110, elem_id="predict-upload", scale=3)
        with gr.Column(scale=1):
            batch_go = gr.Button("Predict every row", variant="primary", elem_id="predict-go")
            batch_stop = gr.Button("Stop", variant="stop", elem_id="predict-stop")
    batch_out = gr.File(label="Predictions", interactive=False, elem_id="predict-file")
    batch_note = gr.HTML(elem_id="predict-note")
    # "run path|status" of what the report shows: a run that was listed while it was still evaluating is drawn
    # again once it completes, though the dropdown's value (and so its change event) stays the same.
    shown = gr.Textbox(visible=False, elem_id="eval-shown")
    tab = EvaluateTab(run, shown, verdict, report, leaderboard, search_note, confusion, mistakes_table, mistakes_gallery, answers, chat_box,
                      classify_box, text_in, image_in, base_chat, tuned_chat, base_label, tuned_label, play_note,
                      prompt, batch_out, batch_note)
    session = st.session
    view = tab.view()
    refresh.click(lambda s, r, sh: _runs(st, s, r, sh), [session, run, shown], [run, shown, *view])
    session.change(lambda s, r, sh: _runs(st, s, r, sh, prefer_session=True), [session, run, shown],
                   [run, shown, *view])
    run.change(lambda s, r: {shown: _shown_marker(r), **_show(st, _own(st, s, r))}, [session, run], [shown, *view])
    chat_inputs = [session, run, prompt, base_chat, tuned_chat, max_new, temperature, top_p, system]
    send.click(_chat_handler(st), chat_inputs, [base_chat, tuned_chat, prompt, play_note], **PLAYGROUND)
    prompt.submit(_chat_handler(st), chat_inputs, [base_chat, tuned_chat, prompt, play_note], **PLAYGROUND)
    clear.click(lambda: {base_chat: [], tuned_chat: [], play_note: ""}, None, [base_chat, tuned_chat, play_note])
    predict.click(lambda s, r, t, i: _classify(st, _own(st, s, r), t, i), [session, run, text_in, image_in],
                  [base_label, tuned_label, play_note], **PLAYGROUND)
    batch_go.click(_batch_handler(st), [session, run, batch_in], [batch_out, batch_note], concurrency_id="predict",
                   concurrency_limit=1)
    batch_stop.click(lambda s: _stop_batch(st, s), [session], [batch_note])
    return tab


def usable_runs(st: Studio, owner: str | None) -> list[RunDir]:
    """Runs that produced a model; in public mode only the visitor's own."""
    return [r for r in st.runs_of(owner) if r.model.is_dir() and any(r.model.iterdir())]


def _own(st: Studio, session: dict | None, run_path: str | None) -> str | None:
    """The run path from the browser when this visitor may use that run, else None."""
    run = st.run_for(owner_of(session), run_path)
    return str(run.path) if run is not None else None


def _runs(st: Studio, session: dict | None, current: str | None, shown: str | None = None,
          prefer_session: bool = False) -> dict:
    """The run list, the run to select, and the report redrawn when that run or its status changed."""
    tab = st.evaluate_tab
    session = session or {}
    runs = usable_runs(st, owner_of(session))
    choices = [(_run_label(r), str(r.path)) for r in runs]
    paths = [p for _, p in choices]
    wanted = session.get("run") if prefer_session and session.get("run") in paths else current
    if wanted not in paths:
        wanted = session.get("run") if session.get("run") in paths else (paths[0] if paths else None)
    marker = _shown_marker(wanted)
    out = {tab.shown: marker}
    out[tab.run] = gr.update(choices=choices) if prefer_session and wanted == current else \
        gr.update(choices=choices, value=wanted)
    if marker != shown:
        out.update(_show(st, _own(st, session, wanted)))
    return out


def _shown_marker(run_path: str | None) -> str:
    return f"{run_path}|{RunDir(Path(run_path)).read_status().get('status')}" if run_path else ""


def _run_label(run: RunDir) -> str:
    status = run.read_status().get("status", "?")
    return f"{run.name} · {status}"


def _config(run_path: str) -> JobConfig | None:
    try:
        return JobConfig.load(RunDir(Path(run_path)).config)
    except ConfigError:
        return None


def _show(st: Studio, run_path: str | None) -> dict:
    tab = st.evaluate_tab
    hidden = gr.update(visible=False)
    config = _config(run_path) if run_path else None
    clear = {tab.base_chat: [], tab.tuned_chat: [], tab.base_label: None, tab.tuned_label: None}
    if config is None:
        return {tab.verdict: "", tab.report: notice("Choose a run above.", "info"), tab.leaderboard: hidden,
                tab.search_note: "", tab.confusion: hidden, tab.mistakes_table: hidden,
                tab.mistakes_gallery: hidden, tab.answers: hidden, tab.chat_box: hidden, tab.classify_box: hidden,
                tab.text_in: hidden, tab.image_in: hidden, **clear}
    report = RunDir(Path(run_path)).read_eval()
    is_chat = config.task == "chat"
    _preload(st, config, run_path)
    confusion, mistakes_table, mistakes_gallery = _classifier_views(report, config)
    board, note = _leaderboard_view(report)
    return {tab.verdict: _verdict_html(report), tab.report: _report_html(report, config), tab.leaderboard: board,
            tab.search_note: note, tab.confusion: confusion, tab.mistakes_table: mistakes_table,
            tab.mistakes_gallery: mistakes_gallery, tab.answers: _answers_view(report),
            tab.chat_box: gr.update(visible=is_chat), tab.classify_box: gr.update(visible=not is_chat),
            tab.text_in: gr.update(visible=config.task == "text-classification", value=""),
            tab.image_in: gr.update(visible=config.task == "image-classification", value=None), **clear}


VERDICT_KINDS = {"tuned-wins": "ok", "tie": "warn", "baseline-wins": "error"}


def _verdict_html(report: dict | None) -> str:
    """Whether fine-tuning paid, in words: the tuned model against the strongest baseline, and what to try."""
    verdict = (report or {}).get("verdict")
    if not isinstance(verdict, dict) or not verdict.get("message"):
        return ""
    tips = "".join(f"<li>{esc(t)}</li>" for t in verdict.get("try") or [])
    kind = VERDICT_KINDS.get(verdict.get("status"), "info")
    title = {"ok": "Fine-tuning paid.", "warn": "No clear winner.", "error": "A simple baseline does better."}.get(
        kind, "Verdict.")
    body = esc(verdict["message"]) + (f'<br><span class="st-fix">Try:</span><ul>{tips}</ul>' if tips else "")
    return f'<div class="st-notice st-{kind}" id="eval-verdict-box"><strong>{esc(title)}</strong> {body}</div>'


def _leaderboard_view(report: dict | None) -> tuple:
    """The automatic search's candidates as a table (the winner first, starred) and the sentence on why."""
    search = (report or {}).get("search")
    if not isinstance(search, dict) or not search.get("candidates"):
        return gr.update(visible=False, value=None), ""
    winner = search.get("winner")
    def pct(value) -> str:
        return f"{value:.1%}" if isinstance(value, (int, float)) else ""

    def order(c: dict) -> tuple:  # the winner first, then the best scores, then what was not scored
        score = c.get("cv_accuracy")
        return (c.get("name") != winner, not isinstance(score, (int, float)), -(score or 0.0))

    rows = [{"": "★" if c.get("name") == winner else "", "candidate": c.get("name", ""),
             "cross-validated": pct(c.get("cv_accuracy")), "held-out check": pct(c.get("holdout_accuracy")),
             "seconds": c.get("seconds", ""), "status": c.get("status", ""), "note": c.get("note", "")}
            for c in sorted(search["candidates"], key=order)]
    budget = search.get("budget_s")
    used = search.get("used_s")
    timing = f" It used {used:.0f} s of its {budget:.0f} s budget." if budget and used is not None else ""
    note = f"{esc(search.get('why', ''))}{timing} Scored by {esc(search.get('metric', 'cross-validation'))}."
    return gr.update(visible=True, value=pd.DataFrame(rows)), note


def _report_html(report: dict | None, config: JobConfig) -> str:
    if not report:
        return notice("This run has no evaluation (it was stopped before, or had no validation rows). "
                      "The playground below still works.", "warn")
    if report.get("message") and not report.get("tuned"):
        return notice(report["message"], "warn")
    base, tuned = report.get("base") or {}, report.get("tuned") or {}
    others = {k: v for k, v in report.items() if isinstance(v, dict) and k not in SKIP_SECTIONS
              and any(isinstance(v.get(m), (int, float)) for m in tuned)}
    titles = {b.get("key"): b.get("title") for b in report.get("baselines") or [] if isinstance(b, dict)}
    rows = []
    for metric, value in tuned.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        before = base.get(metric)
        lower_better = "loss" in metric or "perplexity" in metric
        rows.append(_metric_row(metric, before, value, lower_better, [o.get(metric) for o in others.values()]))
    header = "".join(f"<th>{esc(titles.get(k) or k.replace('_', ' '))}</th>" for k in others)
    rows_html = "".join(rows)
    n = next((report[k] for k in ("rows", "examples") if isinstance(report.get(k), int)), None)
    caption = f"On {n} validation rows." if n else "On the validation split."
    return (f'<div class="st-card"><table class="st-metrics"><thead><tr><th>metric</th><th>base</th><th>tuned</th>'
            f'<th>change vs base</th>{header}</tr></thead><tbody>{rows_html}</tbody></table>'
            f'<p class="st-muted">{esc(caption)} Green is better.</p></div>')


def _metric_row(metric: str, before: Any, after: float, lower_better: bool, others: list) -> str:
    def fmt(v):
        if not isinstance(v, (int, float)):
            return "–"
        return f"{v:.1%}" if metric in ("accuracy", "macro_f1") else f"{v:.3f}"

    change, cls = "–", ""
    if isinstance(before, (int, float)):
        delta = after - before
        better = delta < 0 if lower_better else delta > 0
        cls = "st-better" if better else ("st-worse" if delta else "")
        change = (f"{delta * 100:+.1f} pts" if metric in ("accuracy", "macro_f1")
                  else f"{delta:+.3f}" + (f" ({delta / before:+.0%})" if before else ""))
    other_cells = "".join(f"<td>{fmt(o)}</td>" for o in others)
    return (f"<tr><td>{esc(metric.replace('_', ' '))}</td><td>{fmt(before)}</td><td><strong>{fmt(after)}</strong>"
            f'</td><td class="{cls}">{change}</td>{other_cells}</tr>')


def _classifier_views(report: dict | None, config: JobConfig) -> list:
    hidden = gr.update(visible=False)
    if not report or config.task == "chat":
        return [hidden, hidden, hidden]
    confusion = report.get("confusion_matrix") or report.get("confusion") or {}
    figure = gr.update(value=charts.confusion_figure(confusion.get("matrix"), confusion.get("labels")),
                       visible=bool(confusion.get("matrix")))
    wrong = report.get("mistakes") or report.get("misclassified") or []
    if config.task == "image-classification":
        items = [(m["item"], f"{m['true']} → {m['predicted']} ({m.get('confidence', 0):.0%})") for m in wrong
                 if Path(str(m.get("item", ""))).is_file()]
        return [figure, hidden, gr.update(value=items, visible=bool(items))]
    frame = pd.DataFrame([{"text": m.get("item"), "true": m.get("true"), "predicted": m.get("predicted"),
                           "confidence": round(float(m.get("confidence", 0)), 3)} for m in wrong])
    return [figure, gr.update(value=frame, visible=bool(wrong)), hidden]


def _answers_view(report: dict | None):
    examples = (report or {}).get("examples") or []
    if not isinstance(examples, list) or not examples:
        return gr.update(visible=False)
    frame = pd.DataFrame([{k: e.get(k, "") for k in ("prompt", "reference", "base", "tuned")} for e in examples])
    return gr.update(value=frame, visible=True)


# --- playground ------------------------------------------------------------------------------------
def _chat_model(st: Studio, run_path: str):
    stack.load()
    from core.inference.chat import ChatModel

    return st.models.get(("chat", run_path), lambda: ChatModel.from_run(Path(run_path), st.home))


def _classifier(st: Studio, run_path: str):
    stack.load()
    from core.inference.classify import Classifier

    return st.models.get(("classify", run_path), lambda: Classifier.from_run(Path(run_path), st.home))


def _preload(st: Studio, config: JobConfig, run_path: str) -> None:
    """Load the shown run's model for the playground in the background, so the first answer does not wait for it.

    The model cache's lock makes a Send that comes meanwhile wait for this load instead of loading it twice.
    """
    if not RunDir(Path(run_path)).model.is_dir():
        return
    load = _chat_model if config.task == "chat" else _classifier

    def run() -> None:
        try:
            load(st, run_path)
        except Exception:  # the playground says what is wrong when it is used
            log.debug("preloading %s failed", run_path, exc_info=True)

    threading.Thread(target=run, name="studio-preload", daemon=True).start()


def _chat_handler(st: Studio):
    def handler(session, run_path, prompt, base_hist, tuned_hist, max_new, temperature, top_p, system,
                progress=gr.Progress()) -> Iterator[dict]:
        tab = st.evaluate_tab
        run_path = _own(st, session, run_path)
        prompt = (prompt or "").strip()
        if not run_path or not prompt:
            yield {tab.play_note: notice("Choose a run and type a message first.", "info")}
            return
        progress(0, desc="Loading the model")
        try:
            model = _chat_model(st, run_path)
        except Exception as exc:  # a missing or broken model folder: say so instead of a red toast
            yield {tab.play_note: notice(f"Could not load this run's model: {exc}", "error")}
            return
        settings = {"max_new_tokens": int(max_new), "temperature": float(temperature), "top_p": float(top_p),
                    "system": (system or "").strip() or None}
        base_hist = list(base_hist or []) + [{"role": "user", "content": prompt}]
        tuned_hist = list(tuned_hist or []) + [{"role": "user", "content": prompt}]
        # Base first, then tuned: the two share weights (the adapter is toggled), so they cannot run at once.
        for use_tuned, hist in ((False, base_hist), (True, tuned_hist)):
            history = [dict(m) for m in hist]
            hist.append({"role": "assistant", "content": ""})
            for text in model.stream(history, use_tuned=use_tuned, **settings):  # the whole answer so far
                hist[-1] = {"role": "assistant", "content": text}
                yield {tab.base_chat: base_hist, tab.tuned_chat: tuned_hist, tab.prompt: "", tab.play_note: ""}
        yield {tab.base_chat: base_hist, tab.tuned_chat: tuned_hist, tab.prompt: "", tab.play_note: ""}
    return handler


def _classify(st: Studio, run_path: str | None, text: str | None, image: str | None) -> dict:
    tab = st.evaluate_tab
    config = _config(run_path) if run_path else None
    if config is None:
        return {tab.base_label: None, tab.tuned_label: None, tab.play_note: notice("Choose a run first.", "info")}
    item = image if config.task == "image-classification" else (text or "").strip()
    if not item:
        what = "an image" if config.task == "image-classification" else "some text"
        return {tab.base_label: None, tab.tuned_label: None, tab.play_note: notice(f"Give {what} to classify.", "info")}
    try:
        model = _classifier(st, run_path)
        base = dict(model.predict(item, which="base"))
        tuned = dict(model.predict(item, which="tuned"))
    except Exception as exc:  # a broken model folder or an unreadable image: say what happened
        return {tab.base_label: None, tab.tuned_label: None, tab.play_note: notice(f"Could not classify: {exc}",
                                                                                   "error")}
    return {tab.base_label: base, tab.tuned_label: tuned, tab.play_note: ""}


# --- batch prediction --------------------------------------------------------------------------------
def _batch_handler(st: Studio):
    def handler(session, run_path, upload, progress=gr.Progress()) -> dict:
        tab = st.evaluate_tab
        files, note = predict_upload(st, session, _own(st, session, run_path), upload, progress)
        return {tab.batch_out: files, tab.batch_note: note}
    return handler


def predict_upload(st: Studio, session: dict | None, run_path: str | None, upload, progress) -> tuple:
    """(download, note) for predicting every row of an uploaded file with the chosen run; the output goes to the
    visitor's export folder, never beside the input."""
    from core.predict import PredictError, predict_file
    from core.uploads import UploadError, save_upload

    owner = owner_of(session)
    if not run_path:
        return None, notice("Choose a run above first.", "info")
    if not upload:
        return None, notice("Upload a file to predict first.", "info")
    stop = st.batch_stops.setdefault(owner or "", threading.Event())
    stop.clear()
    try:
        path = save_upload(st.home, owner or "local", upload, Path(str(upload)).name,
                           limits=st.policy.data_limits())
        out = st.export_dir(owner) / f"{Path(run_path).name}-{path.stem}-predictions.csv"
        result = predict_file(Path(run_path), path, out, st.home, overwrite=True, stop=stop,
                              limits=st.policy.data_limits(),
                              progress=lambda message, fraction=None: progress(fraction or 0, desc=message))
    except (PredictError, UploadError, ConfigError, OSError) as exc:
        return None, notice(str(exc), "error", "Cannot predict:")
    kind = "warn" if result.stopped else "ok"
    return str(result.out), notice(result.summary(), kind)


def _stop_batch(st: Studio, session: dict | None) -> str:
    event = st.batch_stops.get(owner_of(session) or "")
    if event is None:
        return notice("Nothing is being predicted.", "info")
    event.set()
    return notice("Stopping after the current rows; what is done is kept in the file.", "warn")
