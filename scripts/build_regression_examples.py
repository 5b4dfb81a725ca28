"""Build the bundled regression examples, and unseen test sets to measure regressors on.

Bundled (``assets/examples``, committed):

- ``debian_sizes.csv``: 800 Debian packages (one per source package, from the bookworm main archive index apt
  keeps): the package's name, one-line synopsis and the first paragraph of its description (as ``apt show``
  begins), and how much disk it takes once installed, as ``size_log10_kb`` (log10 of the ``Installed-Size`` field in kB: 3.0 is 1 MB, 5.0 is 100 MB).
  The description says a lot about the size (a transitional dummy package, a font, a game's data, a library, its
  documentation), but not everything: a real, noisy target. The texts come from the packages' own control files,
  free software under DFSG-free licences.
- ``shape_counts/``: 300 generated 64 px scenes and ``metadata.csv`` (``file_name``, ``circles``): how many circles
  are in each picture (1-12), drawn in random sizes and colours on random gradients with noise, among 0-4
  squares and triangles that do not count. The Hugging Face image-folder layout.

Unseen (``--unseen DIR``, not committed; nothing shared with the bundled files or between train and test):

- ``debian-sizes/{train,test}.csv``: 800 / 800 other packages (source packages disjoint from the bundled ones and
  from each other).
- ``digit-values/{train,test}/``: scikit-learn's real handwritten digit scans (none of the 500 in
  ``assets/examples/digits``) with ``metadata.csv`` giving the digit written as a number, 300 / 500.
- ``shape-counts/{train,test}/``: 300 / 500 scenes from other seeds.

    .venv/bin/python scripts/build_regression_examples.py [--unseen /tmp/studio-regression]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "assets" / "examples"
sys.path.insert(0, str(REPO / "scripts"))

from quality_sets import _one_per_source, debian_packages  # noqa: E402

SEED = 18
SIDE = 64
TEXT_CHARS = 320


# --- Debian package sizes -----------------------------------------------------------------------------
def size_rows(packages: list[dict]) -> list[dict]:
    """Packages with a size and a description of some length, one per source package."""
    rows = []
    for p in packages:
        size = int(p.get("Installed-Size", "0") or 0)
        if size <= 0 or len(p.get("long", "")) < 40:
            continue
        text = f"{p['Package']}: {p['synopsis'].rstrip('.')}. {_clip(p['long'], TEXT_CHARS)}"
        rows.append({"Package": p["Package"], "text": text, "target": round(math.log10(size), 3),
                     "source": p["source"]})
    return _one_per_source(rows, random.Random(SEED))


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + " ..."


def write_sizes(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["description", "size_log10_kb"])
        for row in rows:
            writer.writerow([row["text"], row["target"]])


# --- shape counts -------------------------------------------------------------------------------------
def scene(rng: random.Random):
    """A picture with 1-12 circles among 0-4 squares and triangles; (image, number of circles)."""
    from PIL import Image, ImageDraw, ImageFilter

    big = SIDE * 4  # drawn large, then shrunk: smooth edges
    top, bottom = _colour(rng, 150, 255), _colour(rng, 120, 255)
    gradient = np.linspace(0, 1, big)[:, None, None]
    pixels = (np.array(top) * (1 - gradient) + np.array(bottom) * gradient) * np.ones((big, big, 3))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    count, distractors = rng.randint(1, 12), rng.randint(0, 4)
    placed: list[tuple[float, float, float]] = []
    shapes = ["circle"] * count + [rng.choice(["square", "triangle"]) for _ in range(distractors)]
    rng.shuffle(shapes)
    drawn = 0
    for kind in shapes:
        spot = _free_spot(rng, placed, big)
        if spot is None:
            continue
        x, y, r = spot
        colour = _colour(rng, 0, 200)
        if kind == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
            drawn += 1
        elif kind == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2))).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 10), (SIDE, SIDE, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)), drawn


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return tuple(rng.randint(low, high) for _ in range(3))


def _free_spot(rng: random.Random, placed: list, big: int):
    """A centre and radius that overlaps nothing drawn yet (None after 200 tries)."""
    for _ in range(200):
        r = rng.uniform(0.035, 0.085) * big
        x, y = rng.uniform(r + 2, big - r - 2), rng.uniform(r + 2, big - r - 2)
        if all((x - a) ** 2 + (y - b) ** 2 > (r + c + 6) ** 2 for a, b, c in placed):
            placed.append((x, y, r))
            return x, y, r
    return None


def write_scenes(folder: Path, n: int, seed: int) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        image, count = scene(rng)
        name = f"scene_{i:04d}.png"
        image.save(folder / name, optimize=True)
        rows.append((name, count))
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_name", "circles"])
        writer.writerows(rows)
    counts = [c for _, c in rows]
    return {"images": n, "mean": round(float(np.mean(counts)), 2), "min": min(counts), "max": max(counts)}


# --- digit values (unseen only) -------------------------------------------------------------------------
def write_digit_values(out: Path, n_train: int = 300, n_test: int = 500) -> dict:
    """Real digit scans not in the bundled digits example, with the digit as a number in metadata.csv."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    bundled = {int(p.stem.split("_")[1]) for p in (EXAMPLES / "digits").glob("*/*.png")}
    seen = {digits.images[i].tobytes() for i in bundled}
    free = [i for i in range(len(digits.images)) if i not in bundled and digits.images[i].tobytes() not in seen]
    random.Random(SEED).shuffle(free)
    for split, chosen in (("train", free[:n_train]), ("test", free[n_train:n_train + n_test])):
        folder = out / "digit-values" / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in chosen:
            pixels = (255 - digits.images[i] / 16.0 * 255).round().astype(np.uint8)
            name = f"digit_{i:04d}.png"
            Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.BICUBIC).save(folder / name)
            rows.append((name, int(digits.target[i])))
        with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file_name", "digit"])
            writer.writerows(rows)
    return {"train": n_train, "test": n_test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unseen", help="also build the unseen test sets into this folder")
    parser.add_argument("--rows", type=int, default=800, help="bundled Debian rows")
    args = parser.parse_args()
    rows = size_rows(debian_packages())
    random.Random(SEED).shuffle(rows)
    bundled = rows[:args.rows]
    write_sizes(EXAMPLES / "debian_sizes.csv", bundled)
    print("debian_sizes.csv", len(bundled), "rows")
    print("shape_counts", json.dumps(write_scenes(EXAMPLES / "shape_counts", 300, SEED)))
    if not args.unseen:
        return
    out = Path(args.unseen)
    rest = rows[args.rows:]
    train, test = rest[:800], rest[800:1600]
    assert not {r["source"] for r in train} & {r["source"] for r in test} & {r["source"] for r in bundled}
    write_sizes(out / "debian-sizes" / "train.csv", train)
    write_sizes(out / "debian-sizes" / "test.csv", test)
    print("debian-sizes", len(train), len(test))
    print("shape-counts train", json.dumps(write_scenes(out / "shape-counts" / "train", 300, SEED + 1)))
    print("shape-counts test", json.dumps(write_scenes(out / "shape-counts" / "test", 500, SEED + 2)))
    print("digit-values", json.dumps(write_digit_values(out)))


if __name__ == "__main__":
    main()
