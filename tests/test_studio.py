"""The UI's pure parts and its public-demo wiring, without a browser: widget values -> JobConfig, charts from
events, status renderings, and what a visitor may upload, read, run and download when the demo is public."""
from pathlib import Path

import pytest

pytest.importorskip("gradio")

import gradio as gr  # noqa: E402

from core.config import ConfigError, JobConfig, TrainConfig  # noqa: E402
from core.data import load_data  # noqa: E402
from core.data.examples import example_path  # noqa: E402
from core.hardware import detect_hardware  # noqa: E402
from core.jobs import JobManager  # noqa: E402
from core.public import PublicPolicy  # noqa: E402
from core.tasks import get_task  # noqa: E402
from core.uploads import session_export_dir, session_upload_dir  # noqa: E402
from studio import charts, tab_data, tab_evaluate, tab_export, tab_settings, tab_train  # noqa: E402
from studio.app import build_app, start_session  # noqa: E402
from studio.context import Studio, new_owner, owner_of  # noqa: E402
from studio.form import ADVANCED, INITIAL, DataChoice, JobValues, build_config, command_for  # noqa: E402
from studio.views import STATUS_WORDS, progress_html, status_html  # noqa: E402
from tests.test_jobs import fake_trainer  # noqa: E402

TICKETS = example_path("support-tickets")


@pytest.fixture(scope="module")
def hardware():
    return detect_hardware()


def _studio(home, hardware, public=True, steps=400) -> Studio:
    """The studio of a built page (its tabs' components are the handlers' inputs and outputs)."""
    manager = JobManager(home, run_fn=fake_trainer(steps=steps))
    return build_app(home, manager, policy=PublicPolicy(enabled=public)).studio


def _advanced(**values) -> dict:
    return {key: values.get(key, INITIAL[key]) for key in ADVANCED}  # what the page shows before any typing


def _got(st: Studio, data, model, custom="", strategy="lora", preset="quick", name="", validation=0,
         numbers=None, switches=None, session=None) -> dict:
    """What gradio hands a handler whose inputs are the job's widgets: {component: value}."""
    form = st.form
    got = {form.data: data, form.model_choice: model, form.model_custom: custom, form.strategy: strategy,
           form.preset: preset, form.name: name, form.validation: validation,
           **{form.numbers[k]: v for k, v in (numbers or _advanced()).items()},
           **{form.switches[k]: v for k, v in (switches or {}).items()}}
    if session is not None:
        got[st.session] = session
    return got


def _data(path=TICKETS) -> dict:
    prepared = load_data(str(path))
    choice = DataChoice(path=str(path), task=prepared.task, columns=dict(prepared.columns))
    return {"choice": choice, "prepared": prepared}


# --- widgets -> JobConfig ---------------------------------------------------------------------------------
def test_build_config_turns_typed_widgets_into_a_job():
    choice = DataChoice(path="/data/t.csv", task="text-classification", columns={"text": "body", "label": "dept"})
    config = build_config(JobValues(choice, " minilm-l6 ", "lora", "quick", "  ", 0.2,
                                    _advanced(epochs=3, learning_rate=0.002, batch_size=16.0, max_minutes=1.5, seed=0)))
    t = config.train
    assert (config.task, config.model, config.strategy, config.name) == ("text-classification", "minilm-l6",
                                                                          "lora", None)
    assert config.data.columns == {"text": "body", "label": "dept"} and config.data.validation_fraction == 0.2
    assert (t.preset, t.epochs, t.learning_rate, t.batch_size, t.max_minutes) == ("quick", 3.0, 0.002, 16, 1.5)
    assert isinstance(t.batch_size, int)
    # 0 leaves a field to the preset (a number box cannot be empty) ...
    assert t.max_steps is None and t.grad_accum is None and t.lora_r is None and t.eval_every is None
    # ... except the seed, where 0 is a seed, and a given seed is kept
    assert t.seed == 0
    assert build_config(JobValues(choice, "minilm-l6", "lora", "quick", "run-1", 0, _advanced(seed=7))).train.seed == 7
    # ... and the general replay share, which the page shows at its default and where 0 turns replay off
    assert INITIAL["replay"] == TrainConfig().replay == t.replay > 0
    chat = DataChoice(path="/data/c.csv", task="chat", columns={})
    assert build_config(JobValues(chat, "smollm2-135m-instruct", "lora", "quick", "", 0,
                                  _advanced(replay=0))).train.replay == 0
    assert build_config(JobValues(choice, "minilm-l6", "lora", "quick", "run-1", 0, _advanced())) \
        .data.validation_fraction is None
    choice.columns["text"] = "changed"
    assert config.data.columns["text"] == "body"  # the job does not share the UI's dict


