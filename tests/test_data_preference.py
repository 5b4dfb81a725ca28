"""Preference pairs: each shared shape detected and normalised, and the checks that keep pairs honest."""
from __future__ import annotations

import csv
import json

import pytest

from core.data import load_data
from core.data.preference import hh_turns, parse_pair
from tests.conftest_data import write


def _rows(n=30, **extra):
    return [{"prompt": f"How do I descale kettle {i}?", "chosen": f"Use citric acid, then rinse twice ({i}).",
             "rejected": f"Vinegar works best ({i}) and never rinse.", **extra} for i in range(n)]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def _csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _pairs(data):
    return list(data.train) + list(data.validation)


@pytest.mark.parametrize("header", [("prompt", "chosen", "rejected"), ("question", "good", "bad"),
                                    ("instruction", "preferred", "dispreferred"),
                                    ("Query", "Chosen Response", "Rejected Response")])
def test_three_text_columns(tmp_path, header):
    path = _csv(tmp_path / "p.csv", header, [(r["prompt"], r["chosen"], r["rejected"]) for r in _rows()])
    data = load_data(path)
    assert data.report.ok, data.report
    assert data.task == "preference"
    assert data.columns == {"prompt": header[0], "chosen": header[1], "rejected": header[2]}
    pair = data.train[0]
    assert pair["prompt"][-1]["role"] == "user" and pair["chosen"].startswith("Use citric")
    assert "preference tuning" in data.detection[0]
    assert len(data.train) + len(data.validation) == 30


def test_system_column_goes_first(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", _rows(system="Answer as Kettlebird support."))
    data = load_data(path)
    assert data.columns["system"] == "system"
    assert data.train[0]["prompt"][0] == {"role": "system", "content": "Answer as Kettlebird support."}


def test_trl_conversational_pairs_with_the_prompt_inside(tmp_path):
    rows = [{"chosen": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"good answer {i}"}],
             "rejected": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"bad {i}"}]}
            for i in range(30)]
    data = load_data(_jsonl(tmp_path / "c.jsonl", rows))
    assert data.report.ok and data.task == "preference" and "prompt" not in data.columns
    pair = next(p for p in _pairs(data) if p["chosen"] == "good answer 3")
    assert pair["prompt"] == [{"role": "user", "content": "q3"}] and pair["rejected"] == "bad 3"
    assert any("read from the conversations" in r for r in data.detection)


def test_prompt_column_beside_full_conversations(tmp_path):
    """UltraFeedback-binarized: a prompt column and chosen/rejected conversations that repeat it."""
    rows = [{"prompt": f"q{i}", "chosen": [{"role": "user", "content": f"q{i}"},
                                          {"role": "assistant", "content": f"long good answer {i}"}],
             "rejected": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"no {i}"}],
             "score_chosen": 8.0, "score_rejected": 3.0} for i in range(30)]
    data = load_data(_jsonl(tmp_path / "u.jsonl", rows))
    assert data.report.ok and data.task == "preference"
    pair = next(p for p in _pairs(data) if p["rejected"] == "no 4")
    assert pair["prompt"] == [{"role": "user", "content": "q4"}]  # once, not twice


def test_explicit_prompt_and_one_turn_answers_as_json_text_in_csv(tmp_path):
    rows = [(f"q{i}", json.dumps([{"role": "assistant", "content": f"fine {i}"}]),
             json.dumps([{"role": "assistant", "content": f"poor {i}"}])) for i in range(25)]
    data = load_data(_csv(tmp_path / "j.csv", ("prompt", "chosen", "rejected"), rows))
    assert data.report.ok
    pair = next(p for p in _pairs(data) if p["chosen"] == "fine 2")
    assert pair == {"prompt": [{"role": "user", "content": "q2"}], "chosen": "fine 2", "rejected": "poor 2"}


def test_hh_rlhf_transcripts(tmp_path):
    rows = [{"chosen": f"\n\nHuman: Hi {i}\n\nAssistant: Hello!\n\nHuman: What is {i} plus one?\n\nAssistant: "
                       f"It is {i + 1}.",
             "rejected": f"\n\nHuman: Hi {i}\n\nAssistant: Hello!\n\nHuman: What is {i} plus one?\n\nAssistant: "
                         "No idea, sorry."} for i in range(30)]
    data = load_data(_jsonl(tmp_path / "hh.jsonl", rows))
    assert data.report.ok and data.task == "preference"
    pair = next(p for p in _pairs(data) if p["chosen"] == "It is 8.")
    assert [t["role"] for t in pair["prompt"]] == ["user", "assistant", "user"]
    assert pair["prompt"][2]["content"] == "What is 7 plus one?" and pair["rejected"] == "No idea, sorry."
    assert data.summary["pairs"]["multi_turn"] == len(data.train)


def test_hh_turns_keep_colons_inside_text():
    turns = hh_turns("\n\nHuman: Note: read this\n\nAssistant: OK: done")
    assert turns == [{"role": "user", "content": "Note: read this"}, {"role": "assistant", "content": "OK: done"}]


