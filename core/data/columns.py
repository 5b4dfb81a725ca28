"""What each column of a table holds, read from its values and its name: the evidence for column roles.

A profile says whether a column is free text, a few categories, a rating scale, or metadata (identifiers,
dates, counts, e-mail addresses, channels, priorities...), and why, in words that go into messages.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from .readers import header_key
from .text import as_text, blank_missing

PROFILE_ROWS = 20_000  # distinct values are counted on this many rows
SAMPLE_ROWS = 2_000  # lengths and value patterns are measured on a sample this big
NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?%?"
DATE = (r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}:?\d{2})?)?"
        r"|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}(?:,?\s+\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?)?"
        r"|\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?"
        r"|\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{4}|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}(?:\s+\d{1,2}:\d{2}.*)?"
        r"|\d{10}(?:\d{3})?")  # Unix timestamps in seconds or milliseconds
EMAIL = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"
URL = r"(?:https?://|www\.)\S+"
BOOLEAN = {"true", "false", "yes", "no", "y", "n", "t", "f"}

# Words in a header that say what the column is. A label name counts only when no metadata word is in it.
LABEL_WORDS = ("label", "labels", "class", "classes", "category", "categories", "target", "intent", "intents",
               "sentiment", "department", "dept", "tag", "tags", "topic", "topics", "team", "queue", "rating",
               "stars", "star", "polarity", "emotion", "genre", "classification", "outcome", "verdict", "reason",
               "type", "kind", "y")
EXPLICIT_LABELS = {"label", "labels", "class", "target", "y", "category", "class_name", "label_name",
                   "label_text", "classes"}
METADATA_WORDS = {
    "id": "an identifier", "ids": "identifiers", "uuid": "an identifier", "guid": "an identifier",
    "key": "an identifier", "no": "a number", "nr": "a number", "num": "a number", "number": "a number",
    "ref": "a reference", "reference": "a reference", "date": "a date", "time": "a time",
    "timestamp": "a timestamp", "datetime": "a timestamp", "created": "a date", "updated": "a date",
    "modified": "a date", "closed": "a date", "opened": "a date", "resolved": "a date", "day": "a date",
    "week": "a date", "month": "a date", "year": "a date", "hour": "a time", "channel": "the channel",
    "source": "the source", "medium": "the channel", "via": "the channel", "platform": "the platform",
    "device": "the device", "browser": "the browser", "os": "the device", "priority": "the priority",
    "severity": "the severity", "urgency": "the urgency", "status": "the status", "state": "the status",
    "stage": "the stage", "votes": "a count", "vote": "a count", "helpful": "a count", "likes": "a count",
    "count": "a count", "counts": "a count", "total": "a count", "views": "a count", "email": "an e-mail",
    "mail": "an e-mail", "phone": "a phone number", "country": "a place", "region": "a place",
    "city": "a place", "locale": "the language", "language": "the language", "lang": "the language",
    "verified": "a yes/no flag", "assignee": "a person", "owner": "a person", "author": "a person",
    "user": "a person", "username": "a person", "customer": "a person", "agent": "a person",
    "reporter": "a person", "requester": "a person", "submitter": "a person", "creator": "a person",
    "origin": "the channel", "medium_type": "the channel",
    "name": "a name", "url": "a link", "link": "a link", "version": "a version", "sku": "a product code",
    "order": "an order", "price": "an amount", "amount": "an amount", "cost": "an amount",
    "duration": "a duration", "sla": "a service level", "age": "a number",
    "split": "the split", "fold": "the split", "index": "a row number", "row": "a row number",
}
TEXT_WORDS = ("text", "sentence", "content", "review", "body", "message", "comment", "comments", "description",
              "tweet", "document", "utterance", "query", "question", "post", "transcript", "feedback",
              "complaint", "request", "issue", "paragraph", "passage", "statement", "caption", "details",
              "narrative", "verbatim", "email_body", "ticket")
SHORT_TEXT_WORDS = ("title", "subject", "summary", "headline", "notes", "note", "name", "keywords")


@dataclass
class Profile:
    """What one column holds.

    ``kind``: empty, constant, date, email, url, number, rating, boolean, id, text, category or short_text.
    ``metadata``: why the column looks like metadata (``"its name says it is the channel"``), or "".
    """

    column: str
    kind: str
    filled: int
    distinct: int
    mean_length: float
    mean_words: float
    metadata: str = ""
    examples: tuple = ()
    partition: int | None = None  # equal for two columns that group the rows identically

    @property
    def categorical(self) -> bool:
        """Few distinct short values: could be classes."""
        return self.kind in ("category", "rating", "boolean")

    def describe(self) -> str:
        """``'Channel' (2 values, e.g. 'email', 'chat')`` for messages."""
        shown = ", ".join(repr(e) for e in self.examples[:3])
        return f"{self.column!r} ({self.distinct} values, e.g. {shown})"


def profile_columns(frame: pd.DataFrame) -> dict[str, Profile]:
    """A profile of every column, from the first ``PROFILE_ROWS`` rows.

    Args:
        frame: the table.
    """
    head = frame.head(PROFILE_ROWS)
    limit = category_limit(len(frame))
    return {col: _profile(col, head[col], limit) for col in frame.columns}


def category_limit(rows: int) -> int:
    """The most distinct values a column may have and still be classes: at most half the rows, and 200."""
    return max(2, min(200, rows // 2))


def header_words(column) -> list[str]:
    """A header split into lower-case words (``"Assigned team"`` -> ``["assigned", "team"]``, camelCase too)."""
    text = re.sub(r"([a-z])([A-Z])", r"\1_\2", str(column))
    return [w for w in re.split(r"[^0-9a-z]+", header_key(text)) if w]


def head_word(column) -> str:
    """The word a header is about: its last word of letters ("Issue Type" -> "type", "Category L1" ->
    "category"), so "Conversation rating" names a rating but "Issue Type" does not name an issue."""
    words = [w for w in header_words(column) if w.isalpha() and len(w) > 1]
    return words[-1] if words else ""


def metadata_word(column) -> str:
    """What a header's words say the column is, when they name metadata (``"the channel"``), else ""."""
    for word in header_words(column):
        if word in METADATA_WORDS:
            return METADATA_WORDS[word]
    if header_key(column).endswith("id") and len(header_key(column)) <= 12 and header_key(column)[:-2].isalpha():
        return "an identifier"  # TicketID, userid
    return ""


