"""Security: nothing uploaded is run or unpickled, weights load safely, remote code stays off, uploads live
in per-session folders and expire, and public mode caps what a visitor can do and what Gradio serves."""
from __future__ import annotations

import json
import os
import pickle
import re
import stat
import time
from pathlib import Path

import pytest

from core.config import ConfigError, DataConfig, JobConfig, TrainConfig
from core.data import DataLimits
from core.runs import RunDir
from core.public import PublicPolicy
from core.uploads import (UploadError, expire_runs, expire_uploads, owns_path, safe_name, save_upload,
                          session_key, session_upload_dir)
from tests.conftest import REPO
from tests.conftest_data import CASES

SOURCES = sorted(p for folder in ("core", "studio") for p in (REPO / folder).rglob("*.py"))
FORBIDDEN = {
    r"(?<![\w.])(?<!def )eval\(": "eval()",
    r"(?<![\w.])(?<!def )exec\(": "exec()",
    r"\bpickle\.loads?\(": "pickle.load",
    r"\bjoblib\.load\(": "joblib.load",
    r"\bdill\b": "dill",
    r"allow_pickle\s*=\s*True": "numpy allow_pickle",
    r"\byaml\.load\(": "yaml.load (use yaml.safe_load)",
    r"shell\s*=\s*True": "subprocess shell=True",
    r"\bos\.system\(": "os.system",
    r"trust_remote_code\s*=\s*True": "trust_remote_code=True",
}


class Payload:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# --- the code itself -------------------------------------------------------------------------------------

def test_every_torch_load_is_weights_only():
    calls = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start(): text.find(")", match.start()) + 1]
            calls.append((path.name, call))
            assert "weights_only=True" in call, f"{path}: {call}"
    assert calls  # the scan found the loads it guards (models.py, backbones.py)


@pytest.mark.parametrize("pattern", list(FORBIDDEN), ids=list(FORBIDDEN.values()))
def test_no_code_path_evaluates_or_unpickles(pattern):
    hits = [f"{p.relative_to(REPO)}:{n}" for p in SOURCES
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(pattern, line) and not line.lstrip().startswith("#")]
    assert not hits, f"{FORBIDDEN[pattern]} in {hits}"


def test_remote_code_is_off_by_default_everywhere():
    import inspect

    from core import models

    assert JobConfig().trust_remote_code is False
    for name in ("load_tokenizer", "load_causal_lm", "load_text_classifier", "load_image_classifier"):
        assert inspect.signature(getattr(models, name)).parameters["trust_remote_code"].default is False


# --- weights ---------------------------------------------------------------------------------------------

def test_a_pickle_posing_as_weights_is_never_run(tmp_path):
    from transformers import BertConfig

    from core.models import ResolvedModel, load_text_classifier, parameter_count

    marker = tmp_path / "PWNED"
    folder = tmp_path / "evil-model"
    folder.mkdir()
    BertConfig(vocab_size=64, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
               intermediate_size=8).save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    resolved = ResolvedModel(name=str(folder), path=folder, source="local", kind="transformers", entry=None,
                             model_type="bert")
    with pytest.raises(Exception):
        load_text_classifier(resolved, 2, {0: "a", 1: "b"})
    weights = tmp_path / "evil.pth"
    weights.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(pickle.UnpicklingError):
        parameter_count(ResolvedModel(name="efficientnet-lite0", path=weights, source="packaged",
                                      kind="efficientnet", entry=None, model_type="efficientnet"))
    assert not marker.exists()


# --- uploads ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd.csv", "passwd.csv"),
    ("C:\\Users\\me\\Desktop\\data.CSV", "data.csv"),
    (".hidden.csv", "hidden.csv"),
    ("spaces and ünïcode?.jsonl", "spaces and _n_code_.jsonl"),
    ("", "upload"),
    ("x" * 500 + ".csv", "x" * 116 + ".csv"),
])
def test_upload_names_are_cleaned(name, expected):
    assert safe_name(name) == expected