def test_the_precision_and_compile_switches_reach_the_job():
    choice = DataChoice(path="/data/chat.csv", task="chat", columns={})
    def job(**switches):
        return build_config(JobValues(choice, "smollm2-135m-instruct", "lora", "quick", None, 0, _advanced(),
                                      switches))

    auto = job(precision="auto", compile="auto")
    assert auto.train.precision is None and auto.train.compile is None  # the presets decide
    assert job().train.compile is None
    forced = job(precision="fp32", compile="off")
    assert forced.train.precision == "fp32" and forced.train.compile is False
    on = job(precision="bf16", compile="on")
    assert on.train.precision == "bf16" and on.train.compile is True


def test_settings_panel_yaml_round_trips_and_names_the_command(home, hardware):
    st = _studio(home, hardware, public=False)
    data = _data()
    got = _got(st, data, "minilm-l6", strategy="lora", name="tickets", numbers=_advanced(epochs=2, seed=5))
    out = tab_settings.panel(st, got)
    yaml_text, command, memory = (out[st.settings_tab.yaml], out[st.settings_tab.command],
                                  out[st.settings_tab.memory])
    job = JobConfig.from_yaml(yaml_text)
    assert job == st.plan(st.form.values(got, public=False)).config
    assert job.train.epochs == 2 and job.train.seed == 5 and job.train.batch_size  # the preset filled the rest
    assert command == "studio train config.yaml"
    assert command_for("my run.yaml", "/h o/me") == "studio train 'my run.yaml' --home '/h o/me'"
    assert "Memory" in memory


def test_a_missing_step_is_said_in_words(home, hardware):
    st = _studio(home, hardware, public=False)
    with pytest.raises(ConfigError, match="no data yet"):
        st.form.values(_got(st, None, "minilm-l6"), public=False)
    with pytest.raises(ConfigError, match="no model is chosen"):
        st.form.values(_got(st, _data(), None), public=False)


# --- charts -------------------------------------------------------------------------------------------------
EVENTS = [
    {"type": "phase", "phase": "training", "message": "Training"},
    *[{"type": "train", "step": s, "loss": 2.0 / s, "learning_rate": 1e-3 * (1 - s / 10)} for s in range(1, 9)],
    {"type": "eval", "step": 4, "eval_loss": 0.9, "accuracy": 0.6, "macro_f1": 0.5},
    {"type": "eval", "step": 8, "eval_loss": 0.7, "accuracy": 0.8, "macro_f1": 0.75},
]


def test_loss_chart_has_raw_smoothed_and_eval_points():
    fig = charts.loss_figure(EVENTS)
    names = [trace.name for trace in fig.data]
    assert names == ["loss", "smoothed", "eval loss"]
    assert list(fig.data[0].x) == list(range(1, 9)) and fig.data[0].y[0] == 2.0
    smoothed = list(fig.data[1].y)
    assert smoothed[0] == pytest.approx(2.0)  # debiased: the first point is not pulled towards zero
    assert all(a > b for a, b in zip(smoothed, smoothed[1:]))  # a falling loss stays falling
    assert list(fig.data[2].x) == [4, 8]


