"""The request and response shapes of the API: OpenAI's chat completions (the fields existing clients send and
parse) and the studio's small classify call."""
from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """One turn. Content may be text or OpenAI's list of parts (the text parts are joined)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") in (None, "text"))
        return self.content or ""

    def turn(self) -> dict:
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``; fields clients send that do not apply here (tools, logprobs) are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    stream: bool = False
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)

    def limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [s for s in ([self.stop] if isinstance(self.stop, str) else self.stop) if s]


class ClassifyRequest(BaseModel):
    """``POST /v1/classify``: ``input`` is a text (or list of texts) for text classifiers, and a base64 image or
    ``data:image/...;base64,`` URL (or a list) for image classifiers."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    input: str | list[str]
    top_k: int = Field(3, ge=1, le=1000)

    def items(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(cid: str, model: str, text: str, finish: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """A whole ``chat.completion`` object."""
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def chunk(cid: str, model: str, delta: dict, finish: str | None = None) -> dict:
    """One ``chat.completion.chunk`` of a streamed answer."""
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def error(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict:
    """OpenAI's error body, which its clients turn into a readable exception."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}
