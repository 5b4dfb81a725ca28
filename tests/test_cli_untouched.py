"""Every CLI verb leaves the user's folder exactly as it was (issue 14): ``train`` from a config that sits beside
its data, then ``eval --data``, ``predict`` (default output and an explicit ``--out``), ``export --merged`` and
``--zip``, ``runs`` and ``train --resume`` of the finished run. Only the files a command was told to write appear,
and only where it was told; every other path keeps its size, modification time and content.
"""
from __future__ import annotations

import json
import time

from core.cli import main
from tests.test_data_untouched import snapshot
from tests.test_hardening_support import text_csv, tiny_bert


def test_every_verb_writes_only_what_it_was_told_to_and_only_there(tmp_path, capsys):
    bert = tiny_bert(tmp_path / "models" / "bert")
    user = tmp_path / "my data"
    user.mkdir()
    text_csv(user / "tickets.csv", rows=60)
    text_csv(user / "new tickets.csv", rows=30, seed=7)
    (user / "job.yaml").write_text(  # a relative data path: read against the config's own folder
        f"task: text-classification\nmodel: {bert}\nstrategy: lora\ndata:\n  path: tickets.csv\n"
        "train:\n  max_steps: 4\n  threads: 2\n", encoding="utf-8")
    home, out = tmp_path / "home", tmp_path / "elsewhere"
    before = snapshot(user)
    time.sleep(0.01)  # a write now would change an mtime

    assert main(["--home", str(home), "train", str(user / "job.yaml")]) == 0
    run = next(p for p in (home / "runs").iterdir() if (p / "config.yaml").is_file())
    capsys.readouterr()
    assert main(["--home", str(home), "eval", str(run), "--data", str(user / "new tickets.csv")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "accuracy" in report["tuned"] and report["split"] == "file"  # every row of the file, not a split
    assert main(["--home", str(home), "predict", str(run), "--data", str(user / "new tickets.csv")]) == 0
    assert main(["--home", str(home), "predict", str(run), "--data", str(user / "tickets.csv"),
                 "--out", str(user / "labelled.csv")]) == 0
    assert main(["--home", str(home), "export", str(run), "--merged", str(out / "merged")]) == 0
    assert main(["--home", str(home), "export", str(run), "--zip", str(out)]) == 0
    assert main(["--home", str(home), "runs"]) == 0
    main(["--home", str(home), "train", "--resume", str(run)])  # a finished run: it says so, and writes nothing

    after = snapshot(user)
    assert set(after) - set(before) == {"labelled.csv"}  # the one file it was told to write there
    del after["labelled.csv"]
    assert after == before
    assert list((home / "predictions").rglob("*.csv")), "the default prediction goes into the studio home"
    assert (out / "merged" / "config.json").is_file() and list(out.glob("*.zip"))