def test_eval_and_lr_charts_and_their_empty_states():
    evals = charts.eval_figure(EVENTS)
    assert [t.name for t in evals.data] == ["accuracy", "macro F1"] and list(evals.data[0].y) == [0.6, 0.8]
    chat_evals = charts.eval_figure([{"type": "eval", "step": 3, "eval_loss": 1.5}])
    assert [t.name for t in chat_evals.data] == ["eval loss"]
    lr = charts.lr_figure(EVENTS)
    assert len(lr.data) == 1 and lr.data[0].y[0] == pytest.approx(9e-4)
    for fig in (charts.loss_figure([]), charts.eval_figure(EVENTS[:1]), charts.lr_figure([]),
                charts.overlay_figure({}), charts.token_length_figure(None), charts.class_balance_figure({})):
        assert not fig.data and fig.layout.annotations[0].text  # a blank chart says why it is blank


def test_confusion_matrix_from_an_eval_report():
    report = {"tuned": {"accuracy": 0.75}, "confusion_matrix": {"labels": ["billing", "shipping"],
                                                                "matrix": [[3, 1], [0, 4]]}}
    confusion = report["confusion_matrix"]
    fig = charts.confusion_figure(confusion["matrix"], confusion["labels"])
    heat = fig.data[0]
    assert [list(r) for r in heat.z] == [[3, 1], [0, 4]] and list(heat.x) == ["billing", "shipping"]
    assert charts.confusion_figure([], []).layout.annotations[0].text.startswith("No confusion")
    figure_update, scatter, _, _ = tab_evaluate._error_views(report, get_task("text-classification"))
    assert figure_update["visible"] is True and scatter["visible"] is False


# --- views ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", list(STATUS_WORDS))
def test_status_and_progress_render_every_job_status(status):
    word, kind = STATUS_WORDS[status]
    html = status_html(status, "", queue_position=2, error="The job failed: out of memory")
    assert f"st-{kind}" in html
    if status == "failed":
        assert "out of memory" in html
    elif status == "queued":
        assert "Position 2 in the queue" in html
    else:
        assert word in html
    bar = progress_html({"step": 5, "total_steps": 10, "eta_s": 75, "epoch": 0.5}, status)
    assert 'role="progressbar"' in bar
    if status == "completed":
        assert "width:100.0%" in bar
    if status == "training":
        assert "Step 5 of 10" in bar and "1 min 15 s left" in bar and "width:50.0%" in bar
    if status in ("queued", "preparing"):
        assert "width:0.0%" in bar and "st-moving" in bar
    if status in ("stopped", "failed", "interrupted"):
        stale = progress_html({"step": 5, "total_steps": 10, "phase_message": "Saving the trained weights."}, status)
        assert f"{word.split(':')[0]} at step 5 of 10" in stale and "Saving" not in stale and "width:50.0%" in stale


def test_a_slow_phase_shows_its_own_progress():
    bar = progress_html({"current": 30, "total": 120, "phase_message": "Evaluating the base model"}, "evaluating")
    assert "Evaluating the base model (30 of 120)" in bar and "width:25.0%" in bar
    assert "No job yet" in status_html(None, None)


# --- the public demo ----------------------------------------------------------------------------------------
def test_owner_ids_come_from_the_server():
    fresh = start_session(None)
    assert owner_of(fresh) == fresh["owner"] and len(fresh["owner"]) == 32
    kept = {"owner": new_owner(), "job_id": "job-1", "run": None, "data": None}
    assert start_session(kept) == kept  # a reload re-attaches
    for forged in ("../../etc", "alice", "", 42, "A" * 32):
        session = start_session({"owner": forged, "job_id": "job-1-someone-else"})
        assert owner_of(session) and session["owner"] != forged and session["job_id"] is None


