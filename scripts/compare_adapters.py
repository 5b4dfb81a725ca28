"""Compare the adapter strategies on the bundled examples: training time, peak memory and quality.

Each run is a real job (``studio train`` in its own process, the presets filling every setting the script does not
set), so the figures are what a user gets: the training time is the run's own (``train_elapsed_s`` of its last
step), the peak memory is the process's maximum resident set (``wait4``), and the quality is what the run's
``eval.json`` says on the validation split (chat: the answer-token loss, lower is better; text: accuracy).

    python scripts/compare_adapters.py                                  # chat and text, every adapter
    python scripts/compare_adapters.py --only chat --preset quick --lr ia3=3e-3,1e-2,3e-2 --strategies ia3
    python scripts/compare_adapters.py --out bench/adapters.json        # also write the rows as JSON

Chat runs on the Kettlebird support example with SmolLM2-135M-Instruct, text on the support tickets with
all-MiniLM-L6-v2 (prefix tuning is for chat models only). Learning rates are the presets' unless ``--lr`` names
others; several per strategy make a sweep.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.config import DataConfig, JobConfig, TrainConfig  # noqa: E402
from core.data.examples import example_path  # noqa: E402

SECTIONS = {
    "chat": ("chat", "smollm2-135m-instruct", "kettlebird-support", ("lora", "dora", "rslora", "ia3", "prefix")),
    "text": ("text-classification", "minilm-l6", "support-tickets", ("lora", "dora", "rslora", "ia3")),
}


def run_job(config: JobConfig, home: Path, workdir: Path) -> dict:
    """Train ``config`` with ``studio train`` in a child process; its run folder's figures and its peak RSS."""
    path = workdir / f"{config.task}-{config.strategy}-{config.train.learning_rate}.yaml"
    config.save(path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "core.cli", "train", str(path), "--home", str(home)], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.strip()]
    run = Path(lines[-1]) if lines else None
    if child.returncode != 0 or run is None or not (run / "eval.json").is_file():
        return {"failed": True, "wall_s": round(wall, 1), "output": "\n".join(lines[-5:])}
    return {"run": str(run), "wall_s": round(wall, 1), "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),
            **_figures(run)}


def _figures(run: Path) -> dict:
    report = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line]
    steps = [e for e in events if e.get("type") == "train" and "train_elapsed_s" in e]
    log = (run / "train.log").read_text(encoding="utf-8", errors="replace")
    trained = next((line.split("Training ", 1)[1] for line in log.splitlines() if "Training " in line
                    and " parameters" in line and " of " in line), "")
    figures = {"train_s": round(steps[-1]["train_elapsed_s"], 1) if steps else None, "trainable": trained.strip()}
    tuned, base = report.get("tuned", {}), report.get("base", {})
    if "eval_loss" in base:  # chat: answer-token loss on the validation conversations
        figures.update(base_loss=round(base["eval_loss"], 4), eval_loss=round(tuned["eval_loss"], 4))
    if "accuracy" in tuned:
        figures.update(accuracy=round(tuned["accuracy"], 4), macro_f1=round(tuned["macro_f1"], 4))
    return figures


def job(section: str, strategy: str, preset: str, lr: float | None) -> JobConfig:
    task, model, example, _ = SECTIONS[section]
    return JobConfig(task=task, model=model, strategy=strategy, name=f"compare-{strategy}",
                     data=DataConfig(path=str(example_path(example))),
                     train=TrainConfig(preset=preset, learning_rate=lr, seed=0))


def _learning_rates(spec: str | None) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for part in (spec or "").split(";"):
        if "=" in part:
            key, values = part.split("=", 1)
            out[key.strip()] = [float(v) for v in values.split(",") if v.strip()]
    return out


def _row(section: str, strategy: str, lr, result: dict) -> str:
    if result.get("failed"):
        return f"| {section} | {strategy} | {lr or 'preset'} | failed: {result['output'][-120:]} |"
    quality = (f"loss {result['base_loss']:.3f} -> {result['eval_loss']:.3f}" if "eval_loss" in result
               else f"accuracy {result['accuracy']:.3f} (macro-F1 {result['macro_f1']:.3f})")
    return (f"| {section} | {strategy} | {lr or 'preset'} | {result['train_s']} | {result['wall_s']} | "
            f"{result['peak_rss_gb']} | {quality} | {result['trainable']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="chat,text", help="sections: chat, text")
    parser.add_argument("--strategies", default="", help="comma-separated strategies (default: every adapter)")
    parser.add_argument("--preset", default="balanced", choices=("quick", "balanced", "thorough"))
    parser.add_argument("--lr", help="learning rates per strategy: 'ia3=3e-3,1e-2;prefix=1e-2' (default: preset)")
    parser.add_argument("--home", help="studio home (default: a temporary one; the SmolLM2 conversion is cached "
                                       "there, so reuse one across calls)")
    parser.add_argument("--out", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix="compare-adapters-"))
    workdir = Path(tempfile.mkdtemp(prefix="compare-configs-"))
    rates = _learning_rates(args.lr)
    wanted = [s for s in args.strategies.split(",") if s]
    rows = []
    print(f"load average before: {os.getloadavg()}", flush=True)
    print("| section | strategy | learning rate | training s | process s | peak RSS GB | quality | trained |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for section in [s for s in args.only.split(",") if s]:
        for strategy in SECTIONS[section][3]:
            if wanted and strategy not in wanted:
                continue
            for lr in rates.get(strategy, [None]):
                result = run_job(job(section, strategy, args.preset, lr), home, workdir)
                result.update(section=section, strategy=strategy, learning_rate=lr, preset=args.preset,
                              load_average=os.getloadavg()[0])
                rows.append(result)
                print(_row(section, strategy, lr, result), flush=True)
    print(f"load average after: {os.getloadavg()}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
