"""Matplotlib figures to images, and images to an animated GIF (Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def figure_to_image(fig) -> Image.Image:
    """Render a matplotlib figure (Agg) to an RGB PIL image."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return Image.fromarray(rgba[..., :3].copy())


def save_gif(frames: Sequence[Image.Image | np.ndarray], path: str | Path, duration_ms: int = 120,
             final_hold_ms: int = 1200) -> Path:
    """Write frames (PIL images or HxW[xC] uint8 arrays) as a looping GIF; the last frame is held longer."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    images = [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f)) for f in frames]
    images = [im.convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for im in images]
    durations = [duration_ms] * (len(images) - 1) + [final_hold_ms]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=False)
    return path