def test_public_upload_lands_in_the_session_folder_and_bad_ones_are_refused(home, hardware, tmp_path):
    st = _studio(home, hardware)
    session = start_session(None)
    upload = tab_data._upload_step(st)
    good = tmp_path / "tickets.csv"
    good.write_bytes(TICKETS.read_bytes())
    pending, status, kept, validation = upload(str(good), session)
    assert pending["error"] is None and "Reading" in status and kept == session
    assert validation is None  # new data drops a validation file chosen for the old
    assert st.may_read(session["owner"], pending["path"])
    assert session_upload_dir(home, session["owner"]) in Path(pending["path"]).parents
    out = tab_data._load_step(st)(pending, session, None)
    status_box = st.data_tab.status
    assert "Ready." in out[status_box] and out[st.data]["prepared"].task == "text-classification"
    assert set(out) == set(st.data_tab.outputs(st))

    script = tmp_path / "evil.py"
    script.write_text("import os\n")
    pending, status, _, _ = upload(str(script), session)
    assert pending["path"] is None and "Upload refused" in status and "not a data file" in status
    refused = tab_data._load_step(st)(pending, session, None)
    assert "not a data file" in refused[status_box] and set(refused) == set(st.data_tab.outputs(st))
    # a file dropped before the page gave this browser its owner id (or with a forged one) is not refused: the
    # browser gets a server-made id, and the file lands in that id's folder, never in the forged one's
    pending, status, fresh, _ = upload(str(good), {"owner": "../../elsewhere"})
    assert pending["error"] is None and owner_of(fresh) and fresh["owner"] != "../../elsewhere"
    assert session_upload_dir(home, fresh["owner"]) in Path(pending["path"]).parents


def test_a_validation_file_is_read_with_the_data_and_kept_to_the_session(home, hardware, tmp_path):
    st = _studio(home, hardware)
    session = start_session(None)
    lines = TICKETS.read_text(encoding="utf-8").splitlines()
    (tmp_path / "tickets.csv").write_text("\n".join(lines[:-40]) + "\n", encoding="utf-8")
    (tmp_path / "held.csv").write_text("\n".join(lines[:1] + lines[-40:]) + "\n", encoding="utf-8")
    validate = tab_data._validation_step(st)
    pending, status, _ = validate(str(tmp_path / "held.csv"), session, None)
    assert pending["path"] is None and "Bring your data first" in status  # nothing to validate yet
    pending, _, session, _ = tab_data._upload_step(st)(str(tmp_path / "tickets.csv"), session)
    out = tab_data._load_step(st)(pending, session, None)
    session, data = out[st.session], out[st.data]
    pending, status, session = validate(str(tmp_path / "held.csv"), session, data)
    assert pending["validation"] and st.may_read(session["owner"], pending["validation"])
    out = tab_data._load_step(st)(pending, session, None)
    assert "and 40 for validation (from held.csv)" in out[st.data_tab.status]
    assert out[st.data]["choice"].validation_path == pending["validation"]
    assert out[st.session]["data"]["validation_path"] == pending["validation"]  # a reload reads it again
    restored = tab_data.restore(st, out[st.session])
    assert "(from held.csv)" in restored[st.data_tab.status]
    # both upload boxes show the files read again, not an empty "Drop File Here" beside a loaded run
    assert restored[st.data_tab.upload] == out[st.session]["data"]["path"]
    assert restored[st.data_tab.validation_upload] == pending["validation"]
    # another browser's session may not name this validation file
    other = start_session(None)
    refused = tab_data._load_step(st)({**pending, "path": pending["path"]}, other, None)
    assert "not available to this browser session" in refused[st.data_tab.status]


def test_the_group_list_offers_a_repeating_column_and_choosing_it_groups_the_split(home, hardware, tmp_path):
    st = _studio(home, hardware, public=False)
    tab, session = st.data_tab, start_session(None)
    lines = ["description,section,source"] + [f"{['racing game', 'mail client'][i % 2]} {i}{part},"
                                              f"{['games', 'mail'][i % 2]},src{i}"
                                              for i in range(30) for part in ("", " data", " tools")]
    path = tmp_path / "packages.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tab_data._load(st, session, str(path), None, {})
    group = next(u for u in (out[slot] for slot in tab.roles) if str(u.get("label", "")).startswith("group"))
    assert group["visible"] and group["value"] == "" and "(choose one)" not in group["label"]  # optional
    assert group["choices"][1] == ("source (could be the group)", "source")
    assert "choose it as the group" in out[tab.detection]
    assert out[st.data]["choice"].columns.get("group") is None  # offered, not chosen
    slots = [(u.get("value") or "") for u in (out[slot] for slot in tab.roles)]
    slots[[str(u.get("label", "")).startswith("group") for u in (out[slot] for slot in tab.roles)].index(True)] = \
        "source"  # the user picks the group; the other lists keep what the studio read
    task, columns = tab_data._role_choice(out[st.session], out[st.data], "text-classification", slots)
    assert (task, columns) == (None, {"group": "source"})
    chosen = tab_data._load(st, out[st.session], str(path), task, columns)
    assert "stays on one side of the split" in chosen[tab.detection]
    assert chosen[tab.detection].count("as you chose") == 1 and "the only column of free text" in chosen[tab.detection]
    choice = chosen[st.data]["choice"]
    assert choice.columns["group"] == "source"
    assert build_config(JobValues(data=choice, model="minilm-l6", strategy="auto",
                                  preset="quick")).data.columns["group"] == "source"


