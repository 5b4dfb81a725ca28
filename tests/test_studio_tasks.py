"""The page for every task, without a browser: each step asks the task's traits (``core.tasks``), so preference
pairs, documents and regressions take the right path: their examples are detected and previewed, the model step
lists the models they tune, the settings their strategies, the charts their metrics, and the evaluation step shows
what their eval.json holds (a regression run is trained for real on a tiny model)."""
import html
import json
import math

import pytest

pytest.importorskip("gradio")

from core.config import DataConfig, JobConfig, TrainConfig  # noqa: E402
from core.data.examples import EXAMPLES, example_path  # noqa: E402
from core.engine.runner import create_run, run_job  # noqa: E402
from core.hardware import detect_hardware  # noqa: E402
from core.jobs import JobManager  # noqa: E402
from core.public import PublicPolicy  # noqa: E402
from studio import charts, tab_data, tab_evaluate, tab_model, tab_settings, tab_train  # noqa: E402
from studio.app import build_app, start_session  # noqa: E402
from studio.views import headline_metric  # noqa: E402
from tests.test_jobs import fake_trainer  # noqa: E402


def _studio(home, public=False):
    manager = JobManager(home, run_fn=fake_trainer(steps=2))
    return build_app(home, manager, policy=PublicPolicy(enabled=public)).studio


def _example(key):
    return next(e for e in EXAMPLES if e.key == key)


def _shown(update) -> bool:
    return bool(update.get("visible", True)) if isinstance(update, dict) else update is not None


# --- step 1: the bundled examples ---------------------------------------------------------------------------

@pytest.mark.parametrize("key, expect", [
    ("debian-sizes", ["Text regression", "640 training rows", "'size_log10_kb' from 0.954 to 5.353"]),
    ("shape-counts", ["Image regression", "240 training rows", "'circles' from 1 to 12", "images and their numbers"]),
])
def test_regression_examples_are_detected_and_show_their_numbers(home, key, expect):
    st = _studio(home)
    tab = st.data_tab
    # the page detects the example as it would an upload; the example's own task is only the fallback
    out = tab_data._load(st, start_session(None), str(example_path(key)), None, {}, fallback=None)
    data = out[st.data]
    assert data is not None and data["choice"].task == _example(key).task
    assert not any("as you chose" in line for line in data["prepared"].detection)
    status = html.unescape(out[tab.status])
    for words in expect:
        assert words in status, status
    # the left chart is the spread of the number, not a class balance
    figure = out[tab.balance]["value"]
    assert figure.layout.title.text.startswith(f"'{data['choice'].columns['target']}'")
    assert figure.data[0].type == "bar" and sum(figure.data[0].y) == len(data["prepared"].train)
    preview = out[tab.preview]["value"]
    # the number before a long text (it would push the number out of sight)
    # (an image row already names its file: the path of the studio's copy is not shown)
    assert list(preview.columns) == (["row", "target", "text"] if key == "debian-sizes" else ["row", "target"])
    if key != "debian-sizes":  # only short columns: the table's own widths, not 8 % each with the rest left empty
        assert out[tab.preview]["column_widths"] == ["80%", "20%"]
    if key == "debian-sizes":
        assert _shown(out[tab.lengths]) and "target: 1.342" in out[tab.example]["value"]
        shown = [u["label"].split(":")[0] for u in (out[s] for s in tab.roles) if u.get("visible")]
        assert shown == ["text", "target", "group"]
    else:  # images: thumbnails captioned with their number, no token chart and no text example
        gallery = out[tab.gallery]["value"]
        assert gallery and all(caption.isdigit() for _, caption in gallery)
        assert not out[tab.lengths]["visible"] and not out[tab.example]["visible"]


