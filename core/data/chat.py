"""Chat rows in one shape: a list of {"role", "content"} turns, system first when there is one.

Accepts prompt/response columns (an input or context column joined into the user turn), OpenAI-style
``messages`` lists (role/content) and ShareGPT ``conversations`` (from/value, human/gpt), with the roles people
use in support and tutoring logs (customer/agent, client/support, human/bot, student/tutor...) mapped to
user/assistant. Conversations written into a CSV cell as JSON text are parsed with ``json.loads``; nothing is
evaluated. Text that already holds chat-template markers (``<|im_start|>``, ``[INST]``) is found, since the
studio adds the model's own template and a second one inside the text teaches the model to print markers.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from .text import as_text, value_text

USER_ROLES = ("user", "human", "prompter", "customer", "client", "visitor", "guest", "caller", "patient",
              "student", "learner", "requester", "questioner", "asker", "buyer", "member", "person", "me",
              "usr", "q", "question", "input", "end_user", "enduser", "end user")
ASSISTANT_ROLES = ("assistant", "gpt", "bot", "model", "chatgpt", "ai", "agent", "support", "rep",
                   "representative", "operator", "advisor", "adviser", "consultant", "helper", "staff",
                   "chatbot", "answerer", "expert", "tutor", "teacher", "doctor", "counselor", "therapist",
                   "service", "csr", "support_agent", "support agent", "a", "answer", "output", "response",
                   "helpdesk", "help desk", "seller", "vendor", "llm", "claude", "copilot")
ROLE_ALIASES = {**{r: "user" for r in USER_ROLES}, **{r: "assistant" for r in ASSISTANT_ROLES},
                "system": "system", "developer": "system", "instructions": "system"}
TOOL_ROLES = {"tool", "function", "ipython", "tool_result", "function_call", "observation"}
UNKNOWN_ROLE = "\x00unknown role:"  # a _turn result, gathered into one reason per conversation
ROLE_KEYS = ("role", "from", "speaker", "author", "sender", "who")
CONTENT_KEYS = ("content", "value", "text", "message", "utterance", "body")
# Markers chat templates put between turns; inside a turn's text they are a second, foreign template.
TEMPLATE_MARKERS = (r"<\|(?:im_start|im_end|im_sep|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|"
                    r"end_of_text|user|assistant|system|end|eot|eos|bos|pad)\|>|\[/?INST\]|<</?SYS>>|"
                    r"<start_of_turn>|<end_of_turn>|<bos>|<eos>")


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
    turns, unknown = [], []
    for turn in value:
        parsed = _turn(turn)
        if isinstance(parsed, str) and parsed.startswith(UNKNOWN_ROLE):
            unknown.append(parsed[len(UNKNOWN_ROLE):])
        elif isinstance(parsed, str):
            return [], parsed
        else:
            turns.append(parsed)
    if unknown:
        names = list(dict.fromkeys(unknown))
        listed = " and ".join(f"'{n}'" for n in names)
        return [], f"has {'an unknown role' if len(names) == 1 else 'unknown roles'} {listed} (use system, user or " \
                   "assistant)"
    return turns, _shape_problem(turns)


def _turn(turn) -> dict | str:
    if not isinstance(turn, dict):
        return "has a turn that is not an object"
    role = next((turn[k] for k in ROLE_KEYS if k in turn), None)
    content = next((turn[k] for k in CONTENT_KEYS if k in turn), None)
    if content is None and isinstance(turn.get("parts"), list):  # Gemini: {"role": "model", "parts": [...]}
        content = turn["parts"]
    if role is None or content is None:
        return "has a turn without role/content (or from/value)"
    key = str(role).strip().lower()
    mapped = ROLE_ALIASES.get(key) or ROLE_ALIASES.get(key.replace("-", "_"))
    if key in TOOL_ROLES:
        return f"has a '{role}' turn (tool calls), which chat tuning here does not support"
    if mapped is None:
        return f"{UNKNOWN_ROLE}{role}"
    if isinstance(content, list):  # OpenAI content parts, Gemini parts
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
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


def unknown_roles(reason: str | None) -> list[str]:
    """The roles named by a ``parse_conversation`` reason about unknown roles (empty for other reasons)."""
    if not reason or not reason.startswith("has an unknown role") and not reason.startswith("has unknown roles"):
        return []
    return re.findall(r"'([^']*)'", reason.split(" (use ")[0])


def template_mask(keys: pd.Series, extra: tuple[str, ...] = ()) -> np.ndarray:
    """True for conversations whose text holds chat-template markers (or the tokenizer's own special tokens).

    Args:
        keys: ``conversation_key`` strings.
        extra: the tokenizer's special tokens that look like markup (``<|im_end|>``, ``</s>``).
    """
    pattern = TEMPLATE_MARKERS
    if extra:
        pattern += "|" + "|".join(re.escape(t) for t in extra)
    return keys.str.contains(pattern, regex=True).to_numpy(dtype=bool)


def conversation_key(turns: list[dict]) -> str:
    """A compact string of a conversation, for duplicate and leakage checks."""
    return "\x1e".join(f"{t['role']}\x1f{t['content']}" for t in turns)