def label_name(column) -> str:
    """The label word a header holds (``"team"`` for "Assigned team"), unless it also names metadata."""
    key = header_key(column)
    if key in EXPLICIT_LABELS:
        return key
    if metadata_word(column):
        return ""
    head = head_word(column)
    return head if head in LABEL_WORDS else ""


def text_name(column, short: bool = False) -> str:
    """The text word a header holds (``"body"`` for "Ticket Body"); ``short`` asks for title-like words."""
    words = SHORT_TEXT_WORDS if short else TEXT_WORDS
    key = header_key(column)
    if key in words:
        return key
    head = head_word(column)
    return head if head in words else ""


def _profile(column, values: pd.Series, limit: int) -> Profile:
    text, _ = blank_missing(as_text(values).str.strip())
    filled = text[text != ""]
    n = len(filled)
    if n == 0:
        return Profile(column, "empty", 0, 0, 0.0, 0.0)
    counts = filled.value_counts()
    distinct = len(counts)
    sample = filled if n <= SAMPLE_ROWS else filled.sample(SAMPLE_ROWS, random_state=0)
    lengths = sample.str.len()
    words = sample.str.count(" ") + 1  # a literal count: the regex form costs seconds on 100k long texts
    profile = Profile(column, "", n, distinct, float(lengths.mean()), float(words.mean()),
                      examples=tuple(counts.index[:5]))
    profile.kind = _kind(filled, counts, profile, limit)
    profile.metadata = _metadata(column, profile)
    if profile.categorical:
        codes, _ = pd.factorize(text)
        profile.partition = hash(codes.tobytes())
    return profile


def _kind(filled: pd.Series, counts: pd.Series, p: Profile, limit: int) -> str:
    if p.distinct == 1:
        return "constant"
    sample = filled if len(filled) <= SAMPLE_ROWS else filled.sample(SAMPLE_ROWS, random_state=0)
    for kind, pattern in (("date", DATE), ("email", EMAIL), ("url", URL)):
        if sample.str.fullmatch(pattern).mean() >= 0.9:
            return kind
    if set(counts.index.str.lower()) <= BOOLEAN:
        return "boolean"
    if sample.str.fullmatch(NUMBER).mean() >= 0.95:
        return _number_kind(counts)
    if p.distinct >= 0.9 * p.filled and p.filled >= 5 and p.mean_words <= 1.5 and \
            sample.str.contains(r"\d").mean() >= 0.8:
        return "id"
    if p.distinct <= limit and p.mean_length <= 40:
        return "category"
    if p.mean_words >= 4 or p.mean_length >= 30:
        return "text"
    return "short_text"


def _number_kind(counts: pd.Series) -> str:
    """Small whole numbers (0/1, 1-5 stars, 1-10) are a scale that can be classes; other numbers are amounts."""
    try:
        values = pd.to_numeric(counts.index.str.replace(",", "").str.rstrip("%"))
    except (ValueError, TypeError):
        return "number"
    whole = (values == values.round()).all()
    if whole and len(values) <= 11 and values.min() >= -10 and values.max() <= 10:
        return "rating"
    return "number"


CONTENT_METADATA = {"date": "its values are dates or times", "email": "its values are e-mail addresses",
                    "url": "its values are links", "number": "its values are numbers (counts or amounts)",
                    "id": "its values are identifiers, one per row"}


def _metadata(column, p: Profile) -> str:
    if p.kind in CONTENT_METADATA:
        return CONTENT_METADATA[p.kind]
    word = metadata_word(column)
    if word and not (header_key(column) in EXPLICIT_LABELS):
        return f"its name says it is {word}"
    return ""
