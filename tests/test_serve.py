"""The API: the real `openai` client talks to it unchanged (answers whole and streamed, models, errors), the raw
server-sent events have OpenAI's shape, classifiers answer /v1/classify, and a real server starts and stops."""
from __future__ import annotations

import base64
import io
import json

import openai
import pytest
from fastapi.testclient import TestClient

from core.inference.chat import ChatModel
from core.inference.classify import Classifier
from core.serve import create_app, start_server
from tests import support_runs

QUESTION = [{"role": "user", "content": "What colour is the sky?"}]


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    run = support_runs.chat_run(tmp_path_factory)
    app = create_app(run.path, support_runs.home(tmp_path_factory))
    http = TestClient(app)
    return run, http, openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=http)


def test_the_openai_client_gets_a_whole_answer(chat, tmp_path_factory):
    run, _, client = chat
    models = client.models.list()
    assert [m.id for m in models.data] == [run.name]
    reply = client.chat.completions.create(model=run.name, messages=QUESTION, temperature=0, max_tokens=8)
    expected = ChatModel.from_run(run.path, support_runs.home(tmp_path_factory)).generate(
        QUESTION, temperature=0, max_new_tokens=8)
    assert reply.object == "chat.completion" and reply.model == run.name
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content == expected
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5 and reply.usage.total_tokens == reply.usage.prompt_tokens + \
        reply.usage.completion_tokens


def test_a_streamed_answer_arrives_in_pieces_that_add_up_to_the_whole(chat):
    run, _, client = chat
    whole = client.chat.completions.create(model=run.name, messages=QUESTION, temperature=0, max_tokens=8)
    chunks = list(client.chat.completions.create(model=run.name, messages=QUESTION, temperature=0, max_tokens=8,
                                                 stream=True))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks][-1] == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_the_raw_stream_is_server_sent_events_ending_in_done(chat):
    run, http, _ = chat
    response = http.post("/v1/chat/completions", json={"messages": QUESTION, "stream": True, "max_tokens": 4,
                                                       "temperature": 0})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    first = json.loads(events[0][len("data: "):])
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_stop_strings_and_bad_requests(chat):
    run, http, client = chat
    whole = client.chat.completions.create(model=run.name, messages=QUESTION, temperature=0, max_tokens=8)
    text = whole.choices[0].message.content
    assert len(text) > 2  # the tiny model says something (a few words), so a stop string can cut it
    cut = client.chat.completions.create(model=run.name, messages=QUESTION, temperature=0, max_tokens=8,
                                         stop=[text[2:]])
    assert cut.choices[0].message.content == text[:2] and cut.choices[0].finish_reason == "stop"
    pieces = list(client.chat.completions.create(model=run.name, messages=QUESTION, temperature=0, max_tokens=8,
                                                 stop=text[2:], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in pieces) == text[:2]  # nothing past the stop leaks
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=run.name, messages=[])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model=run.name, messages=QUESTION, temperature=5)
    wrong = http.post("/v1/classify", json={"input": "hello"})
    assert wrong.status_code == 400 and "use /v1/chat/completions" in wrong.json()["error"]["message"]


def test_an_api_key_is_required_when_set(tmp_path_factory):
    run = support_runs.chat_run(tmp_path_factory)
    http = TestClient(create_app(run.path, support_runs.home(tmp_path_factory), api_key="s3cret"))
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url="http://testserver/v1", api_key="wrong", http_client=http).models.list()
    good = openai.OpenAI(base_url="http://testserver/v1", api_key="s3cret", http_client=http)
    assert good.models.list().data[0].id == run.name
    assert http.get("/health").json()["status"] == "ok"  # health needs no key


def test_text_and_image_classifiers_answer_classify(tmp_path_factory):
    from PIL import Image

    home = support_runs.home(tmp_path_factory)
    text_run = support_runs.head_only_text_run(tmp_path_factory)
    http = TestClient(create_app(text_run.path, home))
    body = http.post("/v1/classify", json={"input": ["goal match team the a we", "rain storm cloud"], "top_k": 2})
    data = body.json()["data"]
    expected = Classifier.from_run(text_run.path, home).predict("goal match team the a we")
    assert [d["index"] for d in data] == [0, 1] and len(data[0]["scores"]) == 2
    assert data[0]["label"] == expected[0][0] and data[0]["score"] == pytest.approx(expected[0][1], abs=1e-5)
    assert http.post("/v1/classify", json={"input": "  "}).json()["error"]["message"].startswith("input[0] is empty")
    image_run = support_runs.head_only_image_run(tmp_path_factory)
    http = TestClient(create_app(image_run.path, home))
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (200, 40, 40)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    answer = http.post("/v1/classify", json={"input": f"data:image/png;base64,{encoded}"}).json()["data"][0]
    assert answer["label"] == "red" and sum(s["score"] for s in answer["scores"]) == pytest.approx(1.0, abs=1e-4)
    # a transparent PNG (an icon, a logo) is flattened on white as the training images were, not on the black
    # its transparent pixels hide: the served scores are the classifier's own for the white-backed image
    icon = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    icon.paste((200, 40, 40, 255), (6, 6, 18, 18))
    buffer = io.BytesIO()
    icon.save(buffer, format="PNG")
    served = http.post("/v1/classify", json={"input": base64.b64encode(buffer.getvalue()).decode(), "top_k": 3})
    scores = {s["label"]: s["score"] for s in served.json()["data"][0]["scores"]}
    classifier = Classifier.from_run(image_run.path, home)
    on_white, on_black = (dict(classifier.predict(Image.alpha_composite(Image.new("RGBA", (24, 24), back), icon)
                                                  .convert("RGB"))) for back in ((255, 255, 255, 255), (0, 0, 0, 255)))
    assert on_white != pytest.approx(on_black, abs=1e-3)
    assert scores == pytest.approx(on_white, abs=1e-5)
    refused = http.post("/v1/classify", json={"input": "not base64!"})
    assert refused.status_code == 400 and "base64" in refused.json()["error"]["message"]


def test_a_real_server_answers_over_http_and_stops(tmp_path_factory):
    run = support_runs.chat_run(tmp_path_factory)
    said = []
    server = start_server(run.path, support_runs.home(tmp_path_factory), progress=said.append)
    try:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=4)
        assert reply.choices[0].message.role == "assistant" and server.task == "chat"
        assert said[-1] == f"Serving {run.name} on {server.url}."
    finally:
        server.stop()
    assert not server.running
