"""Figures of the 1D study: target pdf, histogram of G's samples, D's decision boundary."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from improved_gan.data.toy import Mixture1D  # noqa: E402
from improved_gan.viz.gif import figure_to_image  # noqa: E402
from improved_gan.viz.images import save_gif  # noqa: E402


@dataclasses.dataclass
class Snapshot:
    """What the 1D figure shows at one moment of training."""

    step: int
    samples: np.ndarray  # G's samples
    grid: np.ndarray  # x values where D was evaluated
    d_values: np.ndarray  # D(x) on the grid


def draw_snapshot(ax, snap: Snapshot, target: Mixture1D, title: str, density_max: float) -> None:
    ax2 = ax.twinx()
    bins = np.linspace(snap.grid[0], snap.grid[-1], 80)
    ax.plot(snap.grid, target.pdf(snap.grid), color="tab:blue", lw=2, label="target pdf")
    ax.hist(np.clip(snap.samples, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5, color="tab:green",
            label="G samples")
    ax2.plot(snap.grid, snap.d_values, color="tab:red", lw=1.5, label="D(x)")
    ax2.axhline(0.5, color="tab:red", ls=":", lw=1)
    ax.set_xlim(snap.grid[0], snap.grid[-1])
    ax.set_ylim(0, density_max)
    ax2.set_ylim(0, 1)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax2.set_ylabel("D(x)", color="tab:red")
    ax.set_title(f"{title} (step {snap.step})")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)


def density_limit(target: Mixture1D, grid: np.ndarray) -> float:
    """A fixed y-range for every frame: 2.5x the target's peak density (collapsed histograms are clipped)."""
    return float(2.5 * target.pdf(grid).max())


def save_distribution_figure(snap: Snapshot, target: Mixture1D, title: str, path: str | Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    draw_snapshot(ax, snap, target, title, density_limit(target, snap.grid))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def save_comparison_figure(snaps: dict[str, Snapshot], target: Mixture1D, path: str | Path) -> Path:
    n = len(snaps)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), dpi=100, squeeze=False)
    for ax, (name, snap) in zip(axes[0], snaps.items(), strict=False):
        draw_snapshot(ax, snap, target, name, density_limit(target, snap.grid))
    fig.suptitle(f"target {target.spec}: G's samples and D's decision boundary")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def save_training_gif(snaps: Sequence[Snapshot], target: Mixture1D, title: str, path: str | Path) -> Path:
    """One frame per snapshot, same axes in every frame."""
    ymax = density_limit(target, snaps[0].grid)
    frames = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=80)
    for snap in snaps:
        fig.clf()
        ax = fig.add_subplot(111)
        draw_snapshot(ax, snap, target, title, ymax)
        fig.tight_layout()
        frames.append(figure_to_image(fig))
    plt.close(fig)
    return save_gif(frames, path, duration=0.12)


def save_loss_figure(history: Sequence[dict], title: str, path: str | Path,
                     keys: Sequence[str] = ("d_loss", "g_loss")) -> Path:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    steps = [h["step"] for h in history]
    for key in keys:
        if history and key in history[0]:
            ax1.plot(steps, [h[key] for h in history], label=key)
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss")
    ax1.set_title(f"{title}: losses")
    ax1.legend()
    for key in ("d_real", "d_fake"):
        if history and key in history[0]:
            ax2.plot(steps, [h[key] for h in history], label=key.replace("_", "(") + ")")
    ax2.axhline(0.5, color="gray", ls=":")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("step")
    ax2.set_ylabel("mean D output")
    ax2.set_title(f"{title}: mean D(x), D(G(z))")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
