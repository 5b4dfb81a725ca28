"""Waits the browser flows share (imported, not a pytest conftest)."""
from __future__ import annotations


def wait_text(page, selector: str, words: str, timeout_ms: int = 120_000) -> None:
    """Until the element's visible text holds ``words`` (a load, a reload of the data, the settings' YAML)."""
    page.wait_for_function("([s, w]) => (document.querySelector(s)?.innerText ?? '').includes(w)",
                           arg=[selector, words], timeout=timeout_ms)
