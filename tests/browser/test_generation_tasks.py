"""Preference tuning, training on documents and image regression through the page, in a real browser.

Preference and documents run on the tiny offline Llama of the chat tests (2 layers, width 64, typed in as the
model: it trains in seconds and its numbers are honest, not good), image regression on the packaged
EfficientNet-Lite0 with a head on its frozen features. Each flow: the bundled example is detected as its task
with its reasons, the model step takes the model, the settings list the task's strategies from the registry,
training draws the task's own curves, the evaluation shows the task's own figures in numbers and in words, and
the playground answers. Screenshots land in test-output/screenshots/{preference,documents,counts}-*.png.
"""
from __future__ import annotations

import pytest

from tests.browser.test_flows import _override, _shot
from tests.browser.test_new_tasks import _text_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 180_000


def _titles(selector: str, words: str) -> str:
    """A JS predicate: one of the plotly titles under ``selector`` contains ``words``."""
    return (f"() => [...document.querySelectorAll('{selector} .gtitle')].some(t => "
            f"t.textContent.includes({words!r}))")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from tests.test_chat_support import tiny_model_folder

    return tiny_model_folder(tmp_path_factory.mktemp("tiny-llama"))


def _example(page, screenshots, key: str, task_title: str, prefix: str) -> str:
    page.click(f"#example-{key}")
    page.wait_for_function(f"() => {_text_of('#data-status')}.includes({task_title!r})", timeout=TIMEOUT_MS)
    page.wait_for_selector("#data-next:not([disabled])", timeout=TIMEOUT_MS)
    status = page.inner_text("#data-status")
    assert "Ready." in status, status
    _shot(page, screenshots, f"{prefix}-1-data")
    return status


def _typed_model(page, screenshots, folder, prefix: str) -> None:
    page.wait_for_selector("#model-table")
    box = page.locator("#model-custom textarea, #model-custom input").first
    box.fill(str(folder))
    box.press("Tab")
    # a typed local folder gets the memory estimate its run will check, named by its path
    page.wait_for_function(f"t => {_text_of('#model-memory')}.includes(t)", arg=f"{folder} with ", timeout=TIMEOUT_MS)
    assert "fits on this machine" in page.inner_text("#model-memory")
    _shot(page, screenshots, f"{prefix}-2-model")
    page.click("#model-next")


