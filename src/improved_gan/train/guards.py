"""Stop a run cleanly when a loss stops being a number."""

from __future__ import annotations

import math

import torch

from improved_gan.errors import NonFiniteLossError


def check_finite(step: int, checkpoint: str | None = None, **losses: torch.Tensor | float) -> None:
    for name, value in losses.items():
        v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        if not math.isfinite(v):
            where = f" The last good checkpoint, {checkpoint}, is intact." if checkpoint else ""
            raise NonFiniteLossError(
                f"loss '{name}' became {v} at step {step}; training stopped.{where} "
                "Lower the learning rate (--lr), check the input scaling, or resume from the checkpoint "
                "with another seed."
            )
