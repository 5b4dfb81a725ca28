"""Shared test set-up: offline, one thread per op, a fresh studio home per test, one shared model cache."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Code that resolves the studio home without being given one must never touch the real ~/.finetune-studio.
import tempfile  # noqa: E402

os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-test-home-"))

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from core.home import Home  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


@pytest.fixture
def home(tmp_path) -> Home:
    """An empty studio home for one test."""
    return Home.resolve(tmp_path / "studio-home")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One model cache for the whole session, so the packaged SmolLM2 is converted once, not per test."""
    return tmp_path_factory.mktemp("model-cache")


def _home_on_cache(root: Path, model_cache: Path) -> Home:
    home = Home.resolve(root)
    shutil.rmtree(home.models)
    home.models.symlink_to(model_cache, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def converted_smollm2(model_cache, tmp_path_factory):
    """The packaged SmolLM2 converted once per session (~20 s) into the shared cache.

    Returns (home, resolved, progress messages, seconds the conversion took).
    """
    import time

    from core.models import resolve_model

    root = tmp_path_factory.mktemp("smollm2-home")
    home = _home_on_cache(root / "home", model_cache)
    messages = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_CACHE", str(root / "hf-cache"))  # a user's own HF cache must not answer here
        started = time.perf_counter()
        resolved = resolve_model("smollm2-135m-instruct", home, task="chat", progress=messages.append)
        seconds = time.perf_counter() - started
    return home, resolved, messages, seconds


@pytest.fixture
def packaged_home(tmp_path, model_cache, converted_smollm2) -> Home:
    """A fresh studio home whose models folder is the session's shared cache, SmolLM2 already converted."""
    return _home_on_cache(tmp_path / "studio-home", model_cache)


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory):
    """A tiny random BERT with the packaged MiniLM's tokenizer (classifier tests)."""
    from tests.test_classify_support import tiny_bert
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory):
    """A tiny random ViT for 32 px images (classifier tests)."""
    from tests.test_classify_support import tiny_vit
    return tiny_vit(tmp_path_factory.mktemp("tiny-vit"))
