"""What is checked before Resume is offered, on checkpoint folders built by hand (no training): files complete,
safetensors readable, the step the folder's, the optimiser state there; and what Resume would do for a run in
each state. ``studio train --resume`` of a finished run says there is nothing to resume and leaves it alone."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from core.cli import main
from core.config import JobConfig
from core.runs import RunDir, check_checkpoint, resume_check


def checkpoint(root, step: int, **state):
    """A checkpoint folder as the Trainer writes it (tiny tensors)."""
    folder = root / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.ones(64, 64)}, str(folder / "model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"state": torch.zeros(16)}, folder / name)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 120, **state}))
    return folder


def cut(path, keep: float = 0.5):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def a_run(tmp_path, status: str, strategy: str = "full") -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir(exist_ok=True)
    JobConfig(task="text-classification", model="minilm-l6", strategy=strategy).save(run.config)
    run.write_status(status, f"It is {status}.")
    return run


def test_a_whole_checkpoint_passes(tmp_path):
    assert check_checkpoint(checkpoint(tmp_path, 40)) is None


@pytest.mark.parametrize("damage, problem", [
    (lambda f: cut(f / "model.safetensors"), "model.safetensors is unreadable"),
    (lambda f: cut(f / "optimizer.pt"), "optimizer.pt is cut short"),
    (lambda f: (f / "optimizer.pt").unlink(), "optimizer.pt is missing"),
    (lambda f: (f / "rng_state.pth").unlink(), "random-number state (rng_state.pth) is missing"),
    (lambda f: cut(f / "trainer_state.json", 0.4), "trainer_state.json is cut short"),
    (lambda f: (f / "trainer_state.json").write_text(json.dumps({"global_step": 39})), "says step 39, not 40"),
    (lambda f: (f / "model.safetensors").unlink(), "holds no weights"),
])
def test_a_damaged_checkpoint_says_what_is_wrong(tmp_path, damage, problem):
    folder = checkpoint(tmp_path, 40)
    damage(folder)
    assert problem in check_checkpoint(folder)


def test_the_newest_sound_checkpoint_is_the_resume_point(tmp_path):
    run = a_run(tmp_path, "interrupted")
    checkpoint(run.path, 40)
    cut(checkpoint(run.path, 80) / "optimizer.pt")
    (run.checkpoints / ".staging" / "checkpoint-120").mkdir(parents=True)  # a save the kill cut short
    point = run.resume_point()
    assert point.checkpoint.name == "checkpoint-40" and point.step == 40
    assert point.describe() == ("checkpoint-80 is damaged (optimizer.pt is cut short), so it is skipped. "
                                "Resuming from checkpoint-40.")
    check = resume_check(run)
    assert check.can_resume and check.step == 40 and check.total_steps == 120
    assert "checkpoint-80 is damaged" in check.reason and "goes on from step 40 of 120" in check.reason


@pytest.mark.parametrize("status, strategy, with_checkpoint, can, words", [
    ("completed", "full", True, False, "nothing to resume"),
    ("training", "full", True, False, "still going"),
    ("failed", "full", False, False, "failed before saving a checkpoint"),
    ("failed", "full", True, True, "goes on from step 40"),
    ("stopped", "full", False, True, "ended before its first checkpoint"),
    ("interrupted", "head-only", False, True, "keeps no checkpoints"),
])
def test_what_resume_would_do_for_a_run_in_each_state(tmp_path, status, strategy, with_checkpoint, can, words):
    run = a_run(tmp_path, status, strategy)
    if with_checkpoint:
        checkpoint(run.path, 40)
    check = resume_check(run, keeps_checkpoints=strategy != "head-only")
    assert (check.can_resume, check.status) == (can, status) and words in check.reason, check.reason


def test_resuming_a_finished_run_from_the_command_line_leaves_it_alone(tmp_path, home, capsys):
    run = a_run(tmp_path, "completed")
    before = run.status_file.read_text()
    assert main(["train", "--resume", str(run.path), "--home", str(home.root)]) == 0
    out = capsys.readouterr().out
    assert "there is nothing to resume" in out and "studio train" in out
    assert run.status_file.read_text() == before and not run.metrics.exists()


def test_the_runner_refuses_to_train_over_a_finished_run(tmp_path, home):
    from core.config import ConfigError
    from core.engine.runner import run_job

    run = a_run(tmp_path, "completed")
    with pytest.raises(ConfigError, match="nothing to resume"):
        run_job(None, home, run=run, resume=True)
    assert run.read_status()["status"] == "completed"
