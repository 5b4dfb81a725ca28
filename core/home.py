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

    def secret(self, name: str) -> str:
        """A random key kept in ``<home>/secrets/NAME`` (readable by this user only), made on first use, so what
        the page encrypts in a browser with it (its session) still opens after the studio restarts."""
        import secrets

        path = self.root / "secrets" / name
        try:
            return path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            pass
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_urlsafe(24)
        partial = path.with_name(f".{name}.{secrets.token_hex(6)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key)
        try:
            os.link(partial, path)  # the first studio to make it wins; a second reads the winner's key
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
        finally:
            partial.unlink(missing_ok=True)
        return key

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

    @property
    def cache(self) -> Path:
        """What jobs compute once and reuse (compiled kernels, unpacked archives, the base's replayed answers)."""
        return self.root / "cache"