def test_a_session_id_never_names_a_path(home):
    for evil in ("../../etc", "/abs", "a/b", "..", "x" * 5000):
        folder = session_upload_dir(home, evil)
        assert folder.parent == home.uploads and re.fullmatch(r"[0-9a-f]{16}", folder.name)
    assert session_key("alice") != session_key("bob") and session_key("alice") == session_key("alice")
    with pytest.raises(UploadError, match="reload the page"):
        session_upload_dir(home, "")


def test_saved_uploads_stay_inside_the_session_and_are_not_programs(home, tmp_path):
    saved = save_upload(home, "alice", CASES / "duplicates.csv", name="../../../escape.csv")
    assert saved.name == "escape.csv" and owns_path(home, "alice", saved)
    assert not owns_path(home, "bob", saved) and not owns_path(home, "alice", "/etc/passwd")
    assert not stat.S_IMODE(saved.stat().st_mode) & 0o111
    assert save_upload(home, "alice", b"text,label\nx,a\n", name="pasted.csv").read_bytes().startswith(b"text")
    again = save_upload(home, "alice", CASES / "duplicates.csv")
    assert again.parent != saved.parent  # every upload gets its own folder: nothing is overwritten


@pytest.mark.parametrize("name", ["model.pkl", "weights.pt", "script.py", "run.sh", "tool.exe", "notes"])
def test_uploads_that_are_not_data_are_refused(home, name):
    with pytest.raises(UploadError, match="not a data file"):
        save_upload(home, "alice", b"anything", name=name)
    assert not list(session_upload_dir(home, "alice").iterdir())


