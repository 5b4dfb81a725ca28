"""Chat rows in one shape: a list of {"role", "content"} turns, system first when there is one.

Accepts prompt/response columns (instruction + input joined into the user turn), OpenAI-style ``messages``
lists (role/content) and ShareGPT ``conversations`` (from/value, human/gpt). Conversations written into a CSV
cell as JSON text are parsed with ``json.loads``; nothing is evaluated.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .text import as_text, value_text

ROLE_ALIASES = {
    "user": "user", "human": "user", "prompter": "user", "customer": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    "chatgpt": "assistant", "ai": "assistant",
    "system": "system",
}


def from_columns(frame: pd.DataFrame, columns: dict[str, str]) -> tuple[list, np.ndarray]:
    """Conversations from prompt/response (+ input, system) columns, and which rows had both parts.

    Args:
        frame: the table.
        columns: role -> column, with at least ``prompt`` and ``response``.
    """
    prompt = as_text(frame[columns["prompt"]]).str.strip()
    response = as_text(frame[columns["response"]]).str.strip()
    if "input" in columns:
        extra = as_text(frame[columns["input"]]).str.strip()
        joined = prompt + "\n\n" + extra
        prompt = joined.where((extra != "") & (prompt != ""), prompt.where(prompt != "", extra))
    system = as_text(frame[columns["system"]]).str.strip() if "system" in columns else None
    ok = ((prompt != "") & (response != "")).to_numpy()
    out = []
    sys_values = system.tolist() if system is not None else [""] * len(frame)
    for s, p, r in zip(sys_values, prompt.tolist(), response.tolist()):
        turns = [{"role": "system", "content": s}] if s else []
        turns.append({"role": "user", "content": p})
        turns.append({"role": "assistant", "content": r})
        out.append(turns)
    return out, ok


def from_messages(values: pd.Series, system: pd.Series | None = None) -> tuple[list, list[str | None]]:
    """Conversations from a column of turn lists, and per row the reason it is unusable (None when fine).

    Args:
        values: lists of turns, or JSON text of such lists.
        system: an optional system column, put first when the conversation has none.
    """
    systems = as_text(system).str.strip().tolist() if system is not None else [""] * len(values)
    out, why = [], []
    for value, sys_text in zip(values.tolist(), systems):
        turns, reason = parse_conversation(value)
        if turns and sys_text and turns[0]["role"] != "system":
            turns.insert(0, {"role": "system", "content": sys_text})
        out.append(turns)
        why.append(reason)
    return out, why


def parse_conversation(value) -> tuple[list, str | None]:
    """One conversation as turns, or an empty list and the reason it cannot be used."""
    if isinstance(value, str):
        if not value.strip():
            return [], "is empty"
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [], "is not a JSON list of turns"
    if hasattr(value, "tolist") and not isinstance(value, (list, dict)):
        value = value.tolist()  # Parquet gives numpy arrays of dicts
    if isinstance(value, dict):
        value = value.get("messages") or value.get("conversations")
    if not isinstance(value, list) or not value:
        return [], "has no turns"
    turns = []
    for turn in value:
        parsed = _turn(turn)
        if isinstance(parsed, str):
            return [], parsed
        turns.append(parsed)
    return turns, _shape_problem(turns)


def _turn(turn) -> dict | str:
    if not isinstance(turn, dict):
        return "has a turn that is not an object"
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if role is None or content is None:
        return "has a turn without role/content (or from/value)"
    mapped = ROLE_ALIASES.get(str(role).strip().lower())
    if mapped is None:
        return f"has an unknown role '{role}' (use system, user or assistant)"
    if isinstance(content, list):  # OpenAI content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return {"role": mapped, "content": value_text(content).strip()}


def _shape_problem(turns: list[dict]) -> str | None:
    roles = [t["role"] for t in turns]
    if "system" in roles[1:]:
        return "has a system turn after the start"
    if "user" not in roles:
        return "has no user turn"
    if "assistant" not in roles:
        return "has no assistant turn"
    if any(not t["content"] for t in turns):
        return "has an empty turn"
    return None


def conversation_key(turns: list[dict]) -> str:
    """A compact string of a conversation, for duplicate and leakage checks."""
    return "\x1e".join(f"{t['role']}\x1f{t['content']}" for t in turns)
