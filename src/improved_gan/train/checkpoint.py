"""Checkpoints that are never half written and hold everything a run needs to continue.

A checkpoint is one ``torch.save`` dict (models, optimizers, step, RNG states, technique state such
as historical averages and VBN reference batches, and the config). It is written to a temporary file
in the same folder, flushed to disk, then moved over the old one with ``os.replace``, which is atomic
on POSIX: a run killed at any moment leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from improved_gan.errors import CheckpointError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; the run has not saved one yet, start it without --resume")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {exc}); it is corrupted or not a "
            "checkpoint of this project. Delete it to restart the run from scratch."
        ) from None


def capture_rng_state(*generators: torch.Generator) -> dict[str, Any]:
    """Global RNG states (python, numpy, torch, CUDA) plus the states of explicit generators."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], *generators: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", [])
    if len(saved) != len(generators):
        raise CheckpointError(f"checkpoint holds {len(saved)} generator states, the run has {len(generators)}")
    for g, s in zip(generators, saved, strict=False):
        g.set_state(s)