@pytest.mark.parametrize("key", ["kettlebird-preferences", "kettlebird-manuals"])
def test_preference_and_documents_examples_are_read_with_the_chat_models_tokenizer(packaged_home, key):
    st = _studio(packaged_home)
    tab = st.data_tab
    assert tab_data.needs_preparing(st, "preference") is False  # SmolLM2 is already converted in this home
    out = tab_data._load(st, start_session(None), str(example_path(key)), None, {})
    data = out[st.data]
    assert data is not None and data["choice"].task == _example(key).task
    status, example = html.unescape(out[tab.status]), out[tab.example]["value"]
    if key == "kettlebird-preferences":
        assert "198 training pairs and 48 for validation" in status
        # the pair through SmolLM2's chat template: the prompt once, then where the rejected answer parts from it
        assert "── chosen ──" in example and "<|im_start|>assistant" in example and "1-year warranty" in example
        assert _shown(out[tab.lengths]) and out[tab.balance]["value"] is None
        roles = [u["label"].split(":")[0] for u in (out[s] for s in tab.roles) if u.get("visible")]
        assert roles == ["prompt", "chosen", "rejected", "system"]
    else:
        assert "blocks of 256 tokens" in status and "from 10 documents" in status and "documents" in status
        assert example.startswith("care-and-descaling.md, the first block of")
        documents = out[tab.balance]["value"]  # which documents are trained on and which are held out
        assert {trace.name for trace in documents.data} == {"trained on", "held out (perplexity)"}
        assert not out[tab.lengths]["visible"]
        assert not any(u.get("visible") for u in (out[s] for s in tab.roles))


# --- steps 2 and 3: the task's models and strategies -----------------------------------------------------------

def _data(key):
    from core.data import load_data
    from studio.form import DataChoice

    prepared = load_data(str(example_path(key)))
    return {"choice": DataChoice(str(example_path(key)), prepared.task, dict(prepared.columns)), "prepared": prepared}


@pytest.mark.parametrize("key, model, strategies, default, note", [
    ("kettlebird-preferences", "smollm2-135m-instruct", ["dpo", "orpo"], "dpo", "chat model"),
    ("kettlebird-manuals", "smollm2-135m-instruct", ["qlora", "lora", "full"], "lora", "chat model"),
    ("debian-sizes", "minilm-l6", ["auto", "head-only", "lora", "full", "dora", "rslora", "ia3"], "auto",
     "a text encoder"),
    ("shape-counts", "efficientnet-lite0", ["auto", "head-only", "lora", "full", "dora", "rslora", "ia3"], "auto",
     "an image encoder"),
])
def test_the_model_and_settings_steps_follow_the_tasks_traits(home, key, model, strategies, default, note):
    st = _studio(home)
    data = _data(key)
    view = tab_model._catalog_view(st, st.model_tab, data)
    choice = view[st.model_tab.choice]
    assert choice["value"] == model and model in [k for _, k in choice["choices"]]
    assert note in view[st.model_tab.note]
    got = {st.data: data, st.form.model_choice: model, st.model_tab.custom: "", st.settings_tab.current: None}
    out = tab_settings._strategies(st, got)[st.settings_tab.strategy]
    assert [k for _, k in out["choices"]] == strategies and out["value"] == default
    help_text = tab_settings._strategy_help("head-only", data)
    assert ("one-number head" in help_text) == (key in ("debian-sizes", "shape-counts"))


# --- step 4: the charts ---------------------------------------------------------------------------------------

def test_training_charts_show_each_tasks_metric():
    regression = [{"type": "eval", "step": 3, "mae": 0.6, "rmse": 0.8, "r2": 0.1, "eval_loss": 0.8}]
    assert charts.eval_figure(regression).layout.title.text.startswith("Validation error")
    pairs = [{"type": "eval", "step": 2, "reward_accuracy": 0.75, "eval_loss": 0.6}]
    assert charts.eval_figure(pairs).layout.title.text == "Held-out pairs ordered right"
    documents = [{"type": "eval", "step": 1, "eval_loss": math.log(20.0)}]
    assert charts.perplexity_figure(documents).data[0].y[0] == pytest.approx(20.0)
    search = [{"type": "candidate", "name": "worse", "cv_mae": 0.9}, {"type": "candidate", "name": "best",
                                                                       "cv_mae": 0.5}]
    figure = charts.candidates_figure(search)
    assert "MAE" in figure.layout.title.text and list(figure.data[0].y) == ["worse", "best"]  # the best on top
    ridge = [{"type": "train", "step": i + 1, "loss": loss, "learning_rate": l2}
             for i, (l2, loss) in enumerate([(3.0, 0.99), (0.3, 0.95), (0.03, 0.97)])]
    penalty = charts.penalty_figure(ridge)
    assert list(penalty.data[0].x) == [0.03, 0.3, 3.0] and penalty.layout.xaxis.type == "log"


