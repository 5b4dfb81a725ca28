"""Scale-out is real: a saved config.yaml trains under `accelerate launch` with two processes (gloo on CPU).

accelerate 1.15 starts only one process for `--cpu --num_processes 2` (its multi-CPU path needs mpirun), so the
test launches with `--multi_gpu --num_processes 2` (torchrun underneath); with no GPU the studio tells
accelerate to use the CPU and the ranks talk over gloo.
"""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from core.config import JobConfig
from core.runs import list_runs
from tests.conftest import REPO
from tests.test_classify_support import text_rows, tiny_bert


@pytest.mark.slow
def test_a_saved_config_trains_one_model_on_two_ranks(tmp_path):
    model = tiny_bert(tmp_path / "tiny-bert")
    rows = text_rows(64, 3)
    csv = tmp_path / "topics.csv"
    names = ["sport", "weather", "food"]
    pd.DataFrame({"text": rows["text"], "topic": [names[i] for i in rows["label"]]}).to_csv(csv, index=False)
    config = JobConfig(task="text-classification", model=str(model), strategy="full", name="ddp")
    config.data.path = str(csv)
    config.train.max_steps = 4
    config.train.batch_size = 4
    config.train.learning_rate = 1e-3
    config.train.max_length = 32
    config.train.threads = 1
    config_path = config.save(tmp_path / "config.yaml")
    home = tmp_path / "home"

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "core.cli", "train", str(config_path), "--home", str(home)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MASTER_PORT": "29533"}
    result = subprocess.run(launch, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    runs = list_runs(home / "runs")
    assert len(runs) == 1, "both ranks must share one run folder"
    run = runs[0]
    assert result.stdout.strip().splitlines()[-1] == str(run.path)
    assert run.read_status()["status"] == "completed"
    ranks = [json.loads((run.path / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    # DDP keeps one model: the two ranks end with the same weights.
    assert ranks[0]["trainable_checksum"] == pytest.approx(ranks[1]["trainable_checksum"], rel=1e-6)
    assert (run.model / "model.safetensors").is_file() or (run.model / "config.json").is_file()
    assert (run.eval).is_file()
