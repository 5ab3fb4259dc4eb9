"""Image grids and GIFs (Pillow only; no torchvision).

- :func:`image_grid` / :func:`save_image_grid`: (N, C, H, W) floats in [0, 1] (C = 1 or 3) to one PNG,
  ``nrow`` images per row, a 2-pixel gray border between cells.
- :func:`save_gif`: frames (file paths, PIL images or uint8 arrays of equal size) to an animated GIF.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 10, padding: int = 2, pad_value: float = 0.5
               ) -> np.ndarray:
    """uint8 array (rows·H, cols·W[, 3]) of the images laid out ``nrow`` per row."""
    if isinstance(images, torch.Tensor):
        x = images.detach().cpu().float().numpy()
    else:
        x = np.asarray(images, float)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1|3, H, W), got {x.shape}")
    n, c, h, w = x.shape
    if n == 0:
        raise ValueError("no images to lay out")
    cols = max(1, min(nrow, n))
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        y0, x0 = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, y0:y0 + h, x0:x0 + w] = x[i]
    out = (np.clip(grid, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def save_image_grid(images, path: str | Path, nrow: int = 10, scale: int = 2,
                    title: str | None = None) -> Path:
    """Save a grid of (N, C, H, W) images in [0, 1] as PNG; ``scale`` enlarges pixels (nearest), a
    ``title`` is written in a band above the grid."""
    path = Path(path)
    img = Image.fromarray(image_grid(images, nrow))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if title:
        band = Image.new(img.mode, (img.width, 16), 255 if img.mode == "L" else (255, 255, 255))
        ImageDraw.Draw(band).text((4, 2), title, fill=0 if img.mode == "L" else (0, 0, 0))
        full = Image.new(img.mode, (img.width, img.height + 16))
        full.paste(band, (0, 0))
        full.paste(img, (0, 16))
        img = full
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def save_gif(frames: Sequence, path: str | Path, duration: float = 0.3, loop: int = 0) -> Path:
    """Animated GIF of ``frames`` (paths, PIL images or uint8 arrays), ``duration`` seconds each."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    images = []
    for f in frames:
        if isinstance(f, (str, Path)):
            with Image.open(f) as im:
                images.append(im.convert("RGB"))
        elif isinstance(f, Image.Image):
            images.append(f.convert("RGB"))
        else:
            images.append(Image.fromarray(np.asarray(f, dtype=np.uint8)).convert("RGB"))
    size = images[0].size
    if any(im.size != size for im in images):
        raise ValueError("all GIF frames must have the same size (keep a fixed scale across frames)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(duration * 1000), loop=loop)
    return path