def _strategy(page, screenshots, prefix: str, choose: str, offered: tuple[str, ...], not_offered: tuple[str, ...],
              yaml_has: tuple[str, ...], max_steps: int | None = None) -> None:
    strategies = page.inner_text("#settings-strategy")
    for name in offered:
        assert name in strategies, (name, strategies)
    for name in not_offered:
        assert name not in strategies, (name, strategies)
    page.locator("#settings-strategy").get_by_text(choose, exact=True).click()
    for words in yaml_has:
        page.wait_for_function(f"() => {_text_of('#settings-yaml')}.includes({words!r})", timeout=20_000)
    if max_steps:  # a short run: the flow is the test, not the model's quality
        page.get_by_text("Advanced: override a setting").click()
        for key, value in (("max_steps", max_steps), ("eval_every", max_steps // 2)):
            _override(page, key, value)
    _shot(page, screenshots, f"{prefix}-3-settings")
    page.click("#settings-next")


def _train(page, screenshots, prefix: str) -> None:
    page.click("#train-start")
    page.wait_for_selector("#train-next", state="visible", timeout=TIMEOUT_MS)
    status = page.inner_text("#train-status")
    assert "Finished" in status, status


def _ask(page, screenshots, prefix: str, prompt: str) -> None:
    """A prompt to the base and the tuned model side by side; both answer."""
    page.fill("#chat-prompt textarea", prompt)
    page.click("#chat-send")
    for side in ("base", "tuned"):
        page.wait_for_function(
            f"() => document.querySelectorAll('#chat-{side} .message.bot, #chat-{side} [data-testid=bot]').length > 0",
            timeout=TIMEOUT_MS)
    page.wait_for_selector("#chat-send:not([disabled])", timeout=TIMEOUT_MS)
    page.locator("#chat-tuned").scroll_into_view_if_needed()
    _shot(page, screenshots, f"{prefix}-5-playground")


def _report(page, shown_by: str, words: tuple[str, ...]) -> None:
    """Go on to the Evaluate tab and check the run's report says ``words``. The page may still show another run's
    report for a moment, so it first waits for ``shown_by``, words only this run's report has."""
    page.click("#train-next")
    page.wait_for_function(f"() => {_text_of('#eval-report')}.includes({shown_by!r})", timeout=TIMEOUT_MS)
    report = page.inner_text("#eval-report")
    for w in words:
        assert w in report, (w, report)


def test_preference_flow(page, screenshots, tiny_llama):
    prefix = "preference"
    status = _example(page, screenshots, "kettlebird-preferences", "Preference", prefix)
    assert "chosen" in status and "rejected" in status, status
    example = page.inner_text("#data-example")
    assert "── chosen ──" in example and "── rejected" in example, example  # one pair as the model will read it
    page.click("#data-next")
    _typed_model(page, screenshots, tiny_llama, prefix)
    _strategy(page, screenshots, prefix, "DPO", offered=("DPO", "ORPO"), not_offered=("Head only", "Automatic"),
              yaml_has=("task: preference", "strategy: dpo"), max_steps=12)
    _train(page, screenshots, prefix)
    _shot(page, screenshots, f"{prefix}-4-trained")

    _report(page, "held-out pairs", ("pairs where the chosen answer is preferred", "reward margin", "held-out pairs",
                                     "chosen answer a higher probability", "General knowledge"))
    page.wait_for_selector("#eval-answers table")
    answers = page.inner_text("#eval-answers")
    assert "chosen answer" in answers and "tuned model" in answers, answers
    _shot(page, screenshots, f"{prefix}-5-evaluate")
    _ask(page, screenshots, prefix, "How long is the warranty on my kettle?")


def test_documents_flow(page, screenshots, tiny_llama):
    prefix = "documents"
    status = _example(page, screenshots, "kettlebird-manuals", "Domain adaptation on documents", prefix)
    assert "documents" in status, status
    # the words per document, trained on or held out; one block of text as the model will read it
    page.wait_for_function(_titles("#data-balance, #data-lengths", "Words per document"), timeout=TIMEOUT_MS)
    page.click("#data-next")
    _typed_model(page, screenshots, tiny_llama, prefix)
    _strategy(page, screenshots, prefix, "LoRA", offered=("LoRA",), not_offered=("Head only", "DPO"),
              yaml_has=("task: text-completion", "strategy: lora"), max_steps=12)
    _train(page, screenshots, prefix)
    page.wait_for_function(_titles("#train-eval", "Held-out perplexity"), timeout=TIMEOUT_MS)
    _shot(page, screenshots, f"{prefix}-4-trained")

    _report(page, "Perplexity on documents", ("perplexity on held-out text",
                                              "Perplexity on documents the model never trained on", "General knowledge"))
    page.wait_for_selector("#eval-answers table")
    assert "how the document goes on" in page.inner_text("#eval-answers")
    _shot(page, screenshots, f"{prefix}-5-evaluate")
    _ask(page, screenshots, prefix, "How do I descale the kettle?")


def test_image_regression_flow(page, screenshots):
    prefix = "counts"
    status = _example(page, screenshots, "shape-counts", "Image regression", prefix)
    assert "circles" in status, status
    page.wait_for_selector("#data-gallery img")
    page.click("#data-next")
    page.wait_for_selector("#model-table")
    assert "EfficientNet-Lite0" in page.inner_text("#model-choice")
    page.wait_for_selector("#model-memory .st-notice")
    _shot(page, screenshots, f"{prefix}-2-model")
    page.click("#model-next")
    _strategy(page, screenshots, prefix, "Head only", offered=("Automatic", "Head only"), not_offered=("DPO",),
              yaml_has=("task: image-regression", "strategy: head-only"))
    _train(page, screenshots, prefix)
    page.wait_for_function(_titles("#train-eval", "Validation error"), timeout=TIMEOUT_MS)
    _shot(page, screenshots, f"{prefix}-4-trained")

    _report(page, "MAE", ("MAE", "RMSE", "R²", "Training mean", "circles"))
    page.wait_for_function(_titles("#eval-scatter", "Predicted against true"), timeout=TIMEOUT_MS)
    page.wait_for_selector("#eval-mistakes-gallery img")  # the worst-predicted scenes, true → predicted
    assert "Largest errors" in page.inner_text("#eval-mistakes-gallery")
    assert "kept within the training values" in page.inner_text("#eval-mistakes-gallery")
    page.wait_for_selector("#eval-verdict-box")
    _shot(page, screenshots, f"{prefix}-5-evaluate")

    from core.data.examples import example_path

    scene = sorted(example_path("shape-counts").glob("**/*.png"))[0]
    page.locator("#clf-image input[type=file]").set_input_files(str(scene))
    page.click("#clf-predict")
    page.wait_for_function("() => (document.querySelector('#reg-tuned input')?.value ?? '') !== ''",
                           timeout=TIMEOUT_MS)
    tuned = float(page.input_value("#reg-tuned input"))
    assert 1 <= tuned <= 12, tuned  # a count of circles within the data's 1 to 12, not a class or a logit
    page.locator("#reg-tuned").scroll_into_view_if_needed()
    _shot(page, screenshots, f"{prefix}-5-playground")