def test_the_verdicts_headline_does_not_say_paid_for_a_lead_within_chance():
    clear = {"status": "tuned-wins", "within_chance": False, "message": "The tuned model beats every baseline."}
    close = {**clear, "within_chance": True, "message": "... On 95 rows a margin this small could be chance."}
    assert "Fine-tuning paid." in tab_evaluate._verdict_html({"verdict": clear})
    shown = tab_evaluate._verdict_html({"verdict": close})
    assert "Ahead, within chance." in shown and "paid" not in shown and "st-info" in shown
    old = {k: v for k, v in clear.items() if k != "within_chance"}  # reports written before the field
    assert "Fine-tuning paid." in tab_evaluate._verdict_html({"verdict": old})


def test_a_model_value_from_the_previous_list_reads_as_no_choice_not_an_error():
    from studio.tab_model import ChoiceRadio

    radio = ChoiceRadio(choices=[("MiniLM", "minilm-l6")])
    assert radio.get_block_name() == "radio"  # the frontend draws it as a Radio
    assert radio.preprocess("minilm-l6") == "minilm-l6" and radio.preprocess(None) is None
    assert radio.preprocess("efficientnet-lite0") is None  # an image example's model, sent after a text example
    with pytest.raises(gr.Error):
        gr.Radio(choices=[("MiniLM", "minilm-l6")]).preprocess("efficientnet-lite0")  # what it guards against
    assert not list(Path(tab_data.__file__).parent.glob("*.pyi"))  # gradio's stub for a subclass is not written


def test_the_scores_caption_names_the_groups_of_a_grouped_validation_split():
    task, config = get_task("text-classification"), JobConfig(task="text-classification")
    assert tab_evaluate._caption({"examples": 95}, task, config).startswith("On 95 validation rows.")
    grouped = tab_evaluate._caption({"examples": 95, "grouped": {"groups": 36, "se": 0.07}}, task, config)
    assert grouped.startswith("On 95 validation rows from 36 groups, each whole.")


def test_public_data_outside_the_session_folder_is_refused(home, hardware, tmp_path):
    st = _studio(home, hardware)
    mine, theirs = start_session(None), start_session(None)
    outside = tmp_path / "server-file.csv"
    outside.write_bytes(TICKETS.read_bytes())
    pending, _, _, _ = tab_data._upload_step(st)(str(outside), theirs)
    for path in (str(outside), pending["path"], "/etc/passwd"):
        assert not st.may_read(mine["owner"], path)
        out = tab_data._load_step(st)({"path": path, "task": None, "columns": {}, "error": None}, mine, None)
        assert out[st.data] is None and "not available to this browser session" in out[st.data_tab.status]
        assert tab_data.restore(st, {**mine, "data": {"path": path}}) == gr.skip()
    assert st.may_read(mine["owner"], str(TICKETS))  # the bundled examples are for everyone
    assert _studio(home, hardware, public=False).may_read(None, str(outside))  # a local studio reads any path


