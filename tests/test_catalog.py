"""The catalog is data: every entry is checked here, so a typo in the table fails a test."""
from __future__ import annotations

import pytest

from core.catalog import CATALOG, ModelEntry, default_for, entries_for, get_entry
from core.strategies import STRATEGIES_BY_TASK
from core.tasks import TASKS

PACKAGED = {"smollm2-gguf", "minilm", "efficientnet-lite0"}


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.key)
def test_every_entry_is_complete(entry: ModelEntry):
    assert entry.task in TASKS
    assert entry.key == entry.key.strip().lower() and " " not in entry.key
    assert entry.title.strip() and entry.licence.strip() and entry.architecture.strip()
    assert entry.description.strip().endswith(".")
    assert entry.params_m > 0
    assert entry.strategies, "an entry must allow at least one strategy"
    assert set(entry.strategies) <= set(STRATEGIES_BY_TASK[entry.task])
    assert entry.packaged is None or entry.packaged in PACKAGED
    assert entry.hub_id or entry.packaged, "without a hub id the weights must come from a package"
    if entry.hub_id:
        assert entry.hub_id.count("/") == 1
    if entry.gated:
        assert "gated" in entry.description.lower()


def test_keys_and_hub_ids_are_unique():
    keys = [e.key for e in CATALOG]
    hub_ids = [e.hub_id.lower() for e in CATALOG if e.hub_id]
    assert len(set(keys)) == len(keys)
    assert len(set(hub_ids)) == len(hub_ids)


@pytest.mark.parametrize("task", TASKS)
def test_one_packaged_default_per_task(task):
    defaults = [e for e in entries_for(task) if e.default]
    assert len(defaults) == 1
    assert defaults[0].packaged is not None
    assert default_for(task) is defaults[0]
    assert entries_for(task)[0] is defaults[0]


def test_packaged_defaults_have_the_agreed_keys():
    assert default_for("chat").key == "smollm2-135m-instruct"
    assert default_for("text-classification").key == "minilm-l6"
    assert default_for("image-classification").key == "efficientnet-lite0"


def test_lora_only_for_transformer_backbones():
    for key in ("efficientnet-lite0", "convnext-tiny"):
        assert "lora" not in get_entry(key).strategies
    assert "lora" in get_entry("vit-base").strategies


def test_get_entry_matches_key_or_hub_id_ignoring_case():
    assert get_entry("MiniLM-L6").key == "minilm-l6"
    assert get_entry(" qwen/QWEN2.5-0.5B-instruct ").key == "qwen2.5-0.5b-instruct"
    assert get_entry("someone/else") is None
    assert get_entry("") is None


def test_gated_llama_is_marked():
    assert get_entry("meta-llama/Llama-3.2-1B-Instruct").gated


def test_default_for_unknown_task_names_the_tasks():
    with pytest.raises(KeyError, match="text-classification"):
        default_for("translation")
