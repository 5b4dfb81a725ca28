"""Where the studio keeps its things: one home directory with the model cache, uploads and runs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.finetune-studio")


@dataclass(frozen=True)
class Home:
    """The studio's home directory and the folders inside it.

    Args:
        root: the home folder; created on first use.
    """

    root: Path

    @classmethod
    def resolve(cls, override: str | os.PathLike | None = None) -> "Home":
        """The home from ``override`` (``--home``), else ``$STUDIO_HOME``, else ``~/.finetune-studio``."""
        raw = override or os.environ.get("STUDIO_HOME") or DEFAULT_HOME
        home = cls(Path(raw).expanduser().resolve())
        for folder in (home.root, home.models, home.uploads, home.runs):
            folder.mkdir(parents=True, exist_ok=True)
        return home

    @property
    def models(self) -> Path:
        """Converted and downloaded models (safetensors)."""
        return self.root / "models"

    @property
    def uploads(self) -> Path:
        """Uploaded data, one folder per browser session."""
        return self.root / "uploads"

    @property
    def runs(self) -> Path:
        """One folder per training run."""
        return self.root / "runs"
