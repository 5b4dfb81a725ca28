"""Step 5, evaluate and try: before/after on the validation split, then a playground.

What a run shows follows its task's traits (``core.tasks``): generation runs (chat, preference pairs, documents)
get base and tuned answers side by side, streamed, for the same prompt and settings, and their metrics in words;
classifiers get a text box or an image upload with the labels and probabilities of both models; regressions get
MAE, RMSE and R² against the baselines, a predicted-against-true plot, their worst errors and a number for a typed
text or an uploaded image.
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
from core.tasks import Task, get_task

from . import charts
from .context import Studio, owner_of
from .views import esc, notice

SKIP_SECTIONS = ("base", "tuned", "change", "deltas", "confusion", "confusion_matrix", "head", "probe", "target")
# How each metric reads: its name on the page, whether higher (1) or lower (-1) is better (0: neither), and whether
# it is a share shown in percent. Metrics not listed read as their key, higher is better unless "loss" is in it.
METRICS = {
    "accuracy": ("accuracy", 1, True), "macro_f1": ("macro F1", 1, True),
    "mae": ("MAE (mean absolute error)", -1, False), "rmse": ("RMSE (root mean square error)", -1, False),
    "r2": ("R² (1 is perfect, 0 is the mean)", 1, False),
    "preference_accuracy": ("pairs where the chosen answer is preferred", 1, True),
    "reward_margin": ("reward margin (chosen − rejected log-prob, nats)", 1, False),
    "logp_chosen": ("mean log-prob of the chosen answer", 0, False),
    "logp_rejected": ("mean log-prob of the rejected answer", 0, False),
    "implicit_reward_margin": ("DPO implicit reward margin", 1, False),
    "implicit_reward_accuracy": ("pairs the tuning moved towards the chosen answer", 1, True),
    "perplexity": ("perplexity on held-out text", -1, False), "eval_loss": ("validation loss", -1, False),
}
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
    scatter: gr.Plot
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
    base_value: gr.Number
    tuned_value: gr.Number
    predict: gr.Button
    play_note: gr.HTML
    prompt: gr.Textbox
    batch_out: gr.File
    batch_note: gr.HTML
    search_box: Any = None  # the accordion around the leaderboard: shown only for runs that searched

    def view(self) -> list:
        """What showing a run redraws."""
        return [self.verdict, self.report, self.leaderboard, self.search_note, self.confusion, self.scatter,
                self.mistakes_table, self.mistakes_gallery, self.answers, self.chat_box, self.classify_box,
                self.text_in, self.image_in, self.base_chat, self.tuned_chat, self.base_label, self.tuned_label,
                self.base_value, self.tuned_value, self.predict, self.prompt, self.search_box]


def build(st: Studio) -> EvaluateTab:
    gr.Markdown("## Did it learn?\nThe tuned model against the model you started from, scored on rows kept out of "
                "its training. Then try it yourself.")
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=[], scale=5, elem_id="eval-run", allow_custom_value=False)
        refresh = gr.Button("↻ Refresh", size="sm", scale=1, elem_id="eval-refresh")
    verdict = gr.HTML(elem_id="eval-verdict")
    report = gr.HTML(notice("No finished run yet: train one in step 4, or open a past run from step 6.", "info"),
                     elem_id="eval-report")
    with gr.Accordion("How the model was chosen (every candidate the automatic search tried)", open=False,
                      visible=False) as search_box:
        search_note = gr.Markdown(elem_id="eval-search-note")
        leaderboard = gr.Dataframe(visible=False, interactive=False, wrap=True, max_height=360,
                                   elem_id="eval-leaderboard")
    confusion = gr.Plot(visible=False, show_label=False, elem_id="eval-confusion")
    scatter = gr.Plot(visible=False, show_label=False, elem_id="eval-scatter")
    mistakes_table = gr.Dataframe(visible=False, label="Misclassified examples (most confident first)",
                                  interactive=False, wrap=True, max_height=320, elem_id="eval-mistakes")
    mistakes_gallery = gr.Gallery(visible=False, label="Misclassified images: true → predicted", columns=8,
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
            base_value = gr.Number(label="Base model", interactive=False, visible=False, elem_id="reg-base")
            tuned_value = gr.Number(label="Tuned model", interactive=False, visible=False, elem_id="reg-tuned")
    play_note = gr.HTML(elem_id="play-note")
    gr.Markdown("### Predict a whole file\nEvery row of a file (or every image of a zip) through the tuned model: "
                "the input columns are kept and the prediction added, so it goes straight back into a "
                "spreadsheet. When the file has the true labels or numbers, the accuracy (or the mean absolute "
                "error) is scored as `studio eval` does.")
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
    tab = EvaluateTab(run, shown, verdict, report, leaderboard, search_note, confusion, scatter, mistakes_table,
                      mistakes_gallery, answers, chat_box, classify_box, text_in, image_in, base_chat, tuned_chat,
                      base_label, tuned_label, base_value, tuned_value, predict, play_note, prompt, batch_out,
                      batch_note, search_box)
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
                  [base_label, tuned_label, base_value, tuned_value, play_note], **PLAYGROUND)
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


def _task(config: JobConfig) -> Task:
    """The run's task; a run of a task this studio does not know reads as chat (its files say what it is)."""
    try:
        return get_task(config.task)
    except KeyError:
        return get_task("chat")


