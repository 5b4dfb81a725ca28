"""Build unseen, real test sets for measuring the studio's default classifiers and chat tuning (issue 15).

Nothing here is committed data: every set is built from sources on the machine into a folder you name
(default ``/tmp/studio-quality``), with a training part and a test part that share nothing.

- ``digits``: scikit-learn's bundled handwritten digit scans (8x8, upscaled to 32 px PNGs in class folders,
  drawn as the bundled example is: dark ink on white, bicubic), 300 train / 500 test, none of them among the
  500 scans in ``assets/examples/digits`` (checked by index and by pixels).
- ``glyphs``: the letters A-J rendered from the fonts installed on the machine (notMNIST-style), with random
  size, position, rotation, stroke blur and noise; the test letters come from font files never used for
  training. 300 train / 500 test.
- ``debian-sections``: Debian package short descriptions ("one-line synopsis") labelled with their archive
  section, 8 sections, 480 train / 320 test, at most one package per source package (``-dev``/``-doc``
  siblings of one source would leak across the split otherwise).
- ``debian-use``: the first paragraph of Debian long descriptions labelled with their debtags ``use::`` facet
  (8 uses), 480 train / 320 test, one package per source, sources disjoint from nothing else.
- ``debian-chat``: "What is the Debian package X for?" questions answered with the package's synopsis and the
  first sentence of its description, 300 train / 80 test.
- ``debian-summary``: "Write the one-line synopsis for this package description" with the first paragraph of a
  Debian long description as the question and the maintainer's own synopsis as the answer, 300 train / 80 test,
  sources disjoint: a task a model can learn from the rows (the synopsis says in a few words what the question's
  paragraph says), where ``debian-chat`` asks for facts about packages the test never trained on.
- ``man-chat``: "What does the option -z of tar do?" questions answered with the first sentence the installed
  manual page gives for that option (``man`` renders the pages under ``/usr/share/man/man1``), at most three
  options per command, 300 train / 80 test, the test rows from commands never seen in training. Unlike the
  Debian answers (a fact per package), these share a domain: options recur across commands (-v, --help,
  --quiet), as the questions of one team's own Q&A file would.

- ``man-sections``: the one-line description from a manual page's NAME section ("create an asynchronous I/O
  context") labelled with what its manual section says the page is (user command, system call, library function,
  file format, overview, admin command), read from the page sources under ``/usr/share/man/man{1,2,3,5,7,8}``;
  480 train / 318 test (80 / 53 per class), no description in two sections or two splits. Not Debian's
  index: another vocabulary and another author for every row.
- ``icons``: the desktop's own symbolic icons (the Adwaita theme under ``/usr/share/icons/Adwaita/64x64``: dark
  strokes on a transparent background, RGBA PNGs) labelled with the theme's context folder, which says what the
  icon stands for (an action, a status, a device, a place, a file type, an emote, an emblem, a UI part, an
  application category): all 9 contexts, 11 to 229 icons each. Copied as they are, transparency included, so the
  studio's own flattening is what gets tested. Icons are split by family (the first two words of the name:
  ``battery-level-10`` and ``battery-level-20`` go to the same side), about 60 % of each context's families
  for training, families that share a picture joined, one copy of each picture, none found in two contexts;
  the sizes are unbalanced as the theme is (status and actions are most of it).

- ``messages-language``: the translated messages programs print (the gettext catalogues under
  ``/usr/share/locale/*/LC_MESSAGES/*.mo``: "Datei nicht gefunden", "impossible d'ouvrir le fichier") labelled
  with their language, 8 languages written in the Latin alphabet with three close pairs among them (Danish and
  Swedish, Spanish, Portuguese and Italian, Dutch and German), 480 train / 320 test, messages of 4-25 words; the
  test messages come from programs none of whose catalogues were used for training. The studio's packaged text
  model learned English: this is a set where it may know the least.
- ``messages-program``: the English originals of those messages ("could not open file", "unable to lock the
  administration directory") labelled with the program that prints them (git, PostgreSQL, GnuPG, Kerberos,
  coreutils, dpkg, the C library, wget): routing an error message to the team that owns it. 480 train / 320 test,
  no message on both sides (compared without case and placeholders).

The Debian sets read the archive index apt keeps (``/var/lib/apt/lists/*_main_binary-amd64_Packages*``; run
``apt-get update`` once if it is missing).

    .venv/bin/python scripts/quality_sets.py [--out /tmp/studio-quality] [--only digits glyphs ...]
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import random
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

SETS = ("digits", "glyphs", "icons", "icons-families", "debian-sections", "debian-siblings", "debian-large", "debian-use", "debian-chat", "debian-summary", "man-chat",
        "man-sections", "messages-language", "messages-program")
REPO = Path(__file__).resolve().parent.parent
SEED = 15


# --- images -------------------------------------------------------------------------------------------
def build_digits(out: Path, n_train: int = 300, n_test: int = 500) -> dict:
    """Digit scans not in the bundled example, as class folders under out/digits/{train,test}."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    bundled = {int(p.stem.split("_")[1]) for p in (REPO / "assets" / "examples" / "digits").glob("*/*.png")}
    bundled_pixels = {digits.images[i].tobytes() for i in bundled}
    candidates = [i for i in range(len(digits.images))
                  if i not in bundled and digits.images[i].tobytes() not in bundled_pixels]
    rng = random.Random(SEED)
    by_class = defaultdict(list)
    for i in candidates:
        by_class[int(digits.target[i])].append(i)
    train, test = [], []
    for digit, items in sorted(by_class.items()):
        rng.shuffle(items)
        train += items[:n_train // 10]
        test += items[n_train // 10:n_train // 10 + n_test // 10]
    root = out / "digits"
    shutil.rmtree(root, ignore_errors=True)
    for split, items in (("train", train), ("test", test)):
        for i in items:
            pixels = (255 - digits.images[i] / 16.0 * 255).round().astype(np.uint8)
            folder = root / split / str(int(digits.target[i]))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.BICUBIC).save(
                folder / f"{int(digits.target[i])}_{i:04d}.png")
    assert not set(train) & set(test) and not (set(train) | set(test)) & bundled
    return {"train": len(train), "test": len(test), "excluded_bundled": len(bundled),
            "source": "sklearn.datasets.load_digits"}


def font_files() -> list[str]:
    """Installed TrueType/OpenType/Type1 fonts that can draw A-J, one per file, sorted."""
    paths = sorted({p for pattern in ("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/**/*.otf",
                                      "/usr/share/fonts/**/*.t1", "/usr/share/fonts/**/*.pfb")
                    for p in glob.glob(pattern, recursive=True)})
    from PIL import ImageFont

    usable = []
    for path in paths:
        try:
            font = ImageFont.truetype(path, 24)
            if all(font.getbbox(c)[2] > font.getbbox(c)[0] for c in "ABCDEFGHIJ"):
                usable.append(path)
        except Exception:  # a font PIL cannot read is skipped
            continue
    return usable