def test_public_submit_refuses_non_catalog_models_and_foreign_paths_then_clamps(home, hardware, tmp_path):
    st = _studio(home, hardware)
    session = start_session(None)
    owner = session["owner"]
    data = _data()
    head_only = _got(st, data, "minilm-l6", strategy="head-only")
    with pytest.raises(ConfigError, match="not in the catalog"):
        tab_train.submit(st, owner, _got(st, data, "someone/any-model"))
    assert st.form.values(_got(st, data, "minilm-l6", "/srv/models/x"), public=True).model == "minilm-l6"  # ignored
    foreign = tmp_path / "t.csv"
    foreign.write_bytes(TICKETS.read_bytes())
    with pytest.raises(ConfigError, match="paths on the server cannot be used"):
        tab_train.submit(st, owner, _got(st, _data(foreign), "minilm-l6", strategy="head-only"))
    out = tab_train._start(st, _got(st, data, "someone/any-model", session=session))
    session, status = out[st.session], out[st.train_tab.status]
    assert "Fix the settings" in status and "not in the catalog" in status and session["job_id"] is None

    job_id = tab_train.submit(st, owner, _got(st, data, "minilm-l6",
                                              numbers=_advanced(max_steps=5000, max_minutes=600)))
    job = st.manager.snapshot(job_id).config
    assert job.train.max_steps == st.policy.max_steps and job.train.max_minutes == st.policy.max_minutes
    with pytest.raises(ConfigError, match="queued or running"):
        tab_train.submit(st, owner, head_only)
    st.manager.stop(job_id)
    st.manager.wait(job_id, timeout=10)


def test_a_visitor_sees_and_stops_only_their_own_jobs_and_runs(home, hardware):
    st = _studio(home, hardware, steps=2)
    alice, bob = start_session(None), start_session(None)
    job_id = tab_train.submit(st, alice["owner"], _got(st, _data(), "minilm-l6", strategy="head-only"))
    run = str(st.manager.wait(job_id, timeout=10).run_dir)
    assert tab_train._snapshot(st, {**alice, "job_id": job_id}).job_id == job_id
    assert tab_train._snapshot(st, {**bob, "job_id": job_id}) is None  # a job id copied into bob's storage
    assert "no job to stop" in tab_train._stop(st, {**bob, "job_id": job_id})
    assert st.run_for(alice["owner"], run) is not None and st.run_for(bob["owner"], run) is None
    assert st.run_for(alice["owner"], "/etc") is None
    assert "Choose a run" in tab_export._export(st, bob, run, "bundle")[1]

    files, note = tab_export._export(st, alice, run, "bundle")
    export_dir = session_export_dir(home, alice["owner"])
    assert files and all(f.startswith(str(export_dir)) for f in files), note  # runs/ is never served in public
    assert not any(str(home.runs) in f for f in files)


def test_public_app_has_no_model_box_and_states_its_limits(home):
    policy = PublicPolicy(enabled=True)
    app = build_app(home, JobManager(home, run_fn=fake_trainer()), public=True)
    blocks = list(app.blocks.values())
    assert not [b for b in blocks if isinstance(b, gr.Textbox) and b.elem_id == "model-custom"]
    header = next(b for b in blocks if getattr(b, "elem_id", None) == "st-header")
    assert policy.describe() in header.value and "catalog models only" in header.value
    assert set(app.studio.data_tab.outputs(app.studio)) <= set(blocks)


def test_public_expiry_runs_in_the_background(home, tmp_path):
    import time

    from core.uploads import save_upload
    from studio.app import start_expiry

    upload = save_upload(home, new_owner(), TICKETS.read_bytes(), "t.csv")
    time.sleep(0.05)
    stop = start_expiry(PublicPolicy(upload_max_age_s=0.01), home, None, every_s=0.05)
    try:
        deadline = time.time() + 5
        while upload.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert not upload.exists()
    finally:
        stop.set()


