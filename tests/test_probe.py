"""The general-knowledge probe: shipped, scored for a tiny model, compared in words, and in the chat report."""
import json

from core.engine.chat import probe
from tests.test_chat_support import context, tiny_model_folder


def test_the_shipped_probe_is_well_formed():
    items = probe.load_probe()
    assert len(items) >= 30
    assert all(i["q"].endswith("?") and i["a"].strip() for i in items)
    assert len({i["q"] for i in items}) == len(items)
    assert "CC0" in json.loads(probe.PROBE_FILE.read_text())["licence"]


def test_contains_match_is_case_and_punctuation_blind():
    assert probe._contains("The capital of France is Paris.", ["Paris"])
    assert probe._contains("It has EIGHT legs!", ["8", "eight"])
    assert not probe._contains("Parisian food", ["Paris"])  # whole words only
    assert not probe._contains("", ["Paris"])


def test_score_and_compare_on_a_tiny_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_folder(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    items = probe.load_probe()[:5]
    scored = probe.score(model, tokenizer, items)
    assert scored["questions"] == 5 and 0 <= scored["right"] <= 5
    assert scored["answer_loss"] > 0 and len(scored["answers"]) == 5
    better = {**scored, "right": 4, "answer_loss": scored["answer_loss"] * 0.5}
    worse = {**scored, "right": 2, "answer_loss": scored["answer_loss"]}
    report = probe.compare(better, worse)
    assert report["kept"] == 0.5 and report["loss_change"] > 0
    assert report["message"].startswith("Kept 50% of its general answers: 2 of 5")
    assert "none of the 5" in probe.compare({**scored, "right": 0}, worse)["message"]


def test_the_chat_evaluation_reports_the_probe(tmp_path):
    from core.engine.chat import ChatRecipe

    ctx, _ = context(tmp_path, max_steps=2)
    recipe = ChatRecipe(ctx)
    recipe.setup()
    recipe.train()
    recipe.save()
    report = recipe.evaluate()
    recipe.cleanup()
    assert report["probe"]["questions"] == len(probe.load_probe())
    assert "general answers" in report["probe"]["message"] or "none of the" in report["probe"]["message"]
    json.dumps(report)
