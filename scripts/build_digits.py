"""Build assets/examples/digits/<class>/*.png from scikit-learn's bundled handwritten digits.

The scans are 8x8 with values 0-16 (ink high); they are written as dark ink on white, upscaled to 32x32 with
bicubic smoothing. Deterministic: the first PER_CLASS images of each digit in the dataset's order.

    .venv/bin/python scripts/build_digits.py
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

PER_CLASS = 50
SIZE = 32
OUT = Path(__file__).resolve().parent.parent / "assets" / "examples" / "digits"


def main() -> None:
    digits = load_digits()
    shutil.rmtree(OUT, ignore_errors=True)
    counts = {d: 0 for d in range(10)}
    for index, (image, target) in enumerate(zip(digits.images, digits.target)):
        digit = int(target)
        if counts[digit] >= PER_CLASS:
            continue
        pixels = (255 - image / 16.0 * 255).round().astype(np.uint8)
        folder = OUT / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(pixels, mode="L").resize((SIZE, SIZE), Image.Resampling.BICUBIC)
        big.save(folder / f"{digit}_{index:04d}.png", optimize=True)
        counts[digit] += 1
    print(f"wrote {sum(counts.values())} images to {OUT}")


if __name__ == "__main__":
    main()