def test_a_run_listed_while_it_evaluates_is_redrawn_when_it_completes(home, hardware):
    """The evaluate page may list a run before its report exists; the report appears once the run completes."""
    import json

    from core.engine.runner import create_run

    st = _studio(home, hardware, public=False)
    session = start_session(None)
    run = create_run(JobConfig(task="text-classification", model="minilm-l6", strategy="head-only"), home)
    run.model.mkdir(parents=True, exist_ok=True)
    (run.model / "head.safetensors").write_bytes(b"weights")
    run.write_status("evaluating", "Comparing.")
    session = {**session, "run": str(run.path)}
    tab = st.evaluate_tab
    out = tab_evaluate._runs(st, session, None, "", prefer_session=True)
    dropdown, shown, report = out[tab.run], out[tab.shown], out[tab.report]
    assert dropdown["value"] == str(run.path) and shown.endswith("|evaluating")
    assert "no evaluation" in report

    report_json = {"task": "text-classification", "base": {"accuracy": 0.5}, "tuned": {"accuracy": 0.9}}
    run.eval.write_text(json.dumps(report_json))
    run.write_status("completed", "Finished.")
    # the dropdown keeps its value, so only the status change can bring the report
    again = tab_evaluate._runs(st, session, str(run.path), shown, prefer_session=True)
    assert again[tab.shown].endswith("|completed") and "st-metrics" in again[tab.report]
    unchanged = tab_evaluate._runs(st, session, str(run.path), again[tab.shown], prefer_session=True)
    assert not set(unchanged) & set(tab.view())  # nothing redrawn when nothing changed


def test_a_click_that_races_the_page_load_never_loses_the_owner(home, hardware):
    """A handler can get the session as it was before the page-load handler gave it an owner id; what it
    writes back, and the job it submits, still carry a valid owner, so the poll finds the job."""
    st = _studio(home, hardware, public=False, steps=2)
    stale = {"owner": None, "job_id": None, "run": None, "data": None}
    written = tab_data._load(st, stale, str(TICKETS), None, {})[st.session]
    assert owner_of(written) is not None and written["data"]["path"] == str(TICKETS)
    out = tab_train._start(st, _got(st, _data(), "minilm-l6", strategy="head-only", session=stale))
    session, status = out[st.session], out[st.train_tab.status]
    assert owner_of(session) is not None and "Submitted" in status
    assert tab_train._snapshot(st, session).job_id == session["job_id"]  # what the poll will show
    st.manager.wait(session["job_id"], timeout=10)


def test_a_reload_shows_detections_own_reasons_not_as_you_chose(home, hardware):
    """The session keeps what the user asked for apart from what detection found: a reload reads the data as they
    did, so the reasons stay detection's ("'text' holds the ticket text...") instead of "as you chose"."""
    st = _studio(home, hardware, public=False)
    detection = st.data_tab.detection
    first = tab_data._load(st, start_session(None), str(TICKETS), None, {})
    session = first[st.session]
    assert session["data"]["task"] == "text-classification" and session["data"]["asked"] == {"task": None,
                                                                                               "columns": {}}
    again = tab_data.restore(st, session)
    assert "as you chose" not in again[detection] and again[detection] == first[detection]
    assert again[st.data_tab.upload] is None  # an example is no upload: its box stays empty
    chosen = tab_data._load(st, session, str(TICKETS), "text-classification", {})[st.session]
    assert "as you chose" in tab_data.restore(st, chosen)[detection]  # the user's own choice stays theirs


def test_the_page_asks_which_column_and_which_sheet_when_the_data_does_not_say(home, hardware, tmp_path):
    import pandas as pd

    st = _studio(home, hardware, public=False)
    tab, session = st.data_tab, start_session(None)
    topics = [("Refund not received for order", "Billing"), ("App crashes on login screen", "Technical"),
              ("Where is my parcel number", "Shipping")]
    rows = [(f"{text} {i}", ["Kettle", "Mobile app", "Account"][i % 3], team)
            for i in range(30) for text, team in topics]
    export = tmp_path / "crm.csv"
    pd.DataFrame(rows, columns=["Body", "Product", "Queue"]).to_csv(export, index=False)
    out = tab_data._load(st, session, str(export), None, {})
    # two columns could be the classes: the studio does not pick one silently, the label's dropdown asks
    assert out[st.data] is None
    labels = [u for u in (out[slot] for slot in tab.roles) if str(u.get("label", "")).startswith("label")]
    assert labels and "(choose one)" in labels[0]["label"]
    assert any("could be the label" in name for name, _ in labels[0]["choices"])
    chosen = tab_data._load(st, session, str(export), "text-classification", {"label": "Queue"})
    assert chosen[st.data]["prepared"].labels == ["Billing", "Shipping", "Technical"], chosen[tab.report]

    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"text": [f"note number {i} about {'xy'[i % 2]}" for i in range(20)],
                      "label": ["x", "y"] * 10}).to_excel(writer, sheet_name="Jan", index=False)
        pd.DataFrame({"ticket": [f"other {i}" for i in range(20)], "team": ["x", "y"] * 10,
                      "n": list(range(20))}).to_excel(writer, sheet_name="Notes", index=False)
    out = tab_data._load(st, session, str(book), None, {})
    sheets = out[tab.sheets]
    assert sheets["visible"] and "Jan" in sheets["choices"]
    picked = tab_data._load(st, session, tab_data._with_sheets(str(book), ["Jan"]), None, {})
    assert picked[st.data] is not None and picked[st.data]["prepared"].labels == ["x", "y"]