def render_glyph(letter: str, font_path: str, rng: random.Random, size: int = 28):
    """One grayscale glyph: random point size, offset, rotation, blur and noise; ink dark on white."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    canvas = Image.new("L", (size * 2, size * 2), 0)
    font = ImageFont.truetype(font_path, rng.randint(int(size * 0.65), int(size * 0.95)))
    draw = ImageDraw.Draw(canvas)
    box = draw.textbbox((0, 0), letter, font=font)
    x = (canvas.width - (box[2] - box[0])) / 2 - box[0] + rng.uniform(-3, 3)
    y = (canvas.height - (box[3] - box[1])) / 2 - box[1] + rng.uniform(-3, 3)
    draw.text((x, y), letter, fill=255, font=font)
    canvas = canvas.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR)
    canvas = canvas.crop((size // 2, size // 2, size // 2 + size, size // 2 + size))
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.9)))
    pixels = np.asarray(canvas, dtype=np.float32)
    pixels = 255 - pixels + np.random.default_rng(rng.randrange(2**31)).normal(0, 12, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def build_glyphs(out: Path, n_train: int = 300, n_test: int = 500) -> dict:
    """Letters A-J; the test fonts are font files the training split never saw."""
    fonts = font_files()
    if len(fonts) < 6:
        raise SystemExit(f"only {len(fonts)} usable fonts are installed: install more (apt-get install "
                         "fonts-urw-base35 fonts-freefont-ttf) to build the glyphs set.")
    rng = random.Random(SEED)
    shuffled = fonts[:]
    rng.shuffle(shuffled)
    cut = len(shuffled) // 2
    split_fonts = {"train": shuffled[:cut], "test": shuffled[cut:]}
    root = out / "glyphs"
    shutil.rmtree(root, ignore_errors=True)
    counts = {}
    for split, n in (("train", n_train), ("test", n_test)):
        per_class = n // 10
        for letter in "ABCDEFGHIJ":
            folder = root / split / letter
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                font = split_fonts[split][k % len(split_fonts[split])]
                render_glyph(letter, font, rng).save(folder / f"{letter}_{k:03d}.png")
        counts[split] = per_class * 10
    return {**counts, "train_fonts": len(split_fonts["train"]), "test_fonts": len(split_fonts["test"])}


ICON_THEME = Path("/usr/share/icons/Adwaita/64x64")
ICON_CONTEXTS = ("actions", "status", "devices", "emotes", "ui", "categories", "mimetypes", "places", "emblems")


def _icon_family(name: str) -> str:
    """``battery-level-10-charging-symbolic.symbolic.png`` -> ``battery-level``: icons drawn as variants of one."""
    return "-".join(name.split(".")[0].removesuffix("-symbolic").split("-")[:2])


def build_icons(out: Path, train_share: float = 0.6, families: bool = False) -> dict:
    """Symbolic icons in class folders by their theme context; families never straddle the split.

    The theme draws some icons twice under two names (``go-last-symbolic-rtl`` is ``go-first-symbolic``) or in
    two contexts: families that share a picture are joined, a picture found in two contexts is left out, and one
    copy of each picture is kept, so that every test icon is one the training folders do not hold. With
    ``families`` (the ``icons-families`` set) the same icons are written with each training family in a subfolder of
    its context folder (``train/status/battery-level/...``), as a user who keeps one object's pictures together
    would; the test folder stays flat.
    """
    if not ICON_THEME.is_dir():
        raise SystemExit(f"{ICON_THEME} is missing: install the theme (apt-get install adwaita-icon-theme).")
    rng = random.Random(SEED + 5)
    pictures: dict[str, list[tuple[str, Path]]] = defaultdict(list)  # content hash -> (context, file)
    for context in ICON_CONTEXTS:
        for path in sorted((ICON_THEME / context).glob("*symbolic*.png")):
            pictures[hashlib.sha256(path.read_bytes()).hexdigest()].append((context, path))
    parent: dict[str, str] = {}

    def root_of(family: str) -> str:
        while parent.setdefault(family, family) != family:
            family = parent[family]
        return family

    kept = []
    for copies in pictures.values():
        if len({context for context, _ in copies}) > 1:
            continue  # the same picture stands for two contexts: no label to learn
        families = [root_of(_icon_family(path.name)) for _, path in copies]
        for family in families[1:]:
            parent[family] = families[0]
        kept.append(copies[0])
    by_context: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for context, path in kept:
        by_context[context][root_of(_icon_family(path.name))].append(path)
    root = out / ("icons-families" if families else "icons")
    shutil.rmtree(root, ignore_errors=True)
    counts = {"train": 0, "test": 0}
    per_class = {}
    for context in ICON_CONTEXTS:
        members = by_context[context]
        names = sorted(members)
        rng.shuffle(names)
        cut = max(1, round(len(names) * train_share))
        for split, chosen in (("train", names[:cut]), ("test", names[cut:])):
            folder = root / split / context
            folder.mkdir(parents=True, exist_ok=True)
            for family in chosen:
                inside = folder / family if families and split == "train" else folder
                inside.mkdir(parents=True, exist_ok=True)
                for path in members[family]:
                    shutil.copyfile(path, inside / path.name.replace(".symbolic.png", ".png"))
                    counts[split] += 1
        per_class[context] = sum(len(v) for v in members.values())
    return {**counts, "classes": per_class, "pictures_in_two_contexts": sum(
        len({c for c, _ in copies}) > 1 for copies in pictures.values())}


# --- Debian package index -----------------------------------------------------------------------------
def debian_packages() -> list[dict]:
    """Every stanza of the main archive's package index that apt keeps, as dicts (Description split)."""
    lists = sorted(glob.glob("/var/lib/apt/lists/*_main_binary-amd64_Packages*"))
    lists = [p for p in lists if "security" not in p and "updates" not in p] or lists
    if not lists:
        raise SystemExit("no Debian package index in /var/lib/apt/lists: run `apt-get update` first.")
    long = _translations(lists[0])
    out = []
    for stanza in _read_index(lists[0]).split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields and "Description" in fields:
            synopsis, _, long_part = fields["Description"].partition("\n")
            fields["synopsis"] = synopsis.strip()
            fields["long"] = _first_paragraph(long_part) or long.get(fields["Package"], "")
            fields["source"] = fields.get("Source", fields["Package"]).split()[0]
            out.append(fields)
    return out


