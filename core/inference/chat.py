"""Talk to a base or tuned chat model: streamed answers for the playground, base and tuned from one model.

For LoRA/QLoRA runs the base answer comes from the same weights with the adapter switched off, so comparing
costs no second model in memory. A lock serialises generation: two browser tabs never toggle the adapter
under each other.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from ..config import JobConfig
from ..home import Home
from ..models.templates import render
from ..runs import RunDir
from ..strategies import get_strategy, quantization_config


class ChatModel:
    """A chat model ready to answer, with its tokenizer; optionally a tuned variant beside the base.

    Build it with ``from_run`` or ``from_base``.
    """

    def __init__(self, model, tokenizer, has_tuned: bool, base_loader=None, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.has_tuned = has_tuned
        self.name = name
        self._base_loader = base_loader  # full fine-tunes: loads the base only when it is asked for
        self._base = None
        self._lock = threading.Lock()

    @classmethod
    def from_run(cls, run_dir: str | Path, home: Home) -> "ChatModel":
        """The tuned model of a finished run (adapter on its base, or the full fine-tune).

        Args:
            run_dir: the run folder (holds config.yaml and model/).
            home: the studio home, to find the base model.
        """
        from ..models import load_causal_lm, load_tokenizer, resolve_model

        run = RunDir(Path(run_dir))
        config = JobConfig.load(run.config)
        weights = run.model
        if not weights.is_dir():
            raise FileNotFoundError(f"{run.name} has no trained model yet (no model/ folder): wait for the "
                                    "run to finish, or resume it.")
        resolved = resolve_model(config.model, home, task="chat")
        tokenizer = _tokenizer_from(weights, lambda: load_tokenizer(resolved))
        if (weights / "adapter_config.json").is_file():
            from peft import PeftModel

            model = PeftModel.from_pretrained(load_causal_lm(resolved, **_load_kwargs(config)), weights)
            return cls(model.eval(), tokenizer, has_tuned=True, name=run.name)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
        return cls(model, tokenizer, has_tuned=True, name=run.name,
                   base_loader=lambda: load_causal_lm(resolved).eval())

    @classmethod
    def from_base(cls, name: str, home: Home) -> "ChatModel":
        """A catalog or local model as it is, untuned.

        Args:
            name: a catalog key, hub id or local folder.
            home: the studio home (model cache).
        """
        from ..models import load_causal_lm, load_tokenizer, resolve_model

        resolved = resolve_model(name, home, task="chat")
        return cls(load_causal_lm(resolved).eval(), load_tokenizer(resolved), has_tuned=False, name=name)

    def stream(self, messages: list[dict], use_tuned: bool = True, max_new_tokens: int = 256,
               temperature: float = 0.7, top_p: float = 0.9, system: str | None = None) -> Iterator[str]:
        """Yield the answer as it grows: each item is the whole answer text so far (not a token piece).

        Args:
            messages: the conversation so far, ending with the user's turn.
            use_tuned: answer with the tuned model (True) or the base (False).
            max_new_tokens: the answer's length limit in tokens.
            temperature: sampling temperature; 0 means greedy (deterministic).
            top_p: nucleus sampling threshold (ignored when greedy).
            system: a system prompt put first (replaces one already in ``messages``).
        """
        _check_messages(messages)
        conversation = _with_system(messages, system)
        text = render(self.tokenizer, conversation, add_generation_prompt=True)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        with self._lock:
            model, switch = self._variant(use_tuned)
            enc = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").to(_device(model))
            kwargs = dict(**enc, streamer=streamer, max_new_tokens=max_new_tokens, use_cache=True,
                          pad_token_id=self.tokenizer.pad_token_id, **_sampling(temperature, top_p))
            cancel = threading.Event()
            kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled(cancel)])
            errors: list[BaseException] = []
            worker = threading.Thread(target=_generate, args=(model, switch, kwargs, errors, streamer), daemon=True)
            worker.start()
            answer = ""
            try:
                for piece in streamer:
                    answer += piece
                    yield answer
            finally:
                # A consumer that stops reading (closed tab) must not leave the adapter switched off for others.
                cancel.set()
                worker.join()
        if errors:
            raise errors[0]

    def generate(self, messages: list[dict], use_tuned: bool = True, **settings) -> str:
        """The whole answer at once (same arguments as ``stream``)."""
        answer = ""
        for answer in self.stream(messages, use_tuned=use_tuned, **settings):
            pass
        return answer

    def _variant(self, use_tuned: bool):
        """(model, context manager to run it under) for the tuned or base answer."""
        if use_tuned or not self.has_tuned:
            return self.model, contextlib.nullcontext()
        if hasattr(self.model, "disable_adapter"):
            return self.model, self.model.disable_adapter()
        if self._base is None:
            self._base = self._base_loader()
        return self._base, contextlib.nullcontext()


class _Cancelled(StoppingCriteria):
    """A stopping criterion that ends generation once ``event`` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _generate(model, switch, kwargs, errors, streamer) -> None:
    try:
        with switch, torch.no_grad():
            model.generate(**kwargs)
    except BaseException as exc:  # surfaced by the consumer; the streamer must still end
        errors.append(exc)
        streamer.end()


def _sampling(temperature: float, top_p: float) -> dict:
    if temperature is None or temperature <= 0:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p)}


def _with_system(messages: list[dict], system: str | None) -> list[dict]:
    if not system:
        return list(messages)
    rest = [m for m in messages if m.get("role") != "system"]
    return [{"role": "system", "content": system}] + rest


def _check_messages(messages: list[dict]) -> None:
    if not messages:
        raise ValueError("There is no message to answer: write something first.")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise ValueError(f"Each message needs a role (system, user or assistant) and text content; got {m!r}.")


def _tokenizer_from(folder: Path, fallback):
    """The tokenizer saved with the run (it carries the chat template used in training), else the base's."""
    if (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    return fallback()


def _load_kwargs(config: JobConfig) -> dict:
    """QLoRA adapters were trained on a 4-bit base; answering with that base keeps their outputs faithful."""
    if not get_strategy(config.strategy).quantised:
        return {}

    device_map = {"": 0} if torch.cuda.is_available() else "cpu"
    return {"quantization_config": quantization_config(), "device_map": device_map}


def _device(model) -> torch.device:
    return next(model.parameters()).device
