"""Head-only classifiers on the shipped examples: time per epoch with cached features against re-running the
backbone every epoch, end-to-end time to a trained head, and accuracy against the baselines.

    .venv/bin/python bench/classifiers.py --digits assets/examples/digits \
        --text assets/examples/support_tickets.csv --json bench-classifiers.json

Each job runs through ``core.engine.runner.run_job`` exactly as the studio runs it (data checks, presets,
feature caching, depth choice, head training, evaluation, model card), in a temporary studio home.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from core.config import DataConfig, JobConfig, TrainConfig  # noqa: E402
from core.engine.classify.features import compute
from core.models.encoders import load_encoder  # noqa: E402
from core.engine.classify.head import HeadSettings, fit_head  # noqa: E402
from core.engine.events import ListSink  # noqa: E402
from core.engine.runner import run_job  # noqa: E402
from core.home import Home  # noqa: E402


def bench(task: str, model: str, path: str, home: Home, preset: str) -> dict:
    """Run one head-only job end to end, then time a cached and an uncached epoch on the same split."""
    from core.data import load_data
    from core.models import resolve_model

    config = JobConfig(task=task, model=model, strategy="head-only", data=DataConfig(path=str(path)),
                       train=TrainConfig(preset=preset), name=f"bench-{task}")
    sink = ListSink()
    started = time.perf_counter()
    run = run_job(config, home, [sink])
    end_to_end = time.perf_counter() - started
    report = run.read_eval() or {}
    filled = JobConfig.load(run.config)
    head_config = json.loads((run.model / "head_config.json").read_text())
    trained_at = max(e["elapsed_s"] for e in sink.of_type("train"))

    data = load_data(str(path), task=task, seed=filled.train.seed)
    column = "image" if task == "image-classification" else "text"
    items, labels = list(data.train[column]), list(data.train["label"])
    encoder = load_encoder(resolve_model(model, home, task=task), task, image_size=head_config.get("input_size"),
                           max_length=filled.train.max_length)
    tap = int(head_config["tap_index"])
    t0 = time.perf_counter()
    features = compute(encoder, items)[tap]
    backbone_pass = time.perf_counter() - t0
    epochs = int(filled.train.epochs)
    settings = HeadSettings(epochs=epochs, learning_rate=filled.train.learning_rate,
                            batch_size=filled.train.batch_size, seed=filled.train.seed)
    t0 = time.perf_counter()
    fit_head(features, labels, len(data.labels), settings)
    cached_epoch = (time.perf_counter() - t0) / epochs
    uncached_epoch = backbone_pass + cached_epoch
    wide = wide_fit(features, items, labels, len(data.labels)) if task == "text-classification" else None
    return {
        **({"wide_fit": wide} if wide else {}),
        "task": task, "model": model, "data": str(path), "train_examples": len(items),
        "validation_examples": report.get("examples"), "epochs": epochs,
        "learning_rate": filled.train.learning_rate, "batch_size": filled.train.batch_size,
        "tap": head_config["tap_name"], "input_size": head_config.get("input_size"),
        "end_to_end_s": round(end_to_end, 2), "trained_head_at_s": round(trained_at, 2),
        "cached_epoch_s": round(cached_epoch, 4), "uncached_epoch_s": round(uncached_epoch, 3),
        "speedup": round(uncached_epoch / cached_epoch, 1),
        "accuracy": report.get("tuned", {}).get("accuracy"), "macro_f1": report.get("tuned", {}).get("macro_f1"),
        "baselines": {k: report[k]["accuracy"] for k in ("base", "majority", "tfidf_logreg", "pixel_logreg")
                      if k in report},
        "run": str(run.path),
    }


def wide_fit(features: torch.Tensor, texts: list, labels: list, n_classes: int, rounds: int = 3) -> dict:
    """Logistic regression (the search's L-BFGS fit) on the network's features beside TF-IDF, the view the search
    tries first, with the TF-IDF columns multiplied densely and through ``fitting.Rows``'s split: best of
    ``rounds`` each. The split is forced on here (these rows may be under ``SPARSE_MIN_ELEMENTS``)."""
    from core.engine.classify import fitting
    from core.models.classical import TfidfFeatures

    dense = (features - features.mean(0)) / features.std(0).clamp_min(1e-3) / features.shape[1] ** 0.5
    x = torch.cat([dense.float(), TfidfFeatures().fit(texts).transform(texts)], dim=1)
    y = torch.tensor([int(v) for v in labels])
    times = {}
    for name, threshold in (("dense", 10 ** 15), ("split", 0)):
        fitting.SPARSE_MIN_ELEMENTS, kept = threshold, fitting.SPARSE_MIN_ELEMENTS
        try:
            best = float("inf")
            for _ in range(rounds):
                t0 = time.perf_counter()
                fitting.fit_body(x, y, n_classes, fitting.HeadSpec(l2=1e-3))
                best = min(best, time.perf_counter() - t0)
            times[name] = best
        finally:
            fitting.SPARSE_MIN_ELEMENTS = kept
    return {"rows": int(x.shape[0]), "columns": int(x.shape[1]), "dense_s": round(times["dense"], 4),
            "split_s": round(times["split"], 4), "speedup": round(times["dense"] / times["split"], 2)}


def show(result: dict) -> None:
    print(f"\n{result['task']} on {result['data']} with {result['model']} "
          f"({result['train_examples']} train / {result['validation_examples']} validation)")
    print(f"  preset: {result['epochs']} epochs, lr {result['learning_rate']}, batch {result['batch_size']}; "
          f"tap {result['tap']}" + (f", input {result['input_size']} px" if result["input_size"] else ""))
    print(f"  epoch with cached features: {result['cached_epoch_s'] * 1000:.1f} ms; re-running the backbone: "
          f"{result['uncached_epoch_s']:.2f} s ({result['speedup']}x)")
    print(f"  end to end: {result['end_to_end_s']:.1f} s (head trained at {result['trained_head_at_s']:.1f} s)")
    baselines = ", ".join(f"{k} {v:.3f}" for k, v in result["baselines"].items())
    print(f"  accuracy {result['accuracy']:.3f} (macro-F1 {result['macro_f1']:.3f}); baselines: {baselines}")
    wide = result.get("wide_fit")
    if wide:
        print(f"  logistic regression on {wide['rows']} rows x {wide['columns']} network + TF-IDF columns: "
              f"{wide['dense_s']:.3f} s dense, {wide['split_s']:.3f} s split ({wide['speedup']}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", help="an image folder with one subfolder per class")
    parser.add_argument("--text", help="a text-classification CSV")
    parser.add_argument("--image-model", default="efficientnet-lite0")
    parser.add_argument("--text-model", default="minilm-l6")
    parser.add_argument("--preset", default="balanced", choices=("quick", "balanced", "thorough"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the studio's choice)")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args(argv)
    if not args.digits and not args.text:
        parser.error("give --digits and/or --text")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.resolve(tmp)
        if args.digits:
            results.append(bench("image-classification", args.image_model, args.digits, home, args.preset))
            show(results[-1])
        if args.text:
            results.append(bench("text-classification", args.text_model, args.text, home, args.preset))
            show(results[-1])
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": torch.get_num_threads(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
