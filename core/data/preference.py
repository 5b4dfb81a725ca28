"""Preference pairs: a prompt, the answer people preferred (chosen) and one they did not (rejected).

Detected from column names (prompt/chosen/rejected, question/good/bad, preferred/dispreferred...) and read in
the shapes preference data sets are shared in:

- three text columns: prompt, chosen answer, rejected answer (plus an optional system column);
- TRL's conversational shape: chosen and rejected as message lists, the prompt either in its own column or as
  the turns the two conversations share before their last answer (UltraFeedback, HH-RLHF in TRL's format);
- Anthropic HH-RLHF transcripts: chosen and rejected as ``"\\n\\nHuman: ... \\n\\nAssistant: ..."`` strings.

Rows come out normalised: ``prompt`` (a list of role/content turns ending with the user's), ``chosen`` and
``rejected`` (the two final answers as text), plus ``_row``, ``_key`` (the whole pair, for duplicates) and
``_leak`` (the prompt, for train/validation leakage: pairs that share a prompt stay on one side of the split).
"""
from __future__ import annotations

import json
import re
from collections import defaultdict

import numpy as np
import pandas as pd

from .chat import CONTENT_KEYS, ROLE_ALIASES, ROLE_KEYS, conversation_key
from .readers import header_key
from .report import DataReport, describe_rows
from .text import value_text

ROLES = ("prompt", "chosen", "rejected", "system")
# Header names, most specific first; matched on the whole header, then on one of its words.
NAMES = {
    "chosen": ("chosen", "preferred", "chosen_response", "response_chosen", "good", "better", "accepted",
               "winner", "positive", "pos", "good_answer", "best", "preferred_answer", "chosen_answer"),
    "rejected": ("rejected", "dispreferred", "rejected_response", "response_rejected", "bad", "worse",
                 "loser", "negative", "neg", "bad_answer", "worst", "dispreferred_answer", "rejected_answer"),
    "prompt": ("prompt", "instruction", "question", "query", "input", "user", "human", "context", "request"),
    "system": ("system", "system_prompt", "system_message"),
}
HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|H|A):[ \t]?")
HH_ROLES = {"Human": "user", "H": "user", "Assistant": "assistant", "A": "assistant"}
LENGTH_BIAS = 0.9  # the chosen answer longer in this share of pairs (or more) teaches "longer is better"
LENGTH_BIAS_MIN_PAIRS = 20


def column_by_name(frame: pd.DataFrame, role: str, taken=()) -> str | None:
    """The column whose header is a usual name for ``role`` (whole header first, then one of its words)."""
    free = [c for c in frame.columns if c not in taken]
    for pattern in NAMES[role]:
        for col in free:
            if header_key(col) == pattern:
                return col
    for pattern in NAMES[role]:
        for col in free:
            if len(pattern) > 2 and pattern in header_key(col).split("_"):
                return col
    return None


def looks_like_pairs(frame: pd.DataFrame, given: dict[str, str]) -> tuple[str, str] | None:
    """(chosen, rejected) columns when the table holds preference pairs: chosen by the user or by their names."""
    if "chosen" in given or "rejected" in given:
        return given.get("chosen", ""), given.get("rejected", "")
    chosen = column_by_name(frame, "chosen")
    rejected = column_by_name(frame, "rejected", (chosen,))
    return (chosen, rejected) if chosen is not None and rejected is not None else None


def fill_columns(frame: pd.DataFrame, columns: dict[str, str], reasons: list[str], report: DataReport,
                 name: str) -> None:
    """Complete ``columns`` (role -> column) for preference pairs, with a reason per column found.

    Args:
        frame: the table.
        columns: what the user chose; filled in place.
        reasons: the detection's sentences; appended to.
        report: a missing chosen or rejected column is reported here.
        name: the file name, for messages.
    """
    for role in ("chosen", "rejected", "prompt", "system"):
        if role in columns:
            continue
        col = column_by_name(frame, role, set(columns.values()))
        if col is not None:
            columns[role] = col
            what = {"chosen": "the preferred answer", "rejected": "the answer that was not preferred",
                    "prompt": "the prompt both answers reply to",
                    "system": "the system prompt, put first in every conversation"}[role]
            reasons.append(f"'{col}' is {what}: its name is a usual {role} name.")
    missing = [r for r in ("chosen", "rejected") if r not in columns]
    if missing:
        names = ", ".join(repr(c) for c in frame.columns) or "none"
        report.error("missing_column", f"No {' or '.join(missing)} column found in {name} (columns: {names}).",
                     "Preference pairs need the preferred answer in a column called 'chosen' and the other in "
                     "'rejected' (good/bad and preferred/dispreferred work too), or choose the columns yourself.")
        return
    if "prompt" not in columns:
        reasons.append(f"There is no prompt column: the prompt is read from the conversations in "
                       f"'{columns['chosen']}' and '{columns['rejected']}' (the turns before their last answer).")


