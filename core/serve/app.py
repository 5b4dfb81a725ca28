"""The API app (FastAPI, which the studio already has through gradio): OpenAI's ``/v1/models`` and
``/v1/chat/completions`` (whole or streamed as server-sent events) for chat runs, ``/v1/classify`` for
classifiers, ``/health`` for both."""
from __future__ import annotations

import base64
import binascii
import io
import json
import secrets
from pathlib import Path
from typing import Iterator

from .schema import ChatRequest, ClassifyRequest, chunk, completion, completion_id, error

DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.7  # the playground's; OpenAI's own default (1.0) rambles on a small model


class Served:
    """The loaded model of one run and what the routes need to answer with it.

    Args:
        run_dir: a finished run (chat or classifier).
        home: the studio home, to find the base model.
    """

    def __init__(self, run_dir: Path, home) -> None:
        from ..config import JobConfig
        from ..runs import RunDir

        run = RunDir(Path(run_dir))
        if not run.config.is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (it has no config.yaml): pick one from "
                                    "`studio runs`.")
        self.config = JobConfig.load(run.config)
        self.task = self.config.task
        self.name = run.name
        from ..tasks import get_task

        if get_task(self.task).kind == "generation":  # chat, preference pairs, documents: a chat model
            from ..inference.chat import ChatModel
            self.chat, self.classifier = ChatModel.from_run(run.path, home), None
        else:
            from ..inference.classify import Classifier
            self.chat, self.classifier = None, Classifier.from_run(run.path, home)
            self.classifier.predict_batch([_probe_item(self.task)])  # load now, not on the first request

    # --- chat ----------------------------------------------------------------------------------------------
    def answer(self, request: ChatRequest) -> Iterator[tuple[str, str | None]]:
        """(new text, finish reason or None) pieces of the answer; the last piece carries the finish reason."""
        messages = [m.turn() for m in request.messages]
        limit = request.limit(DEFAULT_MAX_TOKENS)
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        stops, sent, text = request.stops(), "", ""
        stream = self.chat.stream(messages, max_new_tokens=limit, temperature=temperature,
                                  top_p=request.top_p or 0.9)
        try:
            for text in stream:
                cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                if cut >= 0:
                    yield text[len(sent):cut], "stop"
                    return
                # Text that may be the start of a stop string waits until the next piece settles it.
                safe = len(text) - _held_back(text, stops)
                if safe > len(sent):
                    yield text[len(sent):safe], None
                    sent = text[:safe]
        finally:
            stream.close()  # a client that hung up ends the generation at once
        yield text[len(sent):], "length" if self.count(text) >= limit else "stop"

    def count(self, text: str) -> int:
        return len(self.chat.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def prompt_tokens(self, request: ChatRequest) -> int:
        from ..models.templates import render
        return self.count(render(self.chat.tokenizer, [m.turn() for m in request.messages], True))

    # --- classify ------------------------------------------------------------------------------------------
    def classify(self, request: ClassifyRequest) -> dict:
        items = [self._item(value, i) for i, value in enumerate(request.items())]
        probs = self.classifier.predict_batch(items)
        labels = self.classifier.labels
        data = []
        for i, p in enumerate(probs):
            order = p.argsort()[::-1][:request.top_k]
            data.append({"index": i, "label": labels[order[0]], "score": float(p[order[0]]),
                         "scores": [{"label": labels[k], "score": float(p[k])} for k in order]})
        return {"object": "list", "model": self.name, "data": data}

    def _item(self, value: str, index: int):
        if self.task == "text-classification":
            if not value.strip():
                raise ValueError(f"input[{index}] is empty: give a text to classify.")
            return value
        from PIL import Image, UnidentifiedImageError

        from ..data.images import to_rgb

        raw = value.split(",", 1)[1] if value.startswith("data:") else value
        try:  # flattened as training flattened it: a transparent PNG's background is white, not its hidden black
            return to_rgb(Image.open(io.BytesIO(base64.b64decode(raw, validate=True))))
        except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
            raise ValueError(f"input[{index}] is not a base64-encoded image (PNG, JPEG...): send the file's bytes "
                             "base64-encoded, or a data:image/png;base64,... URL.") from None


def _held_back(text: str, stops: list[str]) -> int:
    """How many characters at the end of ``text`` could begin a stop string (and must not be sent yet)."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


def _probe_item(task: str):
    if task == "text-classification":
        return "hello"
    from PIL import Image
    return Image.new("RGB", (32, 32))


def create_app(run_dir: Path, home, api_key: str | None = None):
    """A FastAPI app answering for the run's tuned model (loaded now, so the first request is quick).

    Args:
        run_dir: a finished chat or classifier run.
        home: the studio home.
        api_key: when set, every request must send ``Authorization: Bearer <api_key>``.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse

    served = Served(run_dir, home)
    app = FastAPI(title=f"Finetune Studio: {served.name}", docs_url="/docs", redoc_url=None)
    app.state.served = served

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/") and not secrets.compare_digest(
                request.headers.get("authorization", ""), f"Bearer {api_key}"):
            return JSONResponse(error("Missing or wrong API key: send 'Authorization: Bearer <key>'.",
                                      "authentication_error"), status_code=401)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(error(f"{where or 'request'}: {first.get('msg', 'invalid request')}", param=where),
                            status_code=400)

    @app.get("/health")
    def health():
        return {"status": "ok", "model": served.name, "task": served.task}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": served.name, "object": "model", "created": 0,
                                            "owned_by": "finetune-studio", "task": served.task}]}

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatRequest):
        if served.chat is None:
            return _wrong_task(served, "/v1/classify")
        if body.stream:
            return StreamingResponse(_events(served, body), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        text, finish = "", "stop"
        for piece, reason in served.answer(body):
            text += piece
            finish = reason or finish
        return completion(completion_id(), served.name, text, finish, served.prompt_tokens(body), served.count(text))

    @app.post("/v1/classify")
    def classify(body: ClassifyRequest):
        if served.classifier is None:
            return _wrong_task(served, "/v1/chat/completions")
        try:
            return served.classify(body)
        except ValueError as exc:
            return JSONResponse(error(str(exc), param="input"), status_code=400)

    return app


def _wrong_task(served: Served, other: str):
    from fastapi.responses import JSONResponse

    return JSONResponse(error(f"{served.name} is a {served.task} model: use {other}.", "invalid_request_error"),
                        status_code=400)


def _events(served: Served, body: ChatRequest) -> Iterator[str]:
    """Server-sent events as OpenAI streams them: a role chunk, content chunks, a finish chunk, [DONE]."""
    cid = completion_id()
    yield _sse(chunk(cid, served.name, {"role": "assistant", "content": ""}))
    for piece, reason in served.answer(body):
        if piece:
            yield _sse(chunk(cid, served.name, {"content": piece}))
        if reason:
            yield _sse(chunk(cid, served.name, {}, reason))
    yield "data: [DONE]\n\n"


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
