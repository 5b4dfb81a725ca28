"""Trainer checkpoints that are whole or absent: written under a staging folder, then renamed into place.

The Trainer writes ``checkpoint-N`` file by file, so a kill in the middle (Stop escalated, the out-of-memory
killer, a crash, a server restart) would leave a folder that looks like a checkpoint and is not. Here every file
goes to ``checkpoints/.staging/checkpoint-N`` first; once the Trainer has written all of it, one ``os.replace``
puts the folder under its real name. A kill leaves either the previous checkpoints alone or a staging folder
that nothing reads (the next save clears it).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

STAGING = ".staging"


class AtomicCheckpoints:
    """A ``transformers.Trainer`` mixin (put it before ``Trainer`` in the bases): atomic ``checkpoint-N``
    folders, and old ones rotated by step number (``save_total_limit``) only once the new one is in place."""

    _staging_root: Path | None = None

    def _get_output_dir(self, trial) -> str:
        if self._staging_root is not None:
            return str(self._staging_root)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        final_root = Path(super()._get_output_dir(trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = final_root / STAGING
        if self.args.should_save and self.args.world_size == 1:
            shutil.rmtree(staging, ignore_errors=True)  # what a killed save left behind
        self._staging_root = staging
        try:
            super()._save_checkpoint(model, trial)  # every rank writes its part (RNG state) under staging
        finally:
            self._staging_root = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            target = final_root / name
            if target.exists():  # a damaged checkpoint of the same step, from before a resume
                shutil.rmtree(target)
            os.replace(staging / name, target)
            rotate_checkpoints(output_dir=str(final_root), save_total_limit=self.args.save_total_limit,
                               use_mtime=False)
        self.accelerator.wait_for_everyone()
