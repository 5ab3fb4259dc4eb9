"""Matplotlib figures to images (GIFs are written by :func:`improved_gan.viz.images.save_gif`)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def figure_to_image(fig) -> Image.Image:
    """Render a matplotlib figure (Agg) to an RGB PIL image."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return Image.fromarray(rgba[..., :3].copy())