def _show(st: Studio, run_path: str | None) -> dict:
    tab = st.evaluate_tab
    hidden = gr.update(visible=False)
    config = _config(run_path) if run_path else None
    clear = {tab.base_chat: [], tab.tuned_chat: [], tab.base_label: None, tab.tuned_label: None,
             tab.base_value: None, tab.tuned_value: None}
    if config is None:
        return {tab.verdict: "", tab.report: notice("Choose a run above.", "info"), tab.leaderboard: hidden,
                tab.search_note: "", tab.confusion: hidden, tab.scatter: hidden, tab.mistakes_table: hidden,
                tab.mistakes_gallery: hidden, tab.answers: hidden, tab.chat_box: hidden, tab.classify_box: hidden,
                tab.text_in: hidden, tab.image_in: hidden, tab.predict: gr.update(), tab.prompt: gr.update(),
                tab.search_box: hidden, **clear}
    report = RunDir(Path(run_path)).read_eval()
    task = _task(config)
    _preload(st, config, run_path)
    confusion, scatter, mistakes_table, mistakes_gallery = _error_views(report, task)
    board, note = _leaderboard_view(report)
    return {tab.verdict: _verdict_html(report), tab.report: _report_html(report, config), tab.leaderboard: board,
            tab.search_note: note, tab.search_box: gr.update(visible=bool(note)), tab.confusion: confusion, tab.scatter: scatter, tab.mistakes_table: mistakes_table,
            tab.mistakes_gallery: mistakes_gallery, tab.answers: _answers_view(report, task), **clear,
            **_playground(tab, task, _target_name(report, config))}


PROMPT_HINTS = {"text-completion": "Ask something your documents are about…",
                "preference": "Ask something like your pairs' prompts…"}


def _target_name(report: dict | None, config: JobConfig) -> str:
    """The name of the number a regression predicts (its column), for labels and axes."""
    target = (report or {}).get("target")
    name = target.get("column") if isinstance(target, dict) else None
    return str(name or (config.data.columns or {}).get("target") or "value")