def test_columns_chosen_by_the_user(tmp_path):
    rows = [(f"q{i}", f"answer A {i}", f"answer B {i}") for i in range(25)]
    path = _csv(tmp_path / "ab.csv", ("ask", "a", "b"), rows)
    data = load_data(path, columns={"prompt": "ask", "chosen": "b", "rejected": "a"})
    assert data.report.ok and data.task == "preference"
    assert data.train[0]["chosen"].startswith("answer B")


def test_a_missing_rejected_column_says_what_to_name_it(tmp_path):
    path = _csv(tmp_path / "m.csv", ("prompt", "chosen", "note"), [("q", "a", "n")] * 3)
    data = load_data(path, task="preference")
    assert [p.code for p in data.report.errors] == ["missing_column"]
    assert "'rejected'" in data.report.errors[0].fix


def test_unusable_pairs_are_dropped_in_plain_words(tmp_path):
    rows = [(r["prompt"], r["chosen"], r["rejected"]) for r in _rows(24)]
    rows += [("q empty", "", "bad"), ("q same", "Same answer.", "same  answer."), ("", "only answers", "no prompt")]
    rows += [rows[0]]  # an exact repeat
    data = load_data(_csv(tmp_path / "u.csv", ("prompt", "chosen", "rejected"), rows))
    assert data.report.ok
    messages = " ".join(w.message for w in data.report.warnings)
    assert "empty chosen or rejected answer" in messages and "same chosen and rejected answer" in messages
    assert "empty prompt" in messages and "repeats an earlier row" in messages
    assert data.summary["dropped"] == {"bad_pairs": 3, "duplicates": 1}
    assert len(_pairs(data)) == 24


def test_length_bias_and_contradicting_pairs_are_warned(tmp_path):
    rows = [(f"q{i}", f"a long and helpful answer number {i}", f"short {i}") for i in range(30)]
    rows += [("q0", "short 0", "a long and helpful answer number 0")]  # the other way round for q0
    data = load_data(_csv(tmp_path / "b.csv", ("prompt", "chosen", "rejected"), rows))
    codes = data.report.codes()
    assert "length_bias" in codes and "conflicting_pairs" in codes
    bias = next(w for w in data.report.warnings if w.code == "length_bias")
    assert "longer one in 97% of the pairs" in bias.message


def test_split_keeps_pairs_of_a_prompt_together(tmp_path):
    rows = [(f"prompt {i // 3}", f"good {i}", f"bad {i}") for i in range(90)]
    data = load_data(_csv(tmp_path / "g.csv", ("prompt", "chosen", "rejected"), rows), validation_fraction=0.3)
    train = {p["prompt"][-1]["content"] for p in data.train}
    held = {p["prompt"][-1]["content"] for p in data.validation}
    assert train and held and not train & held
    assert data.summary["validation"]["grouped_by"] == "prompt"


def test_validation_file_loses_prompts_seen_in_training(tmp_path):
    train = _csv(tmp_path / "t.csv", ("prompt", "chosen", "rejected"), [(f"q{i}", f"a{i}", f"b{i}") for i in range(30)])
    held = _csv(tmp_path / "v.csv", ("prompt", "chosen", "rejected"),
                [("q1", "other good", "other bad")] + [(f"new {i}", f"a{i}", f"b{i}") for i in range(25)])
    data = load_data(train, validation_path=held)
    assert len(data.validation) == 25 and len(data.train) == 30
    assert "leakage" in data.report.codes()


def test_summary_renders_both_sides_with_the_template(tmp_path):
    from tests.test_chat_support import save_tiny_tokenizer

    tokenizer = save_tiny_tokenizer(tmp_path / "tok")
    data = load_data(_jsonl(tmp_path / "p.jsonl", _rows()), tokenizer=tokenizer, max_length=24)
    example = data.summary["example"]
    assert example["rendered_chosen"].startswith("<|im_start|>system")
    assert "<|im_start|>assistant\n" + example["chosen"] in example["rendered_chosen"]
    assert example["rejected"] in example["rendered_rejected"]
    assert data.summary["token_lengths"]["max"] > 24 and data.summary["truncated"]["count"] > 0
    assert "too_long" in data.report.codes()
    assert list(data.preview.columns) == ["row", "prompt", "chosen", "rejected"]


def test_parse_pair_reasons():
    assert parse_pair("q", "a", "a ") == "has the same chosen and rejected answer (nothing to prefer)"
    assert parse_pair(None, "a", "b").startswith("has no prompt")
    chosen = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a"}]
    rejected = [{"role": "user", "content": "y"}, {"role": "assistant", "content": "b"}]
    assert "differ before their last answer" in parse_pair(None, chosen, rejected)
    assert parse_pair("q", [{"role": "wizard", "content": "a"}], "b").startswith("has a chosen cell that holds a "
                                                                               "turn by 'wizard'")


def test_dataset_schema(tmp_path):
    data = load_data(write(tmp_path / "p.jsonl", "\n".join(json.dumps(r) for r in _rows())))
    assert set(data.train.features) == {"prompt", "chosen", "rejected"}
    assert data.validation[0]["prompt"][0].keys() == {"role", "content"}
    assert isinstance(data.validation[0]["chosen"], str)
