"""Resuming a run: where its checkpoint lives, how its options come back, how its logs are trimmed.

A command with ``--resume RUN_DIR`` reloads ``RUN_DIR/checkpoint.pt`` (written atomically by
:func:`improved_gan.train.checkpoint.save_checkpoint`), takes the options saved inside it, drops the
metric lines logged after that checkpoint, and continues; with the RNG states restored the final
metrics equal those of an uninterrupted run with the same seeds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from improved_gan.config import build_options, to_dict
from improved_gan.errors import CheckpointError
from improved_gan.train import distributed
from improved_gan.train.checkpoint import load_checkpoint, save_checkpoint
from improved_gan.train.rundir import RunDir

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_path(run: RunDir | str | Path) -> Path:
    root = run.path if isinstance(run, RunDir) else Path(run)
    return root / CHECKPOINT_NAME


def save_run_state(run: RunDir, options, state: dict[str, Any]) -> None:
    """Save ``state`` plus the resolved options; only the writing rank (``run.enabled``) writes."""
    if run.enabled:
        save_checkpoint(checkpoint_path(run), {**state, "options": to_dict(options)})


def load_run_state(run_dir: str | Path, options_cls, map_location="cpu") -> tuple[Any, dict[str, Any]]:
    """(options saved in the checkpoint, the checkpoint dict) for ``--resume RUN_DIR``."""
    path = checkpoint_path(run_dir)
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run directory")
    state = load_checkpoint(path, map_location=map_location)
    saved = dict(state["options"])
    names = {f.name for f in dataclasses.fields(options_cls)}
    saved = {k: v for k, v in saved.items() if k in names}
    saved["out"] = str(run_dir)
    saved["resume"] = ""
    return build_options(options_cls, saved, source=f"checkpoint {path}"), state


def resume_on_every_rank(options, options_cls, ctx: distributed.DistContext) -> tuple[Any, dict[str, Any] | None]:
    """(options, checkpoint) for a command that may run under torchrun: with ``options.resume`` rank 0
    reads the checkpoint (:func:`load_run_state`, on the CPU) and every rank receives it; without it,
    ``(options, None)``."""
    if not options.resume:
        return options, None
    loaded = load_run_state(options.resume, options_cls, map_location="cpu") if ctx.is_main else None
    return distributed.broadcast_object(loaded, ctx)