def _playground(tab: EvaluateTab, task: Task, target: str = "value") -> dict:
    """The playground that fits the task: chat for generation, labels for classifiers, numbers for regressions."""
    chat = task.kind == "generation"
    numbers = task.kind == "regression"
    image = task.modality == "image"
    verb = "predict a number for" if numbers else "classify"
    return {tab.chat_box: gr.update(visible=chat), tab.classify_box: gr.update(visible=not chat),
            tab.prompt: gr.update(placeholder=PROMPT_HINTS.get(task.key, "Ask something your data is about…")),
            tab.text_in: gr.update(visible=not chat and not image, value="", label=f"Text to {verb}"),
            tab.image_in: gr.update(visible=not chat and image, value=None, label=f"Image to {verb}"),
            tab.predict: gr.update(value="Predict" if numbers else "Classify"),
            tab.base_label: gr.update(visible=not numbers, value=None),
            tab.tuned_label: gr.update(visible=not numbers, value=None),
            tab.base_value: gr.update(visible=numbers, value=None,
                                      label=f"Base model + ridge head: predicted {target}"),
            tab.tuned_value: gr.update(visible=numbers, value=None, label=f"Tuned model: predicted {target}")}



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
    if kind == "ok" and verdict.get("within_chance"):  # ahead, but by less than chance moves on these rows
        kind, title = "info", "Ahead, within chance."
    body = esc(verdict["message"]) + (f'<br><span class="st-fix">Try:</span><ul>{tips}</ul>' if tips else "")
    return f'<div class="st-notice st-{kind}" id="eval-verdict-box"><strong>{esc(title)}</strong> {body}</div>'


def _leaderboard_view(report: dict | None) -> tuple:
    """The automatic search's candidates as a table (the winner first, starred) and the sentence on why."""
    search = (report or {}).get("search")
    if not isinstance(search, dict) or not search.get("candidates"):
        return gr.update(visible=False, value=None), ""
    winner = search.get("winner")
    score = str(search.get("score") or "accuracy")  # the candidates' cv_<score> and holdout_<score>
    higher = bool(search.get("higher_is_better", True))
    share = METRICS.get(score, (score, 1, False))[2]

    def shown(value) -> str:
        if not isinstance(value, (int, float)):
            return ""
        return f"{value:.1%}" if share else f"{value:.4g}"

    def order(c: dict) -> tuple:  # the winner first, then the best scores, then what was not scored
        value = c.get(f"cv_{score}")
        known = isinstance(value, (int, float))
        return (c.get("name") != winner, not known, -(value or 0.0) if higher else (value or 0.0))

    name = "MAE" if score == "mae" else score
    rows = [{"": "★" if c.get("name") == winner else "", "candidate": c.get("name", ""),
             f"cross-validated {name}": shown(c.get(f"cv_{score}")),
             f"held-out check ({name})": shown(c.get(f"holdout_{score}")),
             "seconds": c.get("seconds", ""), "status": c.get("status", ""), "note": c.get("note", "")}
            for c in sorted(search["candidates"], key=order)]
    budget = search.get("budget_s")
    used = search.get("used_s")
    timing = f" It used {used:.0f} s of its {budget:.0f} s budget." if budget and used is not None else ""
    note = f"{esc(search.get('why', ''))}{timing} Scored by {esc(search.get('metric', 'cross-validation'))}."
    if search.get("final_rows"):
        note += (f" After the report, the saved model was fitted again on all {int(search['final_rows'])} rows "
                 "(validation included), so it has learnt from every row; the scores above are from before.")
    elif search.get("rows") and search.get("retrained_on_all_rows", True):
        note += (f" The saved model learnt from the {int(search['rows'])} training rows; the validation rows were "
                 "kept out of it.")
    return gr.update(visible=True, value=pd.DataFrame(rows)), note


def _report_html(report: dict | None, config: JobConfig) -> str:
    if not report:
        return notice("This run has no evaluation (it was stopped before, or had no validation rows). "
                      "The playground below still works.", "warn")
    if report.get("message") and not report.get("tuned"):
        return notice(report["message"], "warn")
    task = _task(config)
    base, tuned = report.get("base") or {}, report.get("tuned") or {}
    others = {k: v for k, v in report.items() if isinstance(v, dict) and k not in SKIP_SECTIONS
              and any(isinstance(v.get(m), (int, float)) for m in tuned)}
    titles = {b.get("key"): b.get("title") for b in report.get("baselines") or [] if isinstance(b, dict)}
    rows = []
    for metric, value in tuned.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        rows.append(_metric_row(metric, base.get(metric), value, [o.get(metric) for o in others.values()]))
    header = "".join(f"<th>{esc(titles.get(k) or k.replace('_', ' '))}</th>" for k in others)
    base_title = titles.get("base") or "base"
    rows_html = "".join(rows)
    return (f'<div class="st-card">{_words_html(report, task)}<table class="st-metrics"><thead><tr><th>metric</th>'
            f'<th>{esc(base_title)}</th><th>tuned</th><th>change vs base</th>{header}</tr></thead>'
            f'<tbody>{rows_html}</tbody></table><p class="st-muted">{esc(_caption(report, task, config))} '
            f'Green is better.</p></div>')