def pair_rows(frame: pd.DataFrame, numbers, columns: dict[str, str], report: DataReport, unit: str,
              name: str) -> pd.DataFrame:
    """Normalised pairs (``prompt`` turns, ``chosen``, ``rejected``), unusable rows dropped with one warning per
    reason; an error when no row can be used.

    Args:
        frame: the table.
        numbers: the row number the user sees for each frame row.
        columns: role -> column, with at least ``chosen`` and ``rejected``.
        report, unit, name: where and how to report.
    """
    n = len(frame)
    prompts = frame[columns["prompt"]].tolist() if "prompt" in columns else [None] * n
    systems = frame[columns["system"]].tolist() if "system" in columns else [None] * n
    out = {"_row": [], "prompt": [], "chosen": [], "rejected": []}
    why: dict[str, list] = defaultdict(list)
    for number, p, c, r, s in zip(np.asarray(numbers).tolist(), prompts, frame[columns["chosen"]].tolist(),
                                  frame[columns["rejected"]].tolist(), systems):
        pair = parse_pair(p, c, r, s)
        if isinstance(pair, str):
            why[pair].append(number)
            continue
        out["_row"].append(number)
        for key, value in zip(("prompt", "chosen", "rejected"), pair):
            out[key].append(value)
    for reason, bad in why.items():
        report.count_dropped("bad_pairs", len(bad))
        report.warn("bad_pairs", f"{name}: {describe_rows(bad, unit)} {reason}; "
                    f"{'it was' if len(bad) == 1 else 'they were'} dropped.", PAIR_FIX, rows=bad)
    rows = pd.DataFrame(out)
    if rows.empty and report.ok:
        report.error("no_pairs", f"{name}: no row holds a usable preference pair (a prompt, a chosen and a "
                     "rejected answer).", PAIR_FIX)
    rows["_leak"] = [conversation_key(p) for p in rows["prompt"]]
    rows["_key"] = rows["_leak"] + "\x1d" + rows["chosen"] + "\x1d" + rows["rejected"]
    return rows


PAIR_FIX = ("Give every row a prompt, the preferred answer (chosen) and a different, worse answer (rejected): as "
            "three text columns, or chosen/rejected conversations that share their turns up to the last answer.")


def parse_pair(prompt, chosen, rejected, system=None) -> tuple[list[dict], str, str] | str:
    """(prompt turns, chosen answer, rejected answer) of one row, or the reason it cannot be used.

    Args:
        prompt: the prompt cell (text, a message list or its JSON), or None when the prompt is in the answers.
        chosen, rejected: the answer cells: plain text, a message list (or its JSON) ending with the answer, or
            an HH-RLHF transcript.
        system: an optional system prompt put first.
    """
    sides = []
    for label, value in (("chosen", chosen), ("rejected", rejected)):
        turns = as_turns(value)
        if isinstance(turns, str):
            return f"has a {label} cell that {turns}"
        sides.append(turns)
    (c_prefix, c_answer), (r_prefix, r_answer) = sides
    if not c_answer or not r_answer:
        return "has an empty chosen or rejected answer"
    if c_prefix and r_prefix and c_prefix != r_prefix:
        return "has chosen and rejected conversations that differ before their last answer"
    turns = c_prefix or r_prefix or _prompt_turns(prompt)
    if isinstance(turns, str):
        return turns
    system_text = value_text(system).strip() if system is not None else ""
    if system_text and turns and turns[0]["role"] != "system":
        turns = [{"role": "system", "content": system_text}] + turns
    problem = _prompt_problem(turns)
    if problem:
        return problem
    if _same(c_answer, r_answer):
        return "has the same chosen and rejected answer (nothing to prefer)"
    return turns, c_answer, r_answer


def as_turns(value) -> tuple[list[dict], str] | str:
    """An answer cell as (turns before the answer, the answer text), or the reason it cannot be read.

    Plain text is an answer with no turns before it; a message list (or its JSON text) or an HH-RLHF transcript
    ends with the assistant's answer.
    """
    turns = _turn_list(value)
    if isinstance(turns, str) or turns is None:
        return turns if isinstance(turns, str) else ([], _text(value))
    if not turns:
        return "has no turns"
    if turns[-1]["role"] != "assistant":
        return "does not end with the assistant's answer"
    return turns[:-1], turns[-1]["content"]


