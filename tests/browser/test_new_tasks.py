"""The studio's page for the tasks beyond chat and classification, in a real browser.

One text regression from the bundled Debian package sizes, on a tiny BERT typed in as the model (2 layers, random
weights: it trains in seconds, and its numbers are honest, not good): the data step shows the number's spread,
the model step takes the typed folder, the settings list the regression strategies, training draws its curves,
and the evaluation shows MAE, RMSE and R² against the baselines, the predicted-against-true plot, the worst errors
and a number for a typed text. On the way, the image regression example shows its scenes with their counts.
Screenshots land in test-output/screenshots/regression-*.png.
"""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 120_000


def _shot(page, screenshots, name: str) -> None:
    page.screenshot(path=str(screenshots / f"regression-{name}.png"), full_page=True)


def _text_of(selector: str) -> str:
    return f"(document.querySelector({selector!r})?.innerText ?? '')"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.test_hardening_support import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_text_regression_flow(page, screenshots, tiny_model):
    # 1. Data: the image regression example reads as image regression, its scenes captioned with their counts ...
    page.click("#example-shape-counts")
    page.wait_for_function(f"() => {_text_of('#data-status')}.includes('Image regression')", timeout=TIMEOUT_MS)
    assert "Ready." in page.inner_text("#data-status")
    page.wait_for_selector("#data-gallery img")
    _shot(page, screenshots, "1-image-data")
    # ... and the Debian sizes as text regression, with the spread of the number to predict
    page.click("#example-debian-sizes")
    page.wait_for_function(f"() => {_text_of('#data-status')}.includes('Text regression')", timeout=TIMEOUT_MS)
    page.wait_for_selector("#data-next:not([disabled])")
    status = page.inner_text("#data-status")
    assert "size_log10_kb" in status and "640 training rows" in status, status
    page.wait_for_function("() => [...document.querySelectorAll('.gtitle')].some(t => t.textContent.includes("
                           "'size_log10_kb'))")
    _shot(page, screenshots, "1-data")
    page.click("#data-next")

    # 2. Model: the text encoders of the catalog, and the tiny model typed in
    page.wait_for_selector("#model-table")
    assert "MiniLM" in page.inner_text("#model-choice")
    assert "one-number head" in page.inner_text("#model-note")
    box = page.locator("#model-custom textarea, #model-custom input").first
    box.fill(str(tiny_model))
    box.press("Tab")
    # a typed local folder gets the memory estimate its run will check, named by its path
    page.wait_for_function(f"t => {_text_of('#model-memory')}.includes(t)", arg=f"{tiny_model} with ")
    assert "fits on this machine" in page.inner_text("#model-memory")
    _shot(page, screenshots, "2-model")
    page.click("#model-next")

    # 3. Settings: the regression strategies from the registry; head only trains in seconds
    strategies = page.inner_text("#settings-strategy")
    assert "Automatic" in strategies and "Head only" in strategies and "DPO" not in strategies, strategies
    page.locator("#settings-strategy").get_by_text("Head only", exact=True).click()
    page.wait_for_function(f"() => {_text_of('#settings-yaml')}.includes('strategy: head-only')")
    assert "task: text-regression" in page.inner_text("#settings-yaml")
    _shot(page, screenshots, "3-settings")
    page.click("#settings-next")

    # 4. Train: the validation chart draws the error (MAE), not an accuracy
    page.click("#train-start")
    page.wait_for_selector("#train-next", state="visible", timeout=TIMEOUT_MS)
    assert "Finished" in page.inner_text("#train-status")
    page.wait_for_function("() => [...document.querySelectorAll('#train-eval .gtitle')].some(t => "
                           "t.textContent.includes('Validation error'))")
    _shot(page, screenshots, "4-trained")

    # 5. Evaluate: MAE, RMSE and R² for base, tuned and the baselines; the scatter plot; the worst errors
    page.click("#train-next")
    page.wait_for_selector("#eval-report .st-metrics")
    report = page.inner_text("#eval-report")
    for words in ("MAE", "RMSE", "R²", "Training mean", "TF-IDF + ridge regression", "size_log10_kb"):
        assert words in report, (words, report)
    page.wait_for_selector("#eval-scatter .js-plotly-plot .scatterlayer .trace")
    page.wait_for_function("() => [...document.querySelectorAll('#eval-scatter .gtitle')].some(t => "
                           "t.textContent.includes('Predicted against true'))")
    page.wait_for_selector("#eval-mistakes table")
    assert "Largest errors" in page.inner_text("#eval-mistakes")
    page.wait_for_selector("#eval-verdict-box")
    _shot(page, screenshots, "5-evaluate")

    # the playground answers with a number, from the base (ridge head) and the tuned model
    page.fill("#clf-text textarea", "fonts-noto-extra: Noto fonts, extra weights for every script")
    page.click("#clf-predict")
    page.wait_for_function("() => (document.querySelector('#reg-tuned input')?.value ?? '') !== ''",
                           timeout=TIMEOUT_MS)
    tuned = float(page.input_value("#reg-tuned input"))
    base = float(page.input_value("#reg-base input"))
    assert 0 < tuned < 8 and 0 < base < 8, (tuned, base)  # log10 of kilobytes: a package between 1 kB and 100 GB
    page.locator("#reg-tuned").scroll_into_view_if_needed()
    _shot(page, screenshots, "5-playground")
