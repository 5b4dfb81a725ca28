"""A table whose rows come in groups (several packages of one source): the Data step offers the group column, and
choosing it keeps each group on one side of the split, says so, and reaches the job's config."""
from __future__ import annotations

import csv

import pytest

from tests.browser.waits import wait_text

pytestmark = [pytest.mark.browser]


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
    wait_text(page, "#data-detection", "choose it as the group")  # offered, never chosen by itself
    assert "stays on one side" not in page.inner_text("#data-detection")
    group = page.locator("[id^=data-role-]").filter(has_text="group:")
    assert group.count() == 1
    group.locator("input").click()
    page.get_by_role("option", name="source (could be the group)").click()
    wait_text(page, "#data-detection", "stays on one side of the split")
    wait_text(page, "#data-status", "Ready.")
    page.screenshot(path=str(screenshots / "group-column.png"), full_page=True)
    page.click("#data-next")
    page.click("#model-next")
    wait_text(page, "#settings-yaml", "group:", 60_000)
    assert "group: source" in page.inner_text("#settings-yaml")