def _read_index(path: str) -> str:
    if path.endswith(".lz4"):
        return subprocess.run(["lz4cat", path], capture_output=True, check=True).stdout.decode("utf-8", "replace")
    return Path(path).read_text(encoding="utf-8", errors="replace")


def _translations(packages_path: str) -> dict[str, str]:
    """Package -> first paragraph of its English long description (apt keeps them in Translation-en once
    ``apt-get update -o Acquire::Languages=en`` ran); empty when there is no such file."""
    folder = Path(packages_path).parent
    prefix = Path(packages_path).name.split("_main_")[0]
    found = sorted(folder.glob(f"{prefix}_main_i18n_Translation-en*"))
    if not found:
        raise SystemExit("the English long descriptions are missing: run `apt-get update -o "
                         "Acquire::Languages=en` once, then build again.")
    out = {}
    for stanza in _read_index(str(found[0])).split("\n\n"):
        name = re.search(r"^Package: (\S+)", stanza, re.M)
        desc = re.search(r"^Description-en: [^\n]*\n((?: [^\n]*\n?)*)", stanza, re.M)
        if name and desc:
            out[name.group(1)] = _first_paragraph(desc.group(1))
    return out


def _first_paragraph(long: str) -> str:
    lines = []
    for line in long.splitlines():
        line = line.strip()
        if line == ".":
            break
        lines.append(line)
    return " ".join(lines).strip()