def _caption(report: dict, task: Task, config: JobConfig) -> str:
    """Which rows the figures come from and, for a regression, the units they are in."""
    if task.key == "text-completion":
        blocks, length = report.get("blocks"), report.get("block_length")
        size = f" of {length} tokens" if length else ""
        return f"On {blocks} held-out blocks{size} from documents the model never trained on." if blocks else \
            "On the held-out documents."
    if task.key == "preference":
        return f"On {report.get('pairs')} held-out pairs." if report.get("pairs") else "On the held-out pairs."
    n = next((report[k] for k in ("rows", "examples") if isinstance(report.get(k), int)), None)
    grouped = (report.get("grouped") or {}).get("groups")
    caption = (f"On {n} validation rows" + (f" from {grouped} groups, each whole" if grouped else "") + ".") if n \
        else "On the validation split."
    if report.get("final_fit"):  # the automatic search's head learnt from these rows after they scored it
        caption += " Scored before the saved model was fitted again on every row, these included."
    if task.kind == "regression":
        caption += (f" MAE and RMSE are in the units of '{_target_name(report, config)}'; the base column is a "
                    "ridge head fitted on the untouched model's features, since a model never trained for a number "
                    "cannot answer with one.")
    return caption


def _metric_row(metric: str, before: Any, after: float, others: list) -> str:
    name, direction, share = METRICS.get(metric, (metric.replace("_", " "), -1 if "loss" in metric else 1, False))

    def fmt(v):
        if not isinstance(v, (int, float)):
            return "–"
        if share:
            return f"{v:.1%}"
        return f"{v:.4g}" if metric in ("mae", "rmse", "perplexity") else f"{v:.3f}".replace("-0.000", "0.000")

    change, cls = "–", ""
    if isinstance(before, (int, float)):
        delta = after - before
        if direction:
            better = delta * direction > 0
            cls = "st-better" if better else ("st-worse" if delta else "")
        change = (f"{delta * 100:+.1f} pts" if share
                  else f"{delta:+.3f}" if metric == "r2"
                  else f"{delta:+.3g}" + (f" ({delta / before:+.0%})" if before > 0 and after > 0 else ""))
    other_cells = "".join(f"<td>{fmt(o)}</td>" for o in others)
    return (f"<tr><td>{esc(name)}</td><td>{fmt(before)}</td><td><strong>{fmt(after)}</strong>"
            f'</td><td class="{cls}">{change}</td>{other_cells}</tr>')


def _words_html(report: dict, task: Task) -> str:
    """What a preference or documents run's figures mean, in sentences, and what the general-knowledge probe saw."""
    base, tuned = report.get("base") or {}, report.get("tuned") or {}
    lines = []
    if task.key == "preference" and _numbers(base, tuned, "preference_accuracy", "reward_margin"):
        lines.append(
            f"On {report.get('pairs', 'the')} held-out pairs the tuned model gives the chosen answer a higher "
            f"probability than the rejected one in {tuned['preference_accuracy']:.0%} of them (the base model: "
            f"{base['preference_accuracy']:.0%}). The average gap between them went from "
            f"{base['reward_margin']:+.2f} to {tuned['reward_margin']:+.2f} nats: "
            + ("it learnt the preference." if tuned["reward_margin"] > base["reward_margin"] else
               "it did not move towards the chosen answers."))
        details = report.get("pairs_detail") or {}
        if isinstance(details.get("still_wrong_count"), int):
            lines.append(f"{details.get('now_right_count', 0)} pairs are now ordered right that the base got wrong; "
                         f"{details['still_wrong_count']} are still ordered wrong.")
    if task.key == "text-completion" and _numbers(base, tuned, "perplexity"):
        b, t = base["perplexity"], tuned["perplexity"]
        change = (t - b) / b if b else 0.0
        lines.append(
            f"Perplexity on documents the model never trained on went from {b:.2f} to {t:.2f} ({change:+.0%}): "
            + ("the domain's text is less surprising to it now: it has picked up the language of your documents."
               if t < b else "it did not get better at the held-out text: more documents or epochs may help."))
        if report.get("next_step"):
            lines.append(str(report["next_step"]))
    probe = report.get("probe")
    if isinstance(probe, dict) and probe.get("message"):
        lines.append(f"General knowledge (forgetting check): {probe['message']}")
    if not lines:
        return ""
    return "".join(f'<p class="st-words">{esc(line)}</p>' for line in lines)


