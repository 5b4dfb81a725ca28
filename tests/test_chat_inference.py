"""Streaming answers from a trained run: growing text, greedy is deterministic, base and tuned differ."""
from __future__ import annotations

import threading

import pytest
import torch

from core.engine.chat import ChatRecipe
from core.inference.chat import ChatModel
from tests.test_chat_support import context

torch.set_num_threads(1)

QUESTION = [{"role": "user", "content": "What colour is the plum?"}]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chat-run")
    ctx, _ = context(tmp, "lora", learning_rate=1e-2)
    recipe = ChatRecipe(ctx)
    recipe.setup()
    recipe.train()
    recipe.save()
    recipe.cleanup()
    return ctx


def test_stream_yields_growing_text_and_base_differs(trained_run):
    chat = ChatModel.from_run(trained_run.run.path, trained_run.home)
    pieces = list(chat.stream(QUESTION, use_tuned=True, max_new_tokens=12, temperature=0))
    assert pieces and all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))
    tuned = pieces[-1]
    assert tuned == chat.generate(QUESTION, use_tuned=True, max_new_tokens=12, temperature=0)
    base = chat.generate(QUESTION, use_tuned=False, max_new_tokens=12, temperature=0)
    assert base != tuned
    # the adapter is back on after a base answer
    assert chat.generate(QUESTION, use_tuned=True, max_new_tokens=12, temperature=0) == tuned


def test_abandoned_stream_releases_the_model(trained_run):
    chat = ChatModel.from_run(trained_run.run.path, trained_run.home)
    stream = chat.stream(QUESTION, use_tuned=False, max_new_tokens=40, temperature=0.7)
    next(stream, None)
    stream.close()  # a closed tab: generation stops and the lock is free again
    done = threading.Event()
    threading.Thread(target=lambda: (chat.generate(QUESTION, max_new_tokens=4, temperature=0), done.set()),
                     daemon=True).start()
    assert done.wait(60)


def test_from_base_and_bad_messages(trained_run):
    chat = ChatModel.from_base(str(trained_run.config.model), trained_run.home)
    assert isinstance(chat.generate(QUESTION, max_new_tokens=4, temperature=0), str)
    with pytest.raises(ValueError, match="role"):
        chat.generate([{"content": "hi"}])
    with pytest.raises(ValueError, match="no message"):
        chat.generate([])
