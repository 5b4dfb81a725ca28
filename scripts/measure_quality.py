"""Measure the studio's defaults on an unseen test set built by ``scripts/quality_sets.py`` (issue 15).

For one set: write a config with no strategy (the default) and the default preset, run ``studio train`` on the
training part, then ``studio eval RUN --data TEST``, and fit the outside baselines the issue names on the same
rows (RBF SVM on raw pixels for images; logistic regression on frozen mean-pooled MiniLM for texts) so that one
line says tuned vs every baseline. Prints one JSON line and appends it to ``<out>/results.jsonl``, with the load
average (the machine is shared: times move with it).

    .venv/bin/python scripts/measure_quality.py digits [--out /tmp/studio-quality] [--set train.replay=0]

``--set`` changes one setting of the default config (as ``studio train --set`` does), to measure it beside the
default; the row names what was set.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE_SETS = {"digits", "glyphs", "icons", "icons-families"}
CHAT_SETS = {"debian-chat", "debian-summary", "man-chat"}


def config_for(name: str, out: Path) -> Path:
    if name in IMAGE_SETS:
        body = f"task: image-classification\nmodel: efficientnet-lite0\ndata:\n  path: {out / name / 'train'}\n"
    elif name in CHAT_SETS:
        body = f"task: chat\nmodel: smollm2-135m-instruct\ndata:\n  path: {out / name / 'train.csv'}\n"
    else:
        body = f"task: text-classification\nmodel: minilm-l6\ndata:\n  path: {out / name / 'train.csv'}\n"
    path = out / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def studio(*args: str, env: dict) -> str:
    done = subprocess.run([str(REPO / ".venv" / "bin" / "studio"), *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"studio {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def outside_baselines(name: str, out: Path) -> dict:
    """The baselines the issue compares with, fitted on the whole training part, scored on the test part."""
    import numpy as np

    if name in IMAGE_SETS:
        from sklearn.svm import SVC

        from core.models.classical import pixels
        train, y_train = _folder(out / name / "train")
        test, y_test = _folder(out / name / "test")
        model = SVC(kernel="rbf", gamma="scale").fit(pixels(train), y_train)
        return {"rbf_svm_pixels": float((model.predict(pixels(test)) == np.asarray(y_test)).mean())}
    from sklearn.linear_model import LogisticRegression

    from core.home import Home
    from core.models import resolve_model
    from core.models.backbones import load_text_encoder
    train, y_train = _csv(out / name / "train.csv")
    test, y_test = _csv(out / name / "test.csv")
    encoder = load_text_encoder(resolve_model("minilm-l6", Home.resolve(), task="text-classification"))
    model = LogisticRegression(max_iter=3000).fit(encoder.embed(train).numpy(), y_train)
    return {"logreg_frozen_minilm": float((model.predict(encoder.embed(test).numpy()) == np.asarray(y_test)).mean())}


def _folder(root: Path) -> tuple[list[str], list[str]]:
    """Images and their class: the top folder under ``root`` (a class folder may hold a subfolder per group)."""
    paths = sorted(root.glob("*/**/*.png"))
    return [str(p) for p in paths], [p.relative_to(root).parts[0] for p in paths]


def _csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    return [r[0] for r in rows], [r[1] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--out", default="/tmp/studio-quality")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting changed from the default (studio train --set)")
    args = parser.parse_args()
    out = Path(args.out)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STUDIO_HOME": os.environ.get("STUDIO_HOME", str(out / "home"))}
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    load_before = os.getloadavg()
    started = time.perf_counter()
    changes = [item for pair in args.set for item in ("--set", pair)]
    run = studio("train", str(config_for(args.name, out)), *changes, env=env).strip().splitlines()[-1]
    trained = time.perf_counter() - started
    test = out / args.name / ("test" if args.name in IMAGE_SETS else "test.csv")
    report = json.loads(studio("eval", run, "--data", str(test), env=env))
    row = {"set": args.name, "settings": args.set, "run": run, "train_s": round(trained, 1), "load_before": load_before,
           "load_after": os.getloadavg(), "tuned": report.get("tuned"), "examples": report.get("examples")}
    if args.name in CHAT_SETS:
        row.update(base=report.get("base"), change=report.get("change"), probe=report.get("probe"))
    else:
        row.update({key: report[key]["accuracy"] for key in ("majority", "base", "pixel_logreg", "tfidf_logreg")
                    if key in report})
        row.update(outside_baselines(args.name, out), winner=report.get("winner"),
                   verdict=report.get("verdict", {}).get("message"),
                   against_validation=report.get("against_validation"))
        board = report.get("search") or {}
        if board:  # how much of the search ran: on a busy machine the budget may cover only the first candidates
            states = [c.get("status") for c in board.get("candidates", [])]
            row["search"] = {"budget_s": board.get("budget_s"), "used_s": board.get("used_s"),
                             "scored": states.count("scored"), "skipped": states.count("skipped")}
    line = json.dumps(row)
    print(line)
    with open(out / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


if __name__ == "__main__":
    main()