def test_a_ridge_head_has_no_learning_rate_curve(home):
    st = _studio(home)
    tab = st.train_tab
    events = [{"type": "train", "step": 1, "loss": 0.9, "learning_rate": 1.0}]
    ridge = tab_train._curves(tab, JobConfig(task="text-regression", model="minilm-l6", strategy="head-only"), events)
    assert ridge[tab.loss].layout.title.text.startswith("Ridge penalty")
    assert "no learning rate" in ridge[tab.lr].layout.annotations[0].text
    chat = tab_train._curves(tab, JobConfig(task="chat", model="smollm2-135m-instruct", strategy="lora"), events)
    assert chat[tab.lr].layout.title.text == "Learning rate"


# --- step 5: the evaluation ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """A real text regression run: a tiny BERT's frozen features and a ridge head, on the Debian sizes."""
    from core.home import Home
    from tests.test_hardening_support import tiny_bert

    root = tmp_path_factory.mktemp("regression")
    home = Home.resolve(root / "home")
    config = JobConfig(task="text-regression", model=str(tiny_bert(root / "tiny-bert")), strategy="head-only",
                       data=DataConfig(path=str(example_path("debian-sizes"))), train=TrainConfig(preset="quick"))
    return home, run_job(config, home, [])


def test_a_regression_run_shows_its_errors_plot_and_predicts_numbers(regression_run):
    home, run = regression_run
    st = _studio(home)
    tab = st.evaluate_tab
    report = json.loads(run.eval.read_text())
    out = tab_evaluate._show(st, str(run.path))
    text = html.unescape(out[tab.report])
    for words in ("MAE (mean absolute error)", "RMSE", "R²", "Base model + ridge head (trained)", "Training mean",
                  "TF-IDF + ridge regression", "units of 'size_log10_kb'",
                  f"{report['tuned']['mae']:.4g}", f"{report['base']['mae']:.4g}"):
        assert words in text, words
    scatter = out[tab.scatter]
    assert scatter["visible"] and len(scatter["value"].data[1].x) == report["examples"]
    worst = out[tab.mistakes_table]
    assert worst["visible"] and list(worst["value"].columns) == ["true", "predicted", "error", "text"]
    assert worst["value"]["error"].abs().is_monotonic_decreasing
    assert not out[tab.confusion]["visible"] and not out[tab.chat_box]["visible"]
    assert out[tab.base_value]["visible"] and not out[tab.base_label]["visible"]
    assert out[tab.predict]["value"] == "Predict" and "size_log10_kb" in out[tab.tuned_value]["label"]
    assert "MAE" in headline_metric(report)

    answer = tab_evaluate._classify(st, str(run.path), "fonts-noto-extra: Noto fonts, extra weights", None)
    base, tuned = answer[tab.base_value], answer[tab.tuned_value]
    assert isinstance(tuned, float) and isinstance(base, float) and answer[tab.play_note] == ""
    low, high = min(report["points"]["true"]), max(report["points"]["true"])
    assert low - 3 < tuned < high + 3  # a ridge head on standardised targets answers in the target's units
    empty = tab_evaluate._classify(st, str(run.path), "  ", None)
    assert "Give some text to predict a number for" in empty[tab.play_note] and empty[tab.tuned_value] is None


def _finished_run(home, task, report):
    run = create_run(JobConfig(task=task, model="smollm2-135m-instruct", strategy="lora" if task != "preference"
                               else "dpo"), home)
    run.model.mkdir(parents=True, exist_ok=True)
    (run.model / "adapter_config.json").write_text("{}")
    run.eval.write_text(json.dumps(report))
    run.write_status("completed", "Finished.")
    return run


