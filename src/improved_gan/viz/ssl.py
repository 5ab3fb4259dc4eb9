"""Figures of a semi-supervised run: test errors per epoch and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def learning_curve(metrics: Sequence[dict], path: str | Path, title: str = "Test errors per epoch",
                   paper: float | None = None) -> Path:
    """Test errors (out of the test-set size) of the current D and of its EMA, log scale."""
    rows = [m for m in metrics if "test_errors" in m]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if rows:
        x = [m["epoch"] for m in rows]
        ax.plot(x, [max(1, m["test_errors"]) for m in rows], label="current D", marker=".")
        ax.plot(x, [max(1, m["test_errors_ema"]) for m in rows], label="EMA of D (1e-4)", marker=".")
    if paper is not None:
        ax.axhline(paper, color="gray", ls="--", lw=1, label=f"paper ({paper:g})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test errors (of {rows[-1]['test_size'] if rows else '?'})")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def confusion(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int = 10) -> np.ndarray:
    """counts[i, j] = number of examples of class i predicted as j."""
    idx = y_true.to(torch.int64) * num_classes + y_pred.to(torch.int64)
    return torch.bincount(idx.cpu(), minlength=num_classes ** 2).view(num_classes, num_classes).numpy()


def confusion_matrix_figure(y_true: torch.Tensor, y_pred: torch.Tensor, path: str | Path,
                            class_names: Sequence[str] | None = None,
                            title: str = "Confusion matrix") -> Path:
    counts = confusion(y_true, y_pred, len(class_names) if class_names else 10)
    k = counts.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(6.0, 5.4))
    im = ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} ({int(counts.sum() - np.trace(counts))} errors of {int(counts.sum())})")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
