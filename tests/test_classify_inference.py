"""Classifier.from_run: tuned and base predictions from head-only and fine-tuned runs; bad input explained."""
import threading

import pytest
from PIL import Image

from core.engine.recipes import recipe_for
from core.inference.classify import Classifier
from tests.test_classify_support import COLOURS, image_data, make_context, text_data


def trained(ctx):
    recipe = recipe_for(ctx)
    recipe.setup()
    recipe.train()
    recipe.save()
    recipe.cleanup()
    return ctx.run


def check(ranked, labels):
    assert [label for label, _ in ranked] and {label for label, _ in ranked} == set(labels)
    probs = [p for _, p in ranked]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-4)


def test_head_only_text_predicts_tuned_and_base(home, bert_dir):
    data = text_data()
    run = trained(make_context(home, str(bert_dir), "text-classification", "head-only", data, epochs=20))
    classifier = Classifier.from_run(run.path, home)
    for which in ("tuned", "base"):
        check(classifier.predict("the team scored a goal in the match", which=which), data.labels)
    assert classifier.predict("rain and storm and wind today")[0][0] == "weather"
    with pytest.raises(ValueError, match="give some text"):
        classifier.predict("   ")
    with pytest.raises(ValueError, match="tuned' or 'base"):
        classifier.predict("pizza", which="other")


def test_head_only_image_predicts_from_a_path_or_a_picture(home, vit_dir, tmp_path):
    data = image_data(tmp_path)
    run = trained(make_context(home, str(vit_dir), "image-classification", "head-only", data, epochs=15))
    classifier = Classifier.from_run(run.path, home)
    picture = Image.new("RGB", (24, 24), COLOURS["green"])
    assert classifier.predict(picture)[0][0] == "green"
    check(classifier.predict(data.validation["image"][0], which="base"), data.labels)
    with pytest.raises(ValueError, match="give an image"):
        classifier.predict(str(tmp_path / "missing.png"))


def test_lora_text_run_predicts_from_threads(home, bert_dir):
    data = text_data()
    run = trained(make_context(home, str(bert_dir), "text-classification", "lora", data, epochs=2,
                               learning_rate=5e-3, save_every=100, eval_every=100))
    classifier = Classifier.from_run(run.path, home)
    results = []
    threads = [threading.Thread(target=lambda w=w: results.append(classifier.predict("bread and cheese", which=w)))
               for w in ("tuned", "base", "tuned")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for ranked in results:
        check(ranked, data.labels)


def test_evaluate_reloads_a_saved_run(home, bert_dir):
    ctx = make_context(home, str(bert_dir), "text-classification", "full", text_data(), epochs=1,
                       learning_rate=1e-2, save_every=100, eval_every=100)
    trained(ctx)
    recipe = recipe_for(ctx)
    recipe.load_trained()
    report = recipe.evaluate()
    recipe.cleanup()
    assert {"tuned", "base", "majority", "tfidf_logreg", "confusion_matrix"} <= set(report)


def test_a_run_without_a_model_is_explained(home, tmp_path, bert_dir):
    ctx = make_context(home, str(bert_dir), "text-classification", "head-only", text_data())
    with pytest.raises(FileNotFoundError, match="did not finish training"):
        Classifier.from_run(ctx.run.path, home)
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        Classifier.from_run(tmp_path, home)