PROBE = {"questions": 36, "base": {"right": 20, "answer_loss": 6.4}, "tuned": {"right": 19, "answer_loss": 6.7},
         "kept": 0.95, "loss_change": 0.05, "message": "Kept 95% of its general answers: 19 of 36 general-knowledge "
                                                         "questions right after tuning, 20 before.",
         "changed_answers": []}


def test_preference_and_documents_runs_say_their_metrics_in_words_and_open_the_chat_playground(home):
    st = _studio(home)
    tab = st.evaluate_tab
    pairs = _finished_run(home, "preference", {
        "task": "preference", "pairs": 48, "rows": 48, "objective": "dpo", "beta": 0.1,
        "base": {"preference_accuracy": 0.5, "reward_margin": -0.4, "logp_chosen": -80.0, "logp_rejected": -79.6},
        "tuned": {"preference_accuracy": 0.875, "reward_margin": 6.2, "logp_chosen": -70.0, "logp_rejected": -76.2,
                  "implicit_reward_margin": 0.66, "implicit_reward_accuracy": 0.9},
        "examples": [{"prompt": "How long is the warranty?", "chosen": "3 years.", "rejected": "1 year.",
                      "base": "It depends.", "tuned": "3 years."}],
        "pairs_detail": {"still_wrong": [], "now_right": [], "still_wrong_count": 6, "now_right_count": 18},
        "probe": PROBE})
    out = tab_evaluate._show(st, str(pairs.path))
    text = html.unescape(out[tab.report])
    assert "in 88% of them (the base model: 50%)" in text and "from -0.40 to +6.20 nats" in text
    assert "18 pairs are now ordered right" in text and "Kept 95% of its general answers" in text
    assert "pairs where the chosen answer is preferred" in text and "87.5%" in text and "+37.5 pts" in text
    assert out[tab.chat_box]["visible"] and not out[tab.classify_box]["visible"]
    assert list(out[tab.answers]["value"].columns) == ["prompt", "chosen answer", "base model", "tuned model"]
    assert headline_metric(json.loads(pairs.eval.read_text())) == "chosen preferred 88% (base 50%)"

    documents = _finished_run(home, "text-completion", {
        "task": "text-completion", "blocks": 7, "rows": 7, "block_length": 256,
        "base": {"eval_loss": 3.33, "perplexity": 28.07}, "tuned": {"eval_loss": 3.19, "perplexity": 24.38},
        "examples": [{"prompt": "Brewing guide", "reference": " pick the temperature", "base": " and", "tuned": " so"}],
        "probe": PROBE, "next_step": "To teach it to answer questions, start a chat run."})
    out = tab_evaluate._show(st, str(documents.path))
    text = html.unescape(out[tab.report])
    assert "went from 28.07 to 24.38 (-13%)" in text and "On 7 held-out blocks of 256 tokens" in text
    assert "start a chat run" in text and "General knowledge (forgetting check)" in text
    assert out[tab.chat_box]["visible"] and "documents" in out[tab.prompt]["placeholder"]
    assert "how the document goes on" in out[tab.answers]["value"].columns
    assert headline_metric(json.loads(documents.eval.read_text())) == "perplexity 24.38 (base 28.07)"


def test_the_playground_for_a_generation_run_is_not_the_classifier(home):
    st = _studio(home)
    run = _finished_run(home, "text-completion", {"task": "text-completion", "message": "No held-out text."})
    note = tab_evaluate._classify(st, str(run.path), "some text", None)[st.evaluate_tab.play_note]
    assert "chat playground" in note


def test_a_run_of_an_unknown_task_reads_as_chat():
    config = JobConfig(task="chat", model="m", strategy="lora")
    config.task = "summarisation"  # a run folder from a newer studio
    assert tab_evaluate._task(config).key == "chat"


def test_every_bundled_example_is_detected_as_its_task():
    from core.data import load_data

    for example in EXAMPLES:
        assert load_data(str(example_path(example.key))).task == example.task, example.key