def hh_turns(text: str) -> list[dict]:
    """Turns of an HH-RLHF transcript (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``)."""
    text = "\n\n" + text.lstrip("\n ")
    marks = list(HH_TURN.finditer(text))
    turns = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        turns.append({"role": HH_ROLES[mark.group(1)], "content": text[mark.end():end].strip()})
    return turns


def _turn_list(value) -> list[dict] | str | None:
    """A cell as turns (a message list, its JSON, an HH-RLHF transcript), the reason it cannot be read, or None
    when it is plain text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "tolist") and not isinstance(value, (list, dict, str)):
        value = value.tolist()  # Parquet gives numpy arrays of dicts
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None  # text that happens to start with a bracket
        elif HH_TURN.match(text) is not None and HH_TURN.search(text, 1) is not None:
            return hh_turns(text)
        else:
            return None
    if isinstance(value, dict):
        value = value.get("messages") or value.get("conversations") or [value]
    if not isinstance(value, list):
        return None
    turns = []
    for item in value:
        turn = _turn(item)
        if isinstance(turn, str):
            return turn
        turns.append(turn)
    return turns


def _text(value) -> str:
    return value_text(value).strip()


def _turn(item) -> dict | str:
    if not isinstance(item, dict):
        return "holds a turn that is not an object"
    role = next((item[k] for k in ROLE_KEYS if k in item), None)
    content = next((item[k] for k in CONTENT_KEYS if k in item), None)
    if role is None or content is None:
        return "holds a turn without role/content (or from/value)"
    mapped = ROLE_ALIASES.get(str(role).strip().lower())
    if mapped is None:
        return f"holds a turn by '{role}' (use system, user or assistant)"
    if isinstance(content, list):  # OpenAI content parts
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return {"role": mapped, "content": value_text(content).strip()}


def _prompt_turns(prompt) -> list[dict] | str:
    if prompt is None:
        return "has no prompt (no prompt column, and the answers are not conversations)"
    turns = _turn_list(prompt)
    if isinstance(turns, str):
        return f"has a prompt cell that {turns}"
    if turns is None:
        text = _text(prompt)
        return [{"role": "user", "content": text}] if text else "has an empty prompt"
    return turns


def _prompt_problem(turns) -> str | None:
    if not turns or any(isinstance(t, str) for t in turns):
        return next((f"has a prompt that {t}" for t in turns if isinstance(t, str)), "has an empty prompt")
    if turns[-1]["role"] != "user":
        return "has a prompt that does not end with the user's turn"
    if any(not t["content"] for t in turns):
        return "has an empty turn in its prompt"
    if "system" in [t["role"] for t in turns[1:]]:
        return "has a system turn after the start of its prompt"
    return None


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def check_pairs(rows: pd.DataFrame, report: DataReport, unit: str, name: str) -> None:
    """Warnings about pairs that train something other than what the user means: the chosen answer nearly
    always the longer one (the model learns "longer is better"), and prompts whose pairs contradict each other.

    Args:
        rows: normalised pairs.
        report, unit, name: where and how to report.
    """
    if len(rows) >= LENGTH_BIAS_MIN_PAIRS:
        chosen, rejected = rows["chosen"].str.len(), rows["rejected"].str.len()
        shares = {"longer": float((chosen > rejected).mean()), "shorter": float((chosen < rejected).mean())}
        which = max(shares, key=shares.get)
        share = shares[which]
        if share >= LENGTH_BIAS:
            report.warn("length_bias", f"{name}: the chosen answer is the {which} one in {share:.0%} of the pairs, "
                        f"so the model may learn that {which} answers are better rather than what makes them "
                        "better.", "Add pairs where the preferred answer is the shorter (or the longer) one, so "
                        "length alone does not decide.")
    seen = {}
    clash = []
    for row, prompt, chosen, rejected in zip(rows["_row"], rows["_leak"], rows["chosen"], rows["rejected"]):
        if (prompt, rejected, chosen) in seen:
            clash += [seen[(prompt, rejected, chosen)], row]
        seen[(prompt, chosen, rejected)] = row
    if clash:
        report.warn("conflicting_pairs", f"{name}: {describe_rows(clash, unit)} prefer A over B for a prompt where "
                    "another row prefers B over A; the model cannot learn both.", "Keep the preference you mean "
                    "and delete the other row.", rows=clash)
