"""Data at scale: ``core.data.load_data`` (read, check, split, statistics with the MiniLM tokenizer) on a
generated text-classification CSV and on a folder of small PNGs, at several sizes, each size in its own process
so its peak memory is its own. The per-row cost at each size shows whether the cost grows linearly.

    .venv/bin/python -m bench.data_scale [--quick] [--json out.json]
"""
from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

from .common import Target, peak_rss_mb, row, rss_mb, run_module, scratch_dir, section_main, timed

SECTION = "data"
CSV_SIZES, CSV_SIZES_QUICK = (10_000, 25_000, 100_000), (500, 2_000)
IMAGE_SIZES, IMAGE_SIZES_QUICK = (1_000, 5_000), (50, 200)
CSV_TARGET_S = 10.0  # the target for 100,000 rows
LINEAR_SLACK = 1.5  # per-row cost at the largest size may exceed the smallest's this much before it is super-linear
CHILD_TIMEOUT_S = 600

CLASSES = {
    "billing": "invoice charge refund payment card receipt subscription price overcharged bank",
    "shipping": "parcel delivery courier tracking package address arrived late warehouse driver",
    "technical": "error crash update app firmware restart screen battery bluetooth connection",
    "account": "password login email profile username locked verification settings security two-factor",
    "returns": "return exchange label unopened damaged replacement box collection policy days",
    "sales": "discount quote bulk order business availability stock colour model compare",
    "warranty": "warranty repair broken guarantee serial registration fault covered claim years",
    "feedback": "love great suggestion improve design feature happy disappointed review recommend",
}
FILLER = ("hello hi thanks please could you help me with my order I would like to know why the it was is not "
          "working since last week yesterday again still really very quite the a an and but so because when "
          "after before today morning evening I have tried everything already can someone look into this").split()


# --- generated data --------------------------------------------------------------------------------------
def write_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """A support-ticket CSV: ``text`` (two to five sentences, ~500 bytes) and ``label`` (eight classes)."""
    rng = random.Random(seed)
    names = list(CLASSES)
    topic_words = {k: v.split() for k, v in CLASSES.items()}
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(rows):
            label = rng.choice(names)
            sentences = []
            for _ in range(rng.randint(4, 9)):
                words = rng.choices(FILLER, k=rng.randint(6, 14)) + rng.choices(topic_words[label], k=3)
                rng.shuffle(words)
                sentences.append(" ".join(words).capitalize() + rng.choice(".!?"))
            writer.writerow([" ".join(sentences), label])
    return path


