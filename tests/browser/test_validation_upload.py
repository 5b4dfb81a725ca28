"""A validation file given beside the data on the page: the data is read again with it as the validation split,
the job's config names it, and clearing it (or new data) goes back to a share split off the upload."""
from __future__ import annotations

import csv

import pytest

from core.data.examples import example_path
from tests.browser.waits import wait_text

pytestmark = [pytest.mark.browser]


def test_a_validation_file_scores_the_run_instead_of_a_split(page, screenshots, tmp_path):
    with open(example_path("support-tickets"), encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    for name, part in (("tickets.csv", body[:-60]), ("held back.csv", body[-60:])):
        with open(tmp_path / name, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([header, *part])
    page.locator("#data-upload input[type=file]").set_input_files(str(tmp_path / "tickets.csv"))
    wait_text(page, "#data-status", "Ready.")
    assert "(from" not in page.inner_text("#data-status")  # a share of the upload, to begin with
    page.locator("#data-validation input[type=file]").set_input_files(str(tmp_path / "held back.csv"))
    wait_text(page, "#data-status", "(from held back.csv)")
    status = page.inner_text("#data-status")
    assert f"{len(body) - 60} training rows and 60 for validation (from held back.csv)" in status, status
    page.screenshot(path=str(screenshots / "validation-upload.png"), full_page=True)
    page.reload()  # a reload reads both files again and both boxes show them, not an empty "Drop File Here"
    wait_text(page, "#data-status", "(from held back.csv)")
    wait_text(page, "#data-validation", "held back")  # the box shows the name and the suffix on two lines
    wait_text(page, "#data-upload", "tickets")
    page.click("#data-next")
    page.click("#model-next")
    wait_text(page, "#settings-yaml", "back.csv", 60_000)
    assert "validation_path:" in page.inner_text("#settings-yaml")
    page.get_by_role("tab", name="1 · Data").click()
    page.locator("#data-validation button[aria-label='Clear']").first.click()  # the file's own clear button
    page.wait_for_function("() => !(document.querySelector('#data-status')?.innerText ?? '').includes('(from')",
                           timeout=120_000)
    wait_text(page, "#data-status", "Ready.")
