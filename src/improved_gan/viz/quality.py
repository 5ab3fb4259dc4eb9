"""Figures of the sample-quality study: score curves over training and a panel of samples per variant."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CURVES = (("score_mean", "Inception-style score (higher is better)"), ("fid", "FID (lower is better)"),
          ("kid_mean", "KID (lower is better)"), ("precision", "precision / recall (k=3)"))


def save_score_curves(rows: Sequence[dict], path: str | Path, title: str,
                      ceiling: float | None = None) -> Path:
    """Four panels of the snapshot scores (rows with ``kind == 'scores'``) against the training step."""
    rows = [r for r in rows if r.get("kind") == "scores"]
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, (key, label) in zip(axes, CURVES, strict=True):
        ax.plot(steps, [r[key] for r in rows], "o-", label=key.split("_")[0])
        if key == "precision":
            ax.plot(steps, [r["recall"] for r in rows], "s-", label="recall")
            ax.set_ylim(-0.02, 1.02)
            ax.legend()
        if key == "score_mean" and ceiling is not None:
            ax.axhline(ceiling, color="gray", ls="--", label="real test set")
            ax.legend()
        if key == "fid" and rows and min(r[key] for r in rows) > 0:
            ax.set_yscale("log")  # the untrained generator's value would flatten the rest
        if key == "kid_mean":
            ax.set_yscale("symlog", linthresh=1e-3)  # KID's unbiased estimate can be slightly negative
        ax.set_xlabel("training step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def save_variant_panels(grids: dict[str, str | Path], path: str | Path, title: str,
                        captions: dict[str, str] | None = None) -> Path:
    """One panel per variant: the sample grid PNG (file) under the variant name (and a caption)."""
    names = list(grids)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.6 * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names, strict=False):
        with Image.open(grids[name]) as im:
            ax.imshow(np.asarray(im.convert("L")), cmap="gray", vmin=0, vmax=255)
        caption = (captions or {}).get(name, "")
        ax.set_title(name + ("\n" + caption if caption else ""), fontsize=9)
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