def _numbers(base: dict, tuned: dict, *keys: str) -> bool:
    return all(isinstance(d.get(k), (int, float)) for d in (base, tuned) for k in keys)


def _error_views(report: dict | None, task: Task) -> list:
    """(confusion matrix, predicted-against-true plot, mistakes table, mistakes gallery) for the run's task."""
    hidden = gr.update(visible=False)
    if not report or task.kind == "generation":
        return [hidden, hidden, hidden, hidden]
    if task.kind == "regression":
        return [hidden, *_regression_views(report, task)]
    confusion = report.get("confusion_matrix") or report.get("confusion") or {}
    figure = gr.update(value=charts.confusion_figure(confusion.get("matrix"), confusion.get("labels")),
                       visible=bool(confusion.get("matrix")))
    wrong = report.get("mistakes") or report.get("misclassified") or []
    label = "Misclassified examples (most confident first)"
    if task.modality == "image":
        items = [(m["item"], f"{m['true']} → {m['predicted']} ({m.get('confidence', 0):.0%})") for m in wrong
                 if Path(str(m.get("item", ""))).is_file()]
        return [figure, hidden, hidden, gr.update(value=items, visible=bool(items),
                                                  label="Misclassified images: true → predicted")]
    frame = pd.DataFrame([{"text": m.get("item"), "true": m.get("true"), "predicted": m.get("predicted"),
                           "confidence": round(float(m.get("confidence", 0)), 3)} for m in wrong])
    return [figure, hidden, gr.update(value=frame, visible=bool(wrong), label=label), hidden]


def _regression_views(report: dict, task: Task) -> list:
    """The predicted-against-true plot and the validation rows predicted worst (a table, or images)."""
    info = report.get("target") or {}
    target = info.get("column") or "value"
    plot = gr.update(value=charts.scatter_figure(report.get("points"), str(target)),
                     visible=bool((report.get("points") or {}).get("true")))
    worst = [w for w in report.get("worst") or [] if isinstance(w, dict)]
    label = f"Largest errors on the validation rows (tuned model; true → predicted {target})"
    if isinstance(info.get("min"), (int, float)) and isinstance(info.get("max"), (int, float)):
        label += f"; answers are kept within the training values, {info['min']:g} to {info['max']:g}"
    hidden = gr.update(visible=False)
    if task.modality == "image":
        items = [(w["item"], f"{w.get('true'):g} → {w.get('predicted'):.3g}") for w in worst
                 if Path(str(w.get("item", ""))).is_file() and isinstance(w.get("true"), (int, float))
                 and isinstance(w.get("predicted"), (int, float))]
        return [plot, hidden, gr.update(value=items, visible=bool(items), label=label)]
    frame = pd.DataFrame([{"true": w.get("true"), "predicted": w.get("predicted"), "error": w.get("error"),
                           "text": w.get("item")} for w in worst])  # the numbers first: a long text hides them
    widths = ["9%", "9%", "9%", "73%"]
    return [plot, gr.update(value=frame, visible=bool(worst), label=label, column_widths=widths), hidden]


