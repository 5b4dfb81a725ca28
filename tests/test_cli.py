"""The `studio` command: help, the catalog listing, and clear refusals of bad arguments."""
import subprocess
import sys

from core.cli import main
from tests.conftest import REPO


def test_help_lists_every_subcommand():
    result = subprocess.run([sys.executable, "-m", "core.cli", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for command in ("ui", "models", "runs", "train", "eval", "export", "--home"):
        assert command in result.stdout


def test_models_lists_the_catalog_with_offline_status(home, capsys):
    assert main(["models", "--home", str(home.root)]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct *" in out and "minilm-l6 *" in out and "efficientnet-lite0 *" in out
    assert "ready offline" in out and "needs a download" in out


def test_home_option_and_environment_choose_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "from-env"))
    assert main(["runs"]) == 0
    assert str(tmp_path / "from-env") in capsys.readouterr().out
    assert main(["runs", "--home", str(tmp_path / "from-flag")]) == 0
    assert str(tmp_path / "from-flag") in capsys.readouterr().out


def test_train_without_a_config_says_what_to_give(home, capsys):
    assert main(["train", "--home", str(home.root)]) == 2
    assert "give a config.yaml" in capsys.readouterr().err


def test_train_with_a_bad_config_lists_every_problem(home, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: chat\nstrategy: head-only\ntrain:\n  epochs: -1\n")
    assert main(["train", str(bad), "--home", str(home.root)]) == 2
    err = capsys.readouterr().err
    assert "strategy 'head-only' does not apply to chat" in err and "train.epochs is -1" in err
    assert "data.path is empty" in err


def test_export_needs_a_target(home, capsys):
    assert main(["export", "somewhere", "--home", str(home.root)]) == 2
    assert "--merged OUT" in capsys.readouterr().err


def test_a_first_config_names_only_its_data(home, bert_dir, tmp_path, capsys):
    """The shortest config a new user writes: the task is read from the data as the page reads an upload (its
    reasons, not "as you chose"), the model and strategy are that task's; the end of the run is said once."""
    import json
    from pathlib import Path

    from tests.test_classify_support import WORDS, text_rows

    rows = text_rows(48, 1)
    (tmp_path / "tickets.csv").write_text("text,label\n" + "".join(
        f"{text},{list(WORDS)[label]}\n" for text, label in zip(rows["text"], rows["label"])))
    config = tmp_path / "job.yaml"
    config.write_text(f"model: {bert_dir}\ndata:\n  path: tickets.csv\ntrain:\n  preset: quick\n  threads: 1\n"
                      "  max_minutes: 0.3\n")
    assert main(["train", str(config), "--home", str(home.root)]) == 0
    printed = capsys.readouterr()
    run, out = Path(printed.out.strip().splitlines()[-1]), printed.err  # progress on stderr, the run folder on stdout
    assert run.name.endswith("-text-classification")
    saved = (run / "config.yaml").read_text()
    assert "task: text-classification" in saved and "strategy: auto" in saved
    assert "The task is text classification:" in out and "as you chose" not in out
    assert out.count("Finished: accuracy") == 1 and "fine-tune fine-tune" not in out
    assert json.loads((run / "eval.json").read_text())["task"] == "text-classification"

    (tmp_path / "odd.csv").write_text("x\n1\n2\n3\n")
    config.write_text("data:\n  path: odd.csv\n")
    assert main(["train", str(config), "--home", str(home.root)]) == 2
    err = capsys.readouterr().err  # numbers alone: no task would fit, so naming one is not offered
    assert "odd.csv has no column of text to learn from: 'x' holds numbers" in err and "names no task" not in err
    (tmp_path / "logged.csv").write_text("ticket_id,opened,body\n" + "".join(
        f"T{i},2024-01-{i + 1:02d},the customer wrote about issue {i} at length\n" for i in range(9)))
    config.write_text("data:\n  path: logged.csv\n")
    assert main(["train", str(config), "--home", str(home.root)]) == 2
    err = capsys.readouterr().err
    assert "names no task" in err and "task: text-classification" in err
    config.write_text("data:\n  path: tickets.csv\n  columns: {group: nosuch}\n")
    assert main(["train", str(config), "--home", str(home.root)]) == 2
    err = capsys.readouterr().err  # a column the config names is missing: said first, no talk of the task
    assert "data.columns: The group column 'nosuch' is not in" in err and "names no task" not in err


def test_eval_says_the_verdict_in_words_after_its_json():
    from core.cli import eval_summary

    classified = {"tuned": {"accuracy": 0.6}, "base": {"accuracy": 0.5},
                  "verdict": {"message": "No clear winner: 4 of 96 rows apart.", "try": ["score more labelled rows"]}}
    assert eval_summary(classified) == ["No clear winner: 4 of 96 rows apart.", "  Try: score more labelled rows"]
    chat = {"rows": 80, "base": {"eval_loss": 4.0}, "tuned": {"eval_loss": 2.76}, "change": {"eval_loss": -0.31},
            "probe": {"message": "Kept 110% of its general answers."}}
    assert eval_summary(chat) == ["Loss on the answers: 4.000 for the base, 2.760 tuned (-31.0%) on 80 rows.",
                                  "Kept 110% of its general answers."]