def _one_per_source(rows: list[dict], rng: random.Random) -> list[dict]:
    by_source = defaultdict(list)
    for row in rows:
        by_source[row["source"]].append(row)
    picked = [rng.choice(sorted(items, key=lambda r: r["Package"])) for _, items in sorted(by_source.items())]
    seen, out = set(), []
    for row in picked:
        if row["text"].lower() not in seen:
            seen.add(row["text"].lower())
            out.append(row)
    return out


def _split_balanced(rows: list[dict], labels: list[str], n_train: int, n_test: int,
                    rng: random.Random) -> tuple[list[dict], list[dict]]:
    by_label = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    train, test = [], []
    for label in labels:
        items = by_label[label]
        rng.shuffle(items)
        need = n_train // len(labels) + n_test // len(labels)
        if len(items) < need:
            raise SystemExit(f"only {len(items)} rows for {label}; need {need}.")
        train += items[:n_train // len(labels)]
        test += items[n_train // len(labels):need]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def _write_csv(path: Path, rows: list[dict], columns: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for row in rows:
            writer.writerow([row[key] for key in columns.values()])


def _write_chat(out: Path, name: str, train: list[dict], test: list[dict]) -> dict:
    """A chat set's train.csv and test.csv (question, answer), and their row counts for the manifest."""
    for split, rows in (("train", train), ("test", test)):
        _write_csv(out / name / f"{split}.csv", rows, {"question": "question", "answer": "answer"})
    return {"train": len(train), "test": len(test)}


def _chat_split(rows: list[dict], rng: random.Random, n_train: int, n_test: int) -> tuple[list[dict], list[dict]]:
    """One package per source package (siblings would leak across the split), shuffled, then train and test."""
    rows = _one_per_source(rows, rng)
    rng.shuffle(rows)
    return rows[:n_train], rows[n_train:n_train + n_test]


def _library_or_doc(package: dict) -> bool:
    """Libraries and documentation packages: their descriptions say little a question can ask about."""
    return package.get("Section", "").split("/")[-1] in ("libs", "libdevel", "doc")


SECTIONS = ["database", "editors", "games", "graphics", "mail", "science", "sound", "video"]
USES = ["use::gameplaying", "use::converting", "use::checking", "use::editing", "use::monitor",
        "use::configuring", "use::viewing", "use::playing"]


def build_debian_sections(out: Path, packages: list[dict], n_train: int = 480, n_test: int = 320) -> dict:
    rng = random.Random(SEED)
    rows = [{"text": p["synopsis"], "label": p["Section"].split("/")[-1], "source": p["source"],
             "Package": p["Package"]} for p in packages if p.get("Section", "").split("/")[-1] in SECTIONS]
    train, test = _split_balanced(_one_per_source(rows, rng), SECTIONS, n_train, n_test, rng)
    assert not {r["source"] for r in train} & {r["source"] for r in test}
    _write_csv(out / "debian-sections" / "train.csv", train, {"description": "text", "section": "label"})
    _write_csv(out / "debian-sections" / "test.csv", test, {"description": "text", "section": "label"})
    return {"train": len(train), "test": len(test), "classes": SECTIONS}


LARGE_SECTIONS = ["net", "science", "games", "admin", "utils", "sound", "x11", "text", "fonts", "graphics", "math",
                  "editors", "mail", "database", "video", "electronics"]


def build_debian_large(out: Path, packages: list[dict], n_train: int = 4000, n_test: int = 1000) -> dict:
    """A bigger, uneven set, as real tables are: package descriptions (synopsis and first paragraph) of 16
    sections in the archive's own proportions (net 1069 sources, electronics 100), one package per source."""
    rng = random.Random(SEED)
    rows = [{"text": f"{p['synopsis'].rstrip('.')}. {p['long']}" if p.get("long") else p["synopsis"],
             "label": p["Section"].split("/")[-1], "source": p["source"], "Package": p["Package"]}
            for p in packages if p.get("Section", "").split("/")[-1] in LARGE_SECTIONS]
    rows = _one_per_source(rows, rng)
    rng.shuffle(rows)
    train, test = rows[:n_train], rows[n_train:n_train + n_test]
    for name, part in (("train", train), ("test", test)):
        _write_csv(out / "debian-large" / f"{name}.csv", part, {"description": "text", "section": "label"})
    counts = defaultdict(int)
    for row in train:
        counts[row["label"]] += 1
    return {"train": len(train), "test": len(test), "classes": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}


def build_debian_siblings(out: Path, packages: list[dict], per_class_train: int = 60, per_class_test: int = 40,
                          max_siblings: int = 6) -> dict:
    """Synopses labelled with their section, as debian-sections, but the training rows keep every binary package
    of a source (up to ``max_siblings``): "Futuristic racing game" beside "Futuristic racing game - developer
    tools". The ``source`` column names the source package; the test rows are one package of each of sources
    never seen in training. A random split of the training file puts siblings on both sides."""
    rng = random.Random(SEED + 5)
    by_source: dict[str, list[dict]] = defaultdict(list)
    for p in packages:
        section = p.get("Section", "").split("/")[-1]
        if section in SECTIONS:
            by_source[p["source"]].append({"text": p["synopsis"], "label": section, "source": p["source"],
                                           "Package": p["Package"]})
    by_section: dict[str, list[str]] = defaultdict(list)
    for source, items in sorted(by_source.items()):
        sections = Counter(r["label"] for r in items)
        by_section[sections.most_common(1)[0][0]].append(source)
    train, test, seen = [], [], set()
    for section in SECTIONS:
        sources = by_section[section]
        rng.shuffle(sources)
        siblings = [s for s in sources if len(by_source[s]) > 1]
        singles = [s for s in sources if len(by_source[s]) == 1]
        taken = 0
        for source in siblings + singles:  # sources with siblings first: the case this set is for
            if taken >= per_class_train:
                break
            items = sorted(by_source[source], key=lambda r: r["Package"])[:max_siblings]
            items = [r for r in items if r["label"] == section and r["text"].lower() not in seen]
            seen.update(r["text"].lower() for r in items)
            train += items[:per_class_train - taken]
            taken += len(items[:per_class_train - taken])
            by_source.pop(source)
        rest = [s for s in sources if s in by_source]
        for source in rest[:per_class_test * 2]:
            row = rng.choice(sorted(by_source[source], key=lambda r: r["Package"]))
            if row["label"] == section and row["text"].lower() not in seen and \
                    sum(r["label"] == section for r in test) < per_class_test:
                seen.add(row["text"].lower())
                test.append(row)
    assert not {r["source"] for r in train} & {r["source"] for r in test}
    rng.shuffle(train)
    rng.shuffle(test)
    columns = {"description": "text", "section": "label", "source": "source"}
    _write_csv(out / "debian-siblings" / "train.csv", train, columns)
    _write_csv(out / "debian-siblings" / "test.csv", test, columns)
    return {"train": len(train), "test": len(test), "classes": SECTIONS,
            "sources_train": len({r["source"] for r in train}), "sources_test": len({r["source"] for r in test})}


def build_debian_use(out: Path, packages: list[dict], n_train: int = 480, n_test: int = 320) -> dict:
    rng = random.Random(SEED + 1)
    rows = []
    for p in packages:
        tags = [t.strip() for t in p.get("Tag", "").replace("\n", " ").split(",") if t.strip()]
        uses = [t for t in tags if t.startswith("use::")]
        if len(uses) == 1 and uses[0] in USES and len(p["long"]) >= 40:
            rows.append({"text": p["long"][:600], "label": uses[0].split("::")[1], "source": p["source"],
                         "Package": p["Package"]})
    labels = [u.split("::")[1] for u in USES]
    train, test = _split_balanced(_one_per_source(rows, rng), labels, n_train, n_test, rng)
    assert not {r["source"] for r in train} & {r["source"] for r in test}
    _write_csv(out / "debian-use" / "train.csv", train, {"description": "text", "use": "label"})
    _write_csv(out / "debian-use" / "test.csv", test, {"description": "text", "use": "label"})
    return {"train": len(train), "test": len(test), "classes": labels}


def build_debian_chat(out: Path, packages: list[dict], n_train: int = 300, n_test: int = 80) -> dict:
    """Q&A rows: the answer is the synopsis and the first sentence of the long description."""
    rng = random.Random(SEED + 2)
    rows = []
    for p in packages:
        first = re.split(r"(?<=[.!?])\s", p["long"], maxsplit=1)[0] if p["long"] else ""
        if not (20 <= len(first) <= 220) or _library_or_doc(p):
            continue
        synopsis = p["synopsis"].rstrip(".")
        answer = f"{p['Package']} is {_article(synopsis)}. {first}"
        rows.append({"text": answer, "question": f"What is the Debian package {p['Package']} for?",
                     "answer": answer, "source": p["source"], "Package": p["Package"]})
    return _write_chat(out, "debian-chat", *_chat_split(rows, rng, n_train, n_test))


def build_debian_summary(out: Path, packages: list[dict], n_train: int = 300, n_test: int = 80) -> dict:
    """Q&A rows: the question gives a package's description (its first paragraph), the answer is its synopsis."""
    rng = random.Random(SEED + 4)
    rows = []
    for p in packages:
        long, synopsis = p["long"], p["synopsis"]
        if not (80 <= len(long) <= 600) or not (10 <= len(synopsis) <= 80) or _library_or_doc(p):
            continue
        question = f"Write the one-line synopsis of a Debian package with this description:\n\n{long}"
        rows.append({"text": synopsis, "question": question, "answer": synopsis, "source": p["source"],
                     "Package": p["Package"]})
    return _write_chat(out, "debian-summary", *_chat_split(rows, rng, n_train, n_test))


# An option line in a rendered manual page ("       -z, --gzip, --gunzip") and its description, indented deeper.
_OPTION = re.compile(r"^ {7}(-{1,2}[A-Za-z0-9][^ ]*(?:,? -{1,2}[A-Za-z0-9][^ ]*)*)(?: [^ ].*)?$")


def man_options(command: str, max_options: int = 3, rng: random.Random | None = None) -> list[dict]:
    """(option, first sentence) pairs from one command's rendered manual page, at most ``max_options``."""
    try:
        text = subprocess.run(["man", "-P", "cat", command], capture_output=True, text=True, timeout=20,
                              env={"MANWIDTH": "200", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}).stdout
    except (subprocess.TimeoutExpired, OSError):
        return []
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines[:-1]):
        match = _OPTION.match(line)
        if not match:
            continue
        body = []
        for following in lines[i + 1:]:
            if not following.startswith(" " * 14) or not following.strip():
                break
            body.append(following.strip())
        description = re.sub(r"\s+", " ", " ".join(body))
        sentence = re.split(r"(?<=[.!?])\s", description, maxsplit=1)[0].rstrip(".")
        if 15 <= len(sentence) <= 200 and sentence[:1].isalpha():
            found.append({"option": match.group(1).rstrip(","), "sentence": sentence})
    if rng is not None:
        rng.shuffle(found)
    return found[:max_options]


def build_man_chat(out: Path, n_train: int = 300, n_test: int = 80) -> dict:
    """Option Q&A from the machine's manual pages; training and test commands share nothing."""
    rng = random.Random(SEED + 3)
    commands = sorted({path.name.split(".")[0] for path in Path("/usr/share/man/man1").glob("*.1.gz")})
    rng.shuffle(commands)
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    for command in commands:
        split = "train" if len(rows["train"]) < n_train else "test"
        if split == "test" and len(rows["test"]) >= n_test:
            break
        for option in man_options(command, rng=rng):
            first = option["option"].split(",")[0].split("=")[0]
            answer = option["sentence"][:1].upper() + option["sentence"][1:] + "."
            rows[split].append({"question": f"What does the option {first} of {command} do?", "answer": answer})
    return _write_chat(out, "man-chat", rows["train"][:n_train], rows["test"][:n_test])


MAN_SECTIONS = {"1": "user command", "2": "system call", "3": "library function", "5": "file format",
                "7": "overview", "8": "admin command"}
_NAME = re.compile(r'^\.S[Hh]\s+"?NAME"?\s*\n(.*?)(?=^\.S[Hh])', re.M | re.S)
_TROFF_ESCAPES = re.compile(r"\\f[BIRP]|\\\(em|\\&|\\e")


def man_description(path: Path) -> str | None:
    """The description after "name \\- " in a manual page source's NAME section, as plain text."""
    import gzip

    try:
        with gzip.open(path, "rt", errors="replace") as fh:
            source = fh.read(20000)
    except (OSError, EOFError):
        return None
    match = _NAME.search(source)
    if not match:
        return None
    body = " ".join(line for line in match.group(1).splitlines() if not line.startswith((".", "'")))
    body = _TROFF_ESCAPES.sub("", body.replace("\\-", "-"))
    if " - " not in body:
        return None
    text = re.sub(r"\s+", " ", body.split(" - ", 1)[1]).strip().strip('"')
    return text if 8 <= len(text) <= 160 else None


def build_man_sections(out: Path, n_train: int = 480, n_test: int = 318) -> dict:
    """Manual page descriptions labelled with their section's kind; balanced, no text in two sections."""
    rng = random.Random(SEED + 4)
    found: dict[str, set[str]] = defaultdict(set)
    for number in MAN_SECTIONS:
        for path in sorted(Path(f"/usr/share/man/man{number}").glob("*.gz")):
            text = man_description(path)
            if text:
                found[text.lower()].add(number)
    rows = [{"text": text, "label": MAN_SECTIONS[next(iter(numbers))]} for text, numbers in sorted(found.items())
            if len(numbers) == 1]
    labels = list(MAN_SECTIONS.values())
    train, test = _split_balanced(rows, labels, n_train, n_test, rng)
    for split, part in (("train", train), ("test", test)):
        _write_csv(out / "man-sections" / f"{split}.csv", part, {"description": "text", "kind": "label"})
    return {"train": len(train), "test": len(test), "classes": labels}


def _article(synopsis: str) -> str:
    """'a tool ...' from 'tool ...' (most synopses start with a noun phrase)."""
    first = synopsis.split()[0] if synopsis.split() else ""
    keep_case = len(first) > 1 and not first[1:].islower()  # GNU, KDE, GTK+, MySQL stay as they are
    text = synopsis if keep_case else synopsis[:1].lower() + synopsis[1:]
    if re.match(r"^(a|an|the)\s", text, re.I):
        return text
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


# --- program messages (gettext catalogues) -----------------------------------------------------------------
LANGUAGES = {"da": "Danish", "de": "German", "es": "Spanish", "fr": "French", "it": "Italian", "nl": "Dutch",
             "pt": "Portuguese", "sv": "Swedish"}
PROGRAMS = {"postgres-15": "PostgreSQL", "git": "git", "gnupg2": "GnuPG", "mit-krb5": "Kerberos",
            "coreutils": "coreutils", "dpkg": "dpkg", "libc": "C library", "wget": "wget"}
PLACEHOLDER = re.compile(r"%[-+ #0-9.*]*[a-zA-Z]+|\{[^}]*\}|\$\w+")


def _catalogue(path: str) -> dict[str, str]:
    """msgid -> msgstr of one compiled gettext catalogue (plural and context entries left out)."""
    import gettext

    try:
        with open(path, "rb") as fh:
            translations = gettext.GNUTranslations(fh)
    except (OSError, UnicodeDecodeError, ValueError):  # a catalogue in a legacy encoding: not worth decoding
        return {}
    return {k: v for k, v in translations._catalog.items()
            if isinstance(k, str) and k and "\x04" not in k and isinstance(v, str) and v}


def _message(text: str) -> str | None:
    """One line of a catalogue's message, 4-25 words, placeholders kept as they are; None if it is not one."""
    text = " ".join(text.split())
    words = text.split()
    if not 4 <= len(words) <= 25 or sum(ch.isalpha() for ch in text) < 0.6 * len(text):
        return None
    return text


def _normalised(text: str) -> str:
    return " ".join(PLACEHOLDER.sub("", text).lower().split())


def build_messages_language(out: Path, n_train: int = 480, n_test: int = 320) -> dict:
    """Translated messages by language; the test's programs (catalogue names) never appear in training."""
    rng = random.Random(SEED)
    domains = sorted({Path(p).stem for p in glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo")
                      if not Path(p).stem.startswith("iso_")})
    rng.shuffle(domains)
    test_domains = set(domains[: len(domains) // 2])
    per_train, per_test = n_train // len(LANGUAGES), n_test // len(LANGUAGES)
    train, test = [], []
    for code, language in LANGUAGES.items():
        sides: dict[str, list[dict]] = {"train": [], "test": []}
        seen: set[str] = set()
        for domain in domains:
            for path in sorted(glob.glob(f"/usr/share/locale/{code}/LC_MESSAGES/{domain}.mo")):
                for msgid, msgstr in sorted(_catalogue(path).items()):
                    text = _message(msgstr)
                    key = _normalised(text) if text is not None else None
                    if key is None or key == _normalised(msgid) or key in seen:
                        continue  # untranslated (a copy of the English) or a repeat
                    seen.add(key)
                    sides["test" if domain in test_domains else "train"].append(
                        {"text": text, "label": language, "domain": domain})
        for side, need, into in (("train", per_train, train), ("test", per_test, test)):
            rows = sides[side]
            if len(rows) < need:
                raise SystemExit(f"only {len(rows)} {side} messages in {language}; need {need}.")
            into += rng.sample(rows, need)
    rng.shuffle(train)
    rng.shuffle(test)
    assert not {r["domain"] for r in train} & {r["domain"] for r in test}
    for split, rows in (("train", train), ("test", test)):
        _write_csv(out / "messages-language" / f"{split}.csv", rows, {"message": "text", "language": "label"})
    return {"train": len(train), "test": len(test), "classes": sorted(LANGUAGES.values()),
            "programs_train": len({r["domain"] for r in train}), "programs_test": len({r["domain"] for r in test})}


def build_messages_program(out: Path, n_train: int = 480, n_test: int = 320) -> dict:
    """English messages by the program that prints them (msgids of each program's German catalogue: every
    program here has one); no message on both sides."""
    rng = random.Random(SEED)
    train, test, used = [], [], set()
    per_train, per_test = n_train // len(PROGRAMS), n_test // len(PROGRAMS)
    for domain, program in PROGRAMS.items():
        rows = []
        for msgid in sorted(_catalogue(f"/usr/share/locale/de/LC_MESSAGES/{domain}.mo")):
            text = _message(msgid)
            key = _normalised(text) if text is not None else None
            if key is not None and key not in used:
                used.add(key)
                rows.append({"text": text, "label": program})
        if len(rows) < per_train + per_test:
            raise SystemExit(f"only {len(rows)} messages of {program}; need {per_train + per_test}.")
        picked = rng.sample(rows, per_train + per_test)
        train += picked[:per_train]
        test += picked[per_train:]
    rng.shuffle(train)
    rng.shuffle(test)
    for split, rows in (("train", train), ("test", test)):
        _write_csv(out / "messages-program" / f"{split}.csv", rows, {"message": "text", "program": "label"})
    return {"train": len(train), "test": len(test), "classes": sorted(PROGRAMS.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/studio-quality")
    parser.add_argument("--only", nargs="*", choices=SETS, default=list(SETS))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    packages = debian_packages() if any(s.startswith("debian") for s in args.only) else []
    builders = {"digits": lambda: build_digits(out), "glyphs": lambda: build_glyphs(out),
                "icons": lambda: build_icons(out), "icons-families": lambda: build_icons(out, families=True),
                "debian-sections": lambda: build_debian_sections(out, packages),
                "debian-siblings": lambda: build_debian_siblings(out, packages),
                "debian-large": lambda: build_debian_large(out, packages),
                "debian-use": lambda: build_debian_use(out, packages),
                "debian-chat": lambda: build_debian_chat(out, packages),
                "debian-summary": lambda: build_debian_summary(out, packages), "man-chat": lambda: build_man_chat(out),
                "man-sections": lambda: build_man_sections(out),
                "messages-language": lambda: build_messages_language(out),
                "messages-program": lambda: build_messages_program(out)}
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for name in args.only:
        manifest[name] = builders[name]()
        digest = hashlib.sha256()
        for path in sorted((out / name).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(out).as_posix().encode())
                digest.update(path.read_bytes())
        manifest[name]["sha256"] = digest.hexdigest()[:16]
        print(name, json.dumps(manifest[name]))
    manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
