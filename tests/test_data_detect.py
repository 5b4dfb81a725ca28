"""Detection of the task and column roles for each recognised naming, and user overrides."""
from __future__ import annotations

import json

import pytest

from core.data import inspect_columns, load_data
from tests.conftest_data import write


def _csv(tmp_path, header, rows=8, make=lambda i, col: f"{col} value {i}"):
    cols = header.split(",")
    lines = [header] + [",".join(make(i, c) for c in cols) for i in range(rows)]
    return write(tmp_path / "d.csv", "\n".join(lines) + "\n")


@pytest.mark.parametrize("header, prompt, response", [
    ("question,answer", "question", "answer"),
    ("prompt,completion", "prompt", "completion"),
    ("prompt,response", "prompt", "response"),
    ("query,reply", "query", "reply"),
    ("Instruction,Output", "Instruction", "Output"),
    ("input,output", "input", "output"),
    ("User Question,Agent Answer", "User Question", "Agent Answer"),
])
def test_chat_pairs(tmp_path, header, prompt, response):
    data = load_data(_csv(tmp_path, header))
    assert data.report.ok, data.report
    assert data.task == "chat" and data.columns == {"prompt": prompt, "response": response}
    turns = data.train[0]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert any(prompt in s for s in data.detection)


def test_instruction_input_output_with_system(tmp_path):
    path = write(tmp_path / "a.csv", "system,instruction,input,output\n"
                 + "\n".join(f"Be brief.,Translate {i},bonjour {i},hello {i}" for i in range(5))
                 + "\n,Say hi,,hi\n")
    data = load_data(path, validation_fraction=0.2)
    assert data.columns == {"prompt": "instruction", "input": "input", "response": "output", "system": "system"}
    every = list(data.train["messages"]) + list(data.validation["messages"])
    full = next(m for m in every if m[-1]["content"] == "hello 1")
    assert full[0] == {"role": "system", "content": "Be brief."}
    assert full[1]["content"] == "Translate 1\n\nbonjour 1"
    bare = next(m for m in every if m[-1]["content"] == "hi")
    assert [t["role"] for t in bare] == ["user", "assistant"] and bare[0]["content"] == "Say hi"


def test_openai_messages_jsonl(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(5)]
    (tmp_path / "m.jsonl").write_text("\n".join(map(json.dumps, rows)))
    data = load_data(tmp_path / "m.jsonl")
    assert data.task == "chat" and data.columns == {"messages": "messages"}
    assert data.train[0]["messages"][0] == {"role": "system", "content": "S"}


def test_sharegpt_conversations(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}],
             "system": "Be kind."} for i in range(5)]
    (tmp_path / "s.json").write_text(json.dumps(rows))
    data = load_data(tmp_path / "s.json")
    assert data.columns == {"messages": "conversations", "system": "system"}
    assert [t["role"] for t in data.train[0]["messages"]] == ["system", "user", "assistant"]


def test_messages_as_json_text_in_csv(tmp_path):
    conv = json.dumps([{"role": "user", "content": "hi, there"}, {"role": "assistant", "content": "hello"}])
    cell = '"' + conv.replace('"', '""') + '"'
    path = write(tmp_path / "c.csv", "messages\n" + "\n".join([cell] * 2) + "\n" + cell.replace("hello", "hey") + "\n")
    data = load_data(path)
    assert data.task == "chat" and data.report.ok, data.report
    assert "duplicates" in data.report.codes()


@pytest.mark.parametrize("header, text, label", [
    ("text,label", "text", "label"),
    ("sentence,category", "sentence", "category"),
    ("review,sentiment", "review", "sentiment"),
    ("Ticket Body,Department", "Ticket Body", "Department"),
    ("description,intent", "description", "intent"),
])
def test_classification_names(tmp_path, header, text, label):
    def make(i, col):
        return f"words for row {i}" if col == header.split(",")[0] else "ab"[i % 2]
    data = load_data(_csv(tmp_path, header, rows=10, make=make))
    assert data.task == "text-classification" and data.columns == {"text": text, "label": label}


def test_classification_by_content(tmp_path):
    lines = ["id,blurb,kind"] + [f"{i},a fairly long piece of writing number {i},{'pq'[i % 2]}" for i in range(20)]
    data = load_data(write(tmp_path / "x.csv", "\n".join(lines)))
    assert data.task == "text-classification" and data.columns == {"label": "kind", "text": "blurb"}
    assert any("2 distinct values" in s for s in data.detection)


def test_overrides_win(tmp_path):
    def make(i, col):
        return "ab"[i % 2] if col == "topic" else f"{col} {i}"
    path = _csv(tmp_path, "question,answer,topic", rows=10, make=make)
    data = load_data(path, task="text-classification", columns={"text": "QUESTION", "label": " Topic "})
    assert data.task == "text-classification" and data.columns == {"text": "question", "label": "topic"}
    assert any("as you chose" in s for s in data.detection)


def test_header_with_carriage_return_in_json_keys(tmp_path):
    (tmp_path / "k.jsonl").write_text("\n".join(json.dumps({"Text\r": f"t {i}", '"Label"': "ab"[i % 2]})
                                                for i in range(6)))
    data = load_data(tmp_path / "k.jsonl")
    assert data.columns == {"label": "Label", "text": "Text"}


def test_inspect_columns(tmp_path):
    assert inspect_columns(_csv(tmp_path, " A ,b")) == ["A", "b"]
