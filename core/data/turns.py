"""Chat logs written one turn per row (a conversation id, who spoke, what was said), as helpdesk and chat
tools export them, turned into conversations.

Such a table has a column of speakers (customer/agent, user/bot, client/support...) beside the text. Read as a
table of texts with a few distinct values beside them, it would train a classifier that guesses who spoke;
read as turns, it is chat data. Turns are grouped by the conversation column (kept in file order); without
one, each run of user turns and the answers after it make one conversation. Consecutive turns of the same
speaker are joined, since chat templates expect user and assistant to alternate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .chat import ROLE_ALIASES
from .columns import Profile, head_word, header_words
from .text import as_text

ROLE_SHARE = 0.9  # of a speaker column's values must be known roles
# In a log, "system" rows are notices ("Agent joined the chat"), not a system prompt: only the two sides count.
SPEAKERS = {name: role for name, role in ROLE_ALIASES.items() if role in ("user", "assistant")}
CONVERSATION_WORDS = {"conversation", "session", "thread", "chat", "dialog", "dialogue", "ticket", "case",
                      "conversationid", "sessionid", "threadid", "chatid"}


@dataclass
class TurnColumns:
    """The columns of a turn-per-row chat log, and why they were taken."""

    speaker: str
    content: str
    conversation: str | None
    reasons: list[str]


def find_turn_columns(frame: pd.DataFrame, profiles: dict[str, Profile], taken=()) -> TurnColumns | None:
    """The speaker, content and conversation columns of a turn-per-row log; None when the table is not one.

    Args:
        frame: the table.
        profiles: ``columns.profile_columns(frame)``.
        taken: columns already given other roles.
    """
    speaker = next((p for p in profiles.values() if p.column not in taken and _speaker_like(frame[p.column])), None)
    if speaker is None:
        return None
    texts = [p for p in profiles.values() if p.column not in taken and p.column != speaker.column
             and p.kind in ("text", "short_text")]
    if not texts:
        return None
    content = max(texts, key=lambda p: p.mean_length)
    conversation = _conversation_column(frame, profiles, {speaker.column, content.column, *taken})
    reasons = [f"The task is chat: '{speaker.column}' says who speaks in each row "
               f"({', '.join(map(repr, speaker.examples[:4]))}) and '{content.column}' what was said: a chat log "
               "with one turn per row."]
    if conversation:
        reasons.append(f"Turns are grouped into conversations by '{conversation}', in the order of the file.")
    else:
        reasons.append("No conversation column was found: each user turn and the answer after it make one "
                       "conversation.")
    return TurnColumns(speaker.column, content.column, conversation, reasons)


def conversations(frame: pd.DataFrame, numbers: np.ndarray, columns: dict[str, str]) -> tuple[list, list, list]:
    """Conversations from turn rows: the turns, the row number of each conversation's first turn, and per
    conversation the reason it cannot be used (None when fine).

    Args:
        frame: the table.
        numbers: the row number the user sees for each frame row.
        columns: role -> column with ``speaker`` and ``content`` (and ``conversation`` when there is one).
    """
    roles = as_text(frame[columns["speaker"]]).str.strip().str.lower().map(SPEAKERS)
    texts = as_text(frame[columns["content"]]).str.strip()
    keys = _conversation_keys(frame, columns, roles)
    out, first_rows, why = [], [], []
    for key in pd.unique(keys):
        rows = np.flatnonzero(keys == key)
        turns = _merged([(roles.iloc[i], texts.iloc[i]) for i in rows if isinstance(roles.iloc[i], str)
                         and texts.iloc[i]])
        out.append(turns)
        first_rows.append(numbers[rows[0]])
        why.append(_problem(turns))
    return out, first_rows, why


def unknown_speakers(frame: pd.DataFrame, columns: dict[str, str]) -> np.ndarray:
    """True for rows whose speaker is not a known role (a "system notice", a transfer line): left out.

    Args:
        frame: the table.
        columns: role -> column with ``speaker``.
    """
    speakers = as_text(frame[columns["speaker"]]).str.strip().str.lower()
    return (speakers.map(SPEAKERS).isna() & (speakers != "")).to_numpy()


def _speaker_like(values: pd.Series) -> bool:
    text = as_text(values.head(5000)).str.strip().str.lower()
    text = text[text != ""]
    if text.empty or text.nunique() > 6:
        return False
    mapped = text.map(ROLE_ALIASES)
    known = set(mapped.dropna())
    return mapped.notna().mean() >= ROLE_SHARE and {"user", "assistant"} <= known


def _conversation_column(frame, profiles, taken) -> str | None:
    for p in profiles.values():
        if p.column in taken or p.kind in ("empty", "constant", "text"):
            continue
        words = set(header_words(p.column)) | {head_word(p.column)}
        if words & CONVERSATION_WORDS and p.distinct < p.filled:
            return p.column
    return None


def _conversation_keys(frame, columns, roles) -> np.ndarray:
    if columns.get("conversation"):
        return as_text(frame[columns["conversation"]]).str.strip().to_numpy()
    # no id: a new conversation starts at each user turn that follows an assistant turn
    starts = ((roles == "user") & (roles.ffill().shift(1) == "assistant")).to_numpy()
    return np.cumsum(starts)


def _merged(turns: list[tuple[str, str]]) -> list[dict]:
    out: list[dict] = []
    for role, text in turns:
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n" + text
        else:
            out.append({"role": role, "content": text})
    return out


def _problem(turns: list[dict]) -> str | None:
    roles = [t["role"] for t in turns]
    if "user" not in roles:
        return "has no user turn"
    if "assistant" not in roles:
        return "has no assistant turn"
    return None