def test_an_oversized_or_linked_upload_is_refused_without_reading_it(home, tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as handle:
        handle.truncate(3 * 1024**3)
    started = time.perf_counter()
    with pytest.raises(UploadError, match="over the limit"):
        save_upload(home, "alice", big, limits=DataLimits.public())
    assert time.perf_counter() - started < 1
    link = tmp_path / "link.csv"
    link.symlink_to(CASES / "duplicates.csv")
    with pytest.raises(UploadError, match="link"):
        save_upload(home, "alice", link)
    assert not list(session_upload_dir(home, "alice").iterdir())


def test_old_uploads_and_runs_expire_but_what_is_in_use_stays(home):
    old = save_upload(home, "alice", CASES / "duplicates.csv")
    used = save_upload(home, "bob", CASES / "duplicates.csv")
    fresh = save_upload(home, "carol", CASES / "duplicates.csv")
    hour_ago = time.time() - 3600
    for path in (old, used):
        os.utime(path.parent, (hour_ago, hour_ago))
    removed = expire_uploads(home, max_age_s=600, keep=[used])
    assert removed == [old.parent] and not old.exists() and used.exists() and fresh.exists()
    assert not (home.uploads / session_key("alice")).exists()  # the empty session folder went too

    finished, running, kept = (RunDir.create(home.runs, name, "chat") for name in ("done", "live", "kept"))
    for run in (finished, kept):
        run.config.write_text("task: chat\n")
        run.write_status("completed", "Finished.")
    running.config.write_text("task: chat\n")
    running.write_status("training", "Training.")  # this process's pid: alive
    for run in (finished, running, kept):
        status = json.loads(run.status_file.read_text())
        run.status_file.write_text(json.dumps({**status, "updated": hour_ago}))
    assert expire_runs(home, max_age_s=600, keep=[kept.path]) == [finished.path]
    assert running.path.exists() and kept.path.exists()


# --- public mode -----------------------------------------------------------------------------------------

def test_public_mode_turns_on_by_flag_or_on_a_space():
    assert not PublicPolicy.from_env(False, environ={}).enabled
    assert PublicPolicy.from_env(True, environ={}).enabled
    assert PublicPolicy.from_env(False, environ={"SPACE_ID": "someone/studio"}).enabled
    assert PublicPolicy.from_env(False, environ={"STUDIO_PUBLIC": "1"}).enabled
    tuned = PublicPolicy.from_env(True, environ={"STUDIO_PUBLIC_MAX_STEPS": "50", "STUDIO_PUBLIC_MAX_MINUTES": "2.5"})
    assert tuned.max_steps == 50 and isinstance(tuned.max_steps, int) and tuned.max_minutes == 2.5
    with pytest.raises(ConfigError, match="STUDIO_PUBLIC_MAX_STEPS='-3'"):
        PublicPolicy.from_env(True, environ={"STUDIO_PUBLIC_MAX_STEPS": "-3"})
    with pytest.raises(ConfigError, match="positive number"):
        PublicPolicy.from_env(True, environ={"STUDIO_PUBLIC_MAX_ROWS": "lots"})
    assert "300 steps" in PublicPolicy().describe()


def test_public_data_limits_are_stricter_than_local_ones():
    public, local = PublicPolicy().data_limits(), PublicPolicy(enabled=False).data_limits()
    assert local == DataLimits()
    assert public.max_bytes == 50 * 1024**2 and public.max_rows == 20_000 and public.max_images == 5_000
    assert public.max_zip_files <= DataLimits.public().max_zip_files


def _config(strategy="lora", **train) -> JobConfig:
    return JobConfig(task="text-classification", model="minilm-l6", strategy=strategy,
                     data=DataConfig(path="x.csv"), train=TrainConfig(**train), trust_remote_code=True)


def test_clamp_caps_steps_and_minutes_without_lengthening_a_job():
    policy = PublicPolicy(max_steps=100, max_minutes=5)
    clamped = policy.clamp(_config(max_steps=5000, max_minutes=60, threads=64))
    assert (clamped.train.max_steps, clamped.train.max_minutes, clamped.train.threads) == (100, 5, None)
    assert clamped.trust_remote_code is False
    big = policy.clamp(_config(epochs=10, batch_size=8), n_train=10_000)  # 12,500 steps by epochs
    assert big.train.max_steps == 100
    small = policy.clamp(_config(epochs=2, batch_size=8), n_train=80)  # 20 steps: left alone
    assert small.train.max_steps is None and small.train.max_minutes == 5
    assert policy.clamp(_config("head-only", epochs=60), n_train=10_000).train.max_steps is None
    local = PublicPolicy(enabled=False)
    config = _config(max_steps=5000)
    assert local.clamp(config) is config and local.check_job(config, None, None) == []


def test_public_check_lists_every_problem_at_once(home):
    class Manager:
        def __init__(self, home):
            self.home = home

        def jobs(self, owner=None):
            return []

    config = JobConfig(task="chat", model="minilm-l6", strategy="lora", trust_remote_code=True,
                       data=DataConfig(path="/etc/passwd", validation_path=str(REPO / "README.md")))
    problems = PublicPolicy().check_job(config, "alice", Manager(home))
    assert len(problems) == 4, problems
    assert "text-classification model, not a chat one" in problems[0]
    assert "data must be a file you uploaded" in problems[1] and "validation data" in problems[2]
    assert "trust_remote_code" in problems[3]
    example = REPO / "assets" / "examples" / "support_tickets.csv"
    ok = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only",
                   data=DataConfig(path=str(example)))
    assert PublicPolicy().check_job(ok, "alice", Manager(home)) == []
    with pytest.raises(ConfigError, match="catalog"):
        PublicPolicy().require_job(JobConfig(task="chat", model="my/own-model", data=DataConfig(path=str(example))),
                                   "alice", Manager(home))


def test_gradio_may_serve_only_the_studios_own_folders(home):
    from gradio.utils import is_allowed_file

    for enabled in (True, False):
        policy = PublicPolicy(enabled=enabled)
        allowed, blocked = policy.allowed_paths(home), policy.blocked_paths(home)

        def served(path: Path) -> bool:
            return is_allowed_file(path.resolve(), blocked, allowed, [])[0]

        upload = save_upload(home, "alice", CASES / "duplicates.csv")
        assert served(upload) and served(REPO / "assets" / "examples" / "support_tickets.csv")
        assert not served(home.models / "minilm-l6" / "model.safetensors")
        assert not served(Path("/etc/passwd")) and not served(REPO / "core" / "config.py")
        assert served(home.runs / "20261123-190000-x" / "eval.json") is (not enabled)