def test_a_finished_search_reads_as_finished_on_the_train_tab():
    """An automatic search that kept a head has no steps: the bar says how many candidates it scored (it said
    "Done: 0 steps"), the loss and learning-rate charts say why they are empty in lines that fit, and long
    candidate names wrap instead of squeezing the bars."""
    events = [{"type": "search", "budget_s": 60, "time": 0.0},
              {"type": "candidate", "name": "RBF kernel logistic regression on mean-pooled + TF-IDF",
               "cv_accuracy": 0.674, "time": 1.0},
              {"type": "candidate", "name": "Logistic regression on TF-IDF", "cv_accuracy": 0.63, "time": 2.0}]
    progress = tab_train._search_progress(events, {})
    assert "Done: 2 candidate(s) scored" in progress_html(progress, "completed")
    assert "Done: 12 steps" in progress_html({"step": 12, "total_steps": 12}, "completed")
    assert "Done." in progress_html({}, "completed")
    for fig in (charts.loss_figure(events), charts.lr_figure(events)):
        text = fig.layout.annotations[0].text
        assert "<br>" in text and all(len(line) <= 44 for line in text.split("<br>"))
    assert "have no schedule" in charts.lr_figure(events).layout.annotations[0].text.replace("<br>", " ")
    names = list(charts.candidates_figure(events).data[0].y)
    assert "RBF kernel logistic regression<br>on mean-pooled + TF-IDF" in names
    assert "Logistic regression on TF-IDF" in names
    # twelve candidates with two-line names: the chart grows to about 28 px a bar instead of overlapping them
    many = events + [{"type": "candidate", "name": f"Logistic regression on all {i} taps + raw pixels",
                      "cv_accuracy": 0.5 + i / 100, "time": 3.0 + i} for i in range(10)]
    grown = charts.candidates_figure(many)
    assert len(grown.data[0].y) == 12 and len(set(grown.data[0].y)) == 12 and grown.layout.height >= 12 * 28
    assert charts.candidates_figure(events).layout.height == charts.HEIGHT
    # the kept candidate is starred and coloured apart, wherever its bar falls
    kept = charts.candidates_figure(events + [{"type": "winner", "name": "Logistic regression on TF-IDF"}])
    assert "★ Logistic regression on<br>TF-IDF" in list(kept.data[0].y)
    assert list(kept.data[0].marker.color).count(charts.PALETTE[0]) == 1


def test_the_class_balance_stacks_training_and_validation_rows_so_totals_match_the_checks():
    figure = charts.class_balance_figure({"status": 100, "actions": 73, "mimetypes": 3},
                                         {"status": 25, "actions": 18, "mimetypes": 1})
    training, validation, totals = figure.data
    assert list(training.x) == ["status", "actions", "mimetypes"] and list(training.y) == [100, 73, 3]
    assert list(validation.y) == [25, 18, 1] and list(totals.text) == ["125", "91", "4"]  # as "'status' has 125"
    assert figure.layout.barmode == "stack" and figure.layout.showlegend
    alone = charts.class_balance_figure({"a": 5, "b": 2})  # no validation rows (a separate file, say)
    assert len(alone.data) == 2 and list(alone.data[1].text) == ["5", "2"] and not alone.layout.showlegend