ANSWER_COLUMNS = {  # task -> (eval.json key, column title) of the held-out examples' table
    "preference": (("prompt", "prompt"), ("chosen", "chosen answer"), ("base", "base model"), ("tuned", "tuned model")),
    "text-completion": (("prompt", "held-out passage"), ("reference", "how the document goes on"),
                        ("base", "base model goes on"), ("tuned", "tuned model goes on")),
}
ANSWER_LABELS = {"preference": "Held-out prompts: the chosen answer, and what the base and the tuned model say",
                 "text-completion": "Held-out passages: the document's own words, and how each model continues"}


def _answers_view(report: dict | None, task: Task):
    examples = (report or {}).get("examples") or []
    if not isinstance(examples, list) or not examples:
        return gr.update(visible=False)
    columns = ANSWER_COLUMNS.get(task.key, (("prompt", "prompt"), ("reference", "reference"), ("base", "base"),
                                            ("tuned", "tuned")))
    frame = pd.DataFrame([{title: e.get(key, "") for key, title in columns} for e in examples])
    label = ANSWER_LABELS.get(task.key, "Validation prompts: the base and the tuned answers")
    return gr.update(value=frame, visible=True, label=label, column_widths=["25%"] * 4)


# --- playground ------------------------------------------------------------------------------------
def _chat_model(st: Studio, run_path: str):
    stack.load()
    from core.inference.chat import ChatModel

    return st.models.get(("chat", run_path), lambda: ChatModel.from_run(Path(run_path), st.home))


def _classifier(st: Studio, run_path: str):
    stack.load()
    from core.inference.classify import Classifier

    return st.models.get(("classify", run_path), lambda: Classifier.from_run(Path(run_path), st.home))


def _regressor(st: Studio, run_path: str):
    stack.load()
    from core.inference.regress import Regressor

    return st.models.get(("regress", run_path), lambda: Regressor.from_run(Path(run_path), st.home))


LOADERS = {"generation": _chat_model, "classification": _classifier, "regression": _regressor}


def _preload(st: Studio, config: JobConfig, run_path: str) -> None:
    """Load the shown run's model for the playground in the background, so the first answer does not wait for it.

    The model cache's lock makes a Send that comes meanwhile wait for this load instead of loading it twice.
    """
    if not RunDir(Path(run_path)).model.is_dir():
        return
    load = LOADERS[_task(config).kind]

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
    """Both models' answers for a typed text or an uploaded image: class probabilities, or a number."""
    tab = st.evaluate_tab
    empty = {tab.base_label: None, tab.tuned_label: None, tab.base_value: None, tab.tuned_value: None}
    config = _config(run_path) if run_path else None
    if config is None:
        return {**empty, tab.play_note: notice("Choose a run first.", "info")}
    task = _task(config)
    numbers = task.kind == "regression"
    verb = "predict a number for" if numbers else "classify"
    if task.kind == "generation":
        return {**empty, tab.play_note: notice("This run answers in the chat playground.", "info")}
    item = image if task.modality == "image" else (text or "").strip()
    if not item:
        what = "an image" if task.modality == "image" else "some text"
        return {**empty, tab.play_note: notice(f"Give {what} to {verb}.", "info")}
    try:
        model = (_regressor if numbers else _classifier)(st, run_path)
        if numbers:
            out = {tab.base_value: _rounded(model.predict(item, which="base")),
                   tab.tuned_value: _rounded(model.predict(item, which="tuned"))}
        else:
            out = {tab.base_label: dict(model.predict(item, which="base")),
                   tab.tuned_label: dict(model.predict(item, which="tuned"))}
    except Exception as exc:  # a broken model folder or an unreadable image: say what happened
        return {**empty, tab.play_note: notice(f"Could not {verb.split(' ')[0]}: {exc}", "error")}
    return {**empty, **out, tab.play_note: ""}


def _rounded(value: float) -> float:
    """Four significant digits: more would claim a precision no model of this size has."""
    return float(f"{float(value):.4g}")


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
