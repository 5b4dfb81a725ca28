"""A table whose rows come in groups (several packages of one source): the Data step offers the group column, and
choosing it keeps each group on one side of the split, says so, and reaches the job's config."""
from __future__ import annotations

import csv

import pytest

pytestmark = [pytest.mark.browser]


def _detection_has(page, words: str) -> None:
    page.wait_for_function("w => (document.querySelector('#data-detection')?.innerText ?? '').includes(w)",
                           arg=words, timeout=120_000)


def test_choosing_the_group_column_keeps_groups_apart(page, screenshots, tmp_path):
    apps = {"games": "racing game", "mail": "mail client", "sound": "audio player"}
    rows = [["description", "section", "source"]]
    for i in range(36):
        section = list(apps)[i % 3]
        for part in ("", " - data files", " - plugins"):
            rows.append([f"{apps[section]} number {i}{part}", section, f"src{i}"])
    with open(tmp_path / "packages.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    page.locator("#data-upload input[type=file]").set_input_files(str(tmp_path / "packages.csv"))
    _detection_has(page, "choose it as the group")  # offered, never chosen by itself
    assert "stays on one side" not in page.inner_text("#data-detection")
    group = page.locator("[id^=data-role-]").filter(has_text="group:")
    assert group.count() == 1
    group.locator("input").click()
    page.get_by_role("option", name="source (could be the group)").click()
    _detection_has(page, "stays on one side of the split")
    page.wait_for_function("() => (document.querySelector('#data-status')?.innerText ?? '').includes('Ready.')",
                           timeout=120_000)
    page.screenshot(path=str(screenshots / "group-column.png"), full_page=True)
    page.click("#data-next")
    page.click("#model-next")
    page.wait_for_function("() => (document.querySelector('#settings-yaml')?.innerText ?? '').includes('group:')",
                           timeout=60_000)
    assert "group: source" in page.inner_text("#settings-yaml")
