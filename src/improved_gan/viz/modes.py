"""Figures of the mode-collapse benchmark: samples over the mode centres, a density image, a GIF of
training (fixed axes), curves of modes captured and high-quality % over training, and one panel per
ablation variant. 1-D mixtures are drawn as histograms over the target density."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from improved_gan.data.mixtures2d import Mixture  # noqa: E402

CAPTURED, MISSED = "#1a9850", "#d73027"


def _modes_axes(ax, samples: np.ndarray, mixture: Mixture, captured: Sequence[bool] | None, title: str,
                max_points: int = 2500) -> None:
    x0, x1, y0, y1 = mixture.limits()
    samples = np.asarray(samples)[:max_points]
    means, stds = mixture.means.numpy(), mixture.stds.numpy()
    if mixture.dim == 1:
        grid = np.linspace(x0, x1, 600)
        dens = sum(float(w) * np.exp(-0.5 * ((grid - m[0]) / s) ** 2) / (s * np.sqrt(2 * np.pi))
                   for w, m, s in zip(mixture.weights.numpy(), means, stds, strict=True))
        ax.hist(np.clip(samples[:, 0], x0, x1), bins=200, range=(x0, x1), density=True, color="#4575b4",
                alpha=0.6, label="generated")
        ax.plot(grid, dens, color="black", lw=1, label="target")
        for k, m in enumerate(means):
            ok = captured is None or captured[k]
            ax.axvspan(m[0] - 3 * stds[k], m[0] + 3 * stds[k], color=CAPTURED if ok else MISSED, alpha=0.15)
        ax.set_xlim(x0, x1)
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper right")
    else:
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.35, color="#4575b4", linewidths=0,
                   label="generated")
        for k, (m, s) in enumerate(zip(means, stds, strict=True)):
            ok = captured is None or captured[k]
            ax.add_patch(Circle(m, 3 * s, fill=False, lw=1.0, ls="-" if ok else "--",
                                color=CAPTURED if ok else MISSED))
            ax.plot(m[0], m[1], marker="+" if ok else "x", color=CAPTURED if ok else MISSED, ms=5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
    ax.set_title(title, fontsize=9)


def scatter_modes(path: str | Path, samples: np.ndarray, mixture: Mixture, captured: Sequence[bool],
                  title: str) -> Path:
    """Generated samples over the mode centres with their 3σ circles; captured modes green (solid),
    missed modes red (dashed)."""
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    _modes_axes(ax, samples, mixture, captured, title)
    fig.text(0.5, 0.005, "circles: 3σ around each mode — green solid = captured, red dashed = missed",
             ha="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def density_image(path: str | Path, samples: np.ndarray, mixture: Mixture, title: str,
                  bins: int = 300) -> Path:
    """Kernel-density image: a fine 2-D histogram smoothed with a Gaussian kernel of ~1.5 bins."""
    x0, x1, y0, y1 = mixture.limits()
    samples = np.asarray(samples)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    if mixture.dim == 1:
        hist, edges = np.histogram(samples[:, 0], bins=bins, range=(x0, x1), density=True)
        ax.plot(0.5 * (edges[1:] + edges[:-1]), gaussian_filter(hist, 1.5), color="#4575b4")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
    else:
        hist, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=bins, range=[[x0, x1], [y0, y1]],
                                    density=True)
        im = ax.imshow(gaussian_filter(hist, 1.5).T, origin="lower", extent=(x0, x1, y0, y1),
                       cmap="magma", aspect="equal")
        fig.colorbar(im, ax=ax, label="density")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def training_gif(path: str | Path, frames: Sequence[tuple[int, np.ndarray, Sequence[bool]]], mixture: Mixture,
                 title: str, duration_ms: int = 250) -> Path:
    """One frame per evaluation (step, samples, captured) on the same fixed axes."""
    if not frames:
        raise ValueError("training_gif needs at least one frame")
    images = []
    for step, samples, captured in frames:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        _modes_axes(ax, samples, mixture, captured, f"{title} — step {step}", max_points=1000)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        buf.seek(0)
        images.append(Image.open(buf).convert("P", palette=Image.Palette.ADAPTIVE))
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return Path(path)


def training_curves(path: str | Path, history: Sequence[dict], num_modes: int, title: str) -> Path:
    """Modes captured and high-quality % against the training step."""
    steps = [h["step"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(steps, [h["modes"] for h in history], marker=".", color="#4575b4")
    a.axhline(num_modes, color="gray", ls=":", lw=1)
    a.set_ylim(-0.5, num_modes + 0.5)
    a.set_xlabel("step")
    a.set_ylabel("modes captured")
    a.set_title(f"modes captured (of {num_modes})", fontsize=9)
    b.plot(steps, [h["high_quality_pct"] for h in history], marker=".", color="#d95f02")
    b.set_ylim(-2, 102)
    b.set_xlabel("step")
    b.set_ylabel("high-quality samples (%)")
    b.set_title("high-quality % (within 3σ of nearest mode)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def variant_panels(path: str | Path, panels: Sequence[tuple[str, np.ndarray, Sequence[bool], str]],
                   mixture: Mixture, title: str) -> Path:
    """One panel per ablation variant: (label, samples, captured, caption line)."""
    n = len(panels)
    if n == 0:
        raise ValueError("variant_panels needs at least one panel")
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.8 * rows), squeeze=False)
    for ax, (label, samples, captured, caption) in zip(axes.flat, panels, strict=False):
        _modes_axes(ax, samples, mixture, captured, f"{label}\n{caption}")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