def write_images(folder: Path, count: int, classes: int = 10, seed: int = 0) -> Path:
    """``count`` 32 px PNGs in ``classes`` subfolders: a filled shape whose size and colour depend on the class."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    for c in range(classes):
        (folder / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        c = i % classes
        image = Image.new("RGB", (32, 32), tuple(rng.randint(0, 60) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        size = 6 + 2 * c + rng.randint(-2, 2)
        x, y = rng.randint(0, 31 - size), rng.randint(0, 31 - size)
        colour = (25 * c, 255 - 20 * c, rng.randint(100, 255))
        (draw.ellipse if c % 2 else draw.rectangle)((x, y, x + size, y + size), fill=colour)
        image.save(folder / f"class_{c}" / f"{i:06d}.png")
    return folder


# --- one measurement (in its own process) ------------------------------------------------------------------
def measure_one(kind: str, path: str) -> dict:
    """Time ``load_data`` on one file or folder; the tokenizer is loaded first and not counted."""
    from core.data import load_data
    from core.home import Home
    from core.models import load_tokenizer, resolve_model

    tokenizer = None
    with scratch_dir("tok") as tmp:
        if kind == "csv":
            tokenizer = load_tokenizer(resolve_model("minilm-l6", Home.resolve(tmp), task="text-classification"))
        task = "text-classification" if kind == "csv" else "image-classification"
        before = rss_mb()
        with timed() as t:
            data = load_data(path, task=task, tokenizer=tokenizer, max_length=256 if tokenizer else None)
    rows = data.summary.get("rows", {})
    return {"kind": kind, "seconds": t["s"], "rows_read": rows.get("read"), "train": rows.get("train"),
            "validation": rows.get("validation"), "ok": data.report.ok,
            "errors": [p.message for p in data.report.errors], "warnings": len(data.report.warnings),
            "has_token_lengths": "token_lengths" in data.summary, "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


# --- the section ------------------------------------------------------------------------------------------
def run(quick: bool, one: str | None = None, path: str | None = None) -> dict:
    """All sizes (or, with ``one``, a single measurement of ``path``); see the module docstring."""
    if one:
        result = measure_one(one, path)
        return {"rows": [row(SECTION, f"{one} {result['rows_read']}", result["seconds"], "s")], "details": result}
    csv_sizes = CSV_SIZES_QUICK if quick else CSV_SIZES
    image_sizes = IMAGE_SIZES_QUICK if quick else IMAGE_SIZES
    rows, details = [], {"csv": [], "images": []}
    with scratch_dir("data") as tmp:
        tmp = Path(tmp)
        for n in csv_sizes:
            file = write_csv(tmp / f"tickets_{n}.csv", n)
            details["csv"].append(_child("csv", file, n, tmp))
            file.unlink()
        for n in image_sizes:
            details["images"].append(_child("images", write_images(tmp / f"images_{n}", n), n, tmp))
    rows += _rows("csv", "CSV rows", details["csv"], CSV_SIZES[-1] if not quick else None)
    rows += _rows("images", "images", details["images"], None)
    return {"rows": rows, "details": details}


def _child(kind: str, path: Path, n: int, tmp: Path) -> dict:
    size_mb = (path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*.png"))) / 2**20
    folder = tmp / f"{kind}_{n}_out"
    folder.mkdir()
    result, error, _ = run_module("bench.data_scale", ["--one", kind, "--path", str(path)], CHILD_TIMEOUT_S, folder)
    if error:
        return {"size": n, "error": error, "file_mb": round(size_mb, 1)}
    one = result["details"]
    one.update(size=n, file_mb=round(size_mb, 1), us_per_row=one["seconds"] / n * 1e6)
    if not one["ok"]:
        one["error"] = "the data was rejected: " + "; ".join(one["errors"])[:200]
    return one


def _rows(kind: str, label: str, results: list[dict], target_size: int | None) -> list[dict]:
    rows = []
    for r in results:
        name = f"load_data: {r['size']:,} {label}" + (f" ({r['file_mb']:.0f} MB)" if kind == "csv" else "")
        if r.get("error"):
            rows.append(row(SECTION, name, f"failed: {r['error']}"))
            continue
        target = Target("<", CSV_TARGET_S) if r["size"] == target_size else None
        growth = r["peak_rss_mb"] - r["rss_before_mb"]
        rows.append(row(SECTION, name, r["seconds"], "s", target,
                        f"{r['us_per_row']:.0f} us/row; peak RSS {r['peak_rss_mb']:.0f} MB "
                        f"(+{growth:.0f} MB over the process before loading)"))
    good = [r for r in results if not r.get("error")]
    if len(good) >= 2:
        ratio = good[-1]["us_per_row"] / good[0]["us_per_row"]
        marginal = ((good[-1]["seconds"] - good[-2]["seconds"]) / (good[-1]["size"] - good[-2]["size"]) * 1e6)
        rows.append(row(SECTION, f"{label}: per-row cost at {good[-1]['size']:,} / at {good[0]['size']:,}", ratio,
                        "x", Target("<=", LINEAR_SLACK),
                        f"<= 1 is linear or better (fixed costs amortised); marginal {marginal:.0f} us/row "
                        f"from {good[-2]['size']:,} to {good[-1]['size']:,}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--one", choices=("csv", "images"), default=None, help="measure one file (internal)")
        parser.add_argument("--path", default=None, help="the file or folder for --one")
    return section_main(SECTION, run, argv, extra)


if __name__ == "__main__":
    sys.exit(main())
