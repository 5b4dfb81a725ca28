"""One plan per job: the YAML the page previews is the config.yaml the run saves, byte for byte, for every task;
and a plan gathers the settings', the model's and the data's problems at once."""
from __future__ import annotations

import csv

import pytest

pytest.importorskip("gradio")

from core.config import JobConfig  # noqa: E402
from core.data import load_data  # noqa: E402
from core.data.examples import example_path  # noqa: E402
from core.hardware import detect_hardware  # noqa: E402
from core.jobs import JobManager  # noqa: E402
from core.plan import PlanCache, plan_job  # noqa: E402
from core.public import PublicPolicy  # noqa: E402
from core.runs import RunDir  # noqa: E402
from studio import tab_settings, tab_train  # noqa: E402
from studio.app import build_app, start_session  # noqa: E402
from studio.form import ADVANCED, INITIAL, DataChoice  # noqa: E402
from tests.test_chat_support import conversations, tiny_model_folder  # noqa: E402


def _chat_csv(path):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer"])
        for turns in conversations(40):
            user = next(m["content"] for m in turns if m["role"] == "user")
            answer = next(m["content"] for m in turns if m["role"] == "assistant")
            writer.writerow([user, answer])
    return path


def _page(home, data_path, model, strategy, numbers):
    """The page's studio with data loaded, and what its widgets hold ({component: value})."""
    st = build_app(home, JobManager(home), policy=PublicPolicy(enabled=False)).studio
    prepared = load_data(str(data_path))
    choice = DataChoice(path=str(data_path), task=prepared.task, columns=dict(prepared.columns))
    form = st.form
    got = {form.data: {"choice": choice, "prepared": prepared}, form.model_choice: None, form.model_custom: model,
           form.strategy: strategy, form.preset: "quick", form.name: "", form.validation: 0,
           **{form.numbers[k]: numbers.get(k, INITIAL[k]) for k in ADVANCED}, st.session: start_session(None)}
    return st, got


@pytest.mark.parametrize("task", ["chat", "text-classification", "image-classification"])
def test_the_previewed_yaml_is_the_runs_config(task, home, tmp_path, bert_dir, vit_dir):
    model, data, strategy = {
        "chat": (tiny_model_folder(tmp_path), _chat_csv(tmp_path / "chat.csv"), "lora"),
        "text-classification": (bert_dir, example_path("support-tickets"), "full"),
        "image-classification": (vit_dir, example_path("digits"), "lora"),
    }[task]
    st, got = _page(home, data, str(model), strategy, {"max_steps": 1, "eval_every": 1})
    preview = tab_settings.panel(st, got)[st.settings_tab.yaml]
    assert f"task: {task}" in preview and "batch_size:" in preview  # the presets are filled in the preview
    job_id = tab_train.submit(st, got[st.session]["owner"], got)
    snap = st.manager.wait(job_id, timeout=240)
    assert snap.status == "completed", (snap.status, snap.error)
    assert RunDir(snap.run_dir).config.read_text(encoding="utf-8") == preview


def test_a_plan_reports_the_settings_the_model_and_the_data_at_once(home, tmp_path):
    broken = tmp_path / "one-class.csv"
    broken.write_text("text,label\n" + "".join(f"row {i},a\n" for i in range(12)), encoding="utf-8")
    config = JobConfig(task="text-classification", model="all-minilm-l12-v9", strategy="head-only")
    config.data.path = str(broken)
    config.train.learning_rate = -1.0
    plan = plan_job(config, home, detect_hardware())
    assert not plan.ok
    text = plan.describe_problems()
    assert "train.learning_rate is -1.0" in text  # the settings
    assert "all-minilm-l12-v9" in text and "Did you mean minilm-l6" in text  # the model, with the closest ones
    assert plan.data is not None and not plan.data.report.ok and "class" in text  # and the data, not hidden
    assert plan.config is config  # nothing is filled in while there are problems


def test_the_cache_reads_a_file_again_only_when_it_changes(home, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"ticket number {i},{'ab'[i % 2]}\n" for i in range(30)))
    config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only")
    config.data.path = str(path)
    cache, hardware = PlanCache(), detect_hardware()
    first = plan_job(config, home, hardware, cache=cache)
    again = plan_job(config, home, hardware, cache=cache)
    assert first.ok and again.data is first.data and again.tokenizer is first.tokenizer
    path.write_text(path.read_text() + "".join(f"another ticket {i},{'ab'[i % 2]}\n" for i in range(10)))
    changed = plan_job(config, home, hardware, cache=cache)
    assert changed.data is not first.data and len(changed.data.train) > len(first.data.train)
