"""Gaussian mixtures with known modes: the mode-collapse benchmarks of VEEGAN and PacGAN.

- ``ring8``: 8 isotropic Gaussians with means (r·cos 2πk/8, r·sin 2πk/8), k = 0..7, σ per axis.
  Default r = 1, σ = 0.01 (the PacGAN protocol); r = 2, σ = 0.02 is the other common setting.
  The angles are 2πk/8 for k = 0..7 — not ``linspace(0, 2π, 8)``, whose first and last points
  coincide and give 7 distinct modes.
- ``grid25``: 25 isotropic Gaussians on {−4, −2, 0, 2, 4}², σ = 0.05 per axis.
- ``mixture:W1,MU1,S1;W2,MU2,S2;...``: a 1-D mixture in the syntax of the toy command's ``--target``,
  parsed by :func:`improved_gan.data.toy.parse_target` (weights need not be equal).

A :class:`Mixture` holds the means (K, D), the per-mode standard deviations (K,) (isotropic within a
mode) and the mixing weights (K,), which is all the mode metrics of
:mod:`improved_gan.metrics.modes` need.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from improved_gan.errors import ConfigError

DATASETS = ("ring8", "grid25")


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A mixture of isotropic Gaussians: mode k is N(means[k], stds[k]² I) with probability weights[k]."""

    name: str
    means: torch.Tensor  # (K, D)
    stds: torch.Tensor  # (K,)
    weights: torch.Tensor  # (K,), sums to 1

    def __post_init__(self):
        if self.means.dim() != 2 or self.means.shape[0] < 1:
            raise ConfigError(f"mixture '{self.name}': means must have shape (K, D), got "
                              f"{tuple(self.means.shape)}")
        k = self.means.shape[0]
        if self.stds.shape != (k,) or self.weights.shape != (k,):
            raise ConfigError(f"mixture '{self.name}': need one std and one weight per mode ({k})")
        if not bool((self.stds > 0).all()):
            raise ConfigError(f"mixture '{self.name}': every standard deviation must be > 0")
        if not bool((self.weights >= 0).all()) or abs(float(self.weights.sum()) - 1.0) > 1e-6:
            raise ConfigError(f"mixture '{self.name}': weights must be >= 0 and sum to 1")

    @property
    def num_modes(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` samples (n, D): a mode drawn by weight, then Gaussian noise of that mode's σ."""
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        gdev = generator.device if generator is not None else "cpu"
        idx = torch.multinomial(self.weights.to(gdev), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, device=gdev)
        x = self.means.to(gdev)[idx] + noise * self.stds.to(gdev)[idx, None]
        return x.to(device) if device is not None else x

    def limits(self, margin: float = 0.25) -> tuple[float, float, float, float]:
        """Fixed axis limits (xmin, xmax, ymin, ymax) around every mode's ±3σ, plus a relative margin."""
        lo = (self.means - 3 * self.stds[:, None]).min(dim=0).values
        hi = (self.means + 3 * self.stds[:, None]).max(dim=0).values
        pad = (hi - lo).clamp_min(1e-3) * margin
        lo, hi = (lo - pad).tolist(), (hi + pad).tolist()
        if self.dim == 1:
            return lo[0], hi[0], 0.0, 0.0
        return lo[0], hi[0], lo[1], hi[1]


def _uniform(name: str, means: torch.Tensor, std: float) -> Mixture:
    k = means.shape[0]
    return Mixture(name, means, torch.full((k,), float(std)), torch.full((k,), 1.0 / k))


def ring8(radius: float = 1.0, std: float = 0.01, num_modes: int = 8) -> Mixture:
    """``num_modes`` Gaussians evenly on a circle: angle 2πk/num_modes, k = 0..num_modes−1."""
    if radius <= 0 or std <= 0:
        raise ConfigError(f"ring: radius and std must be > 0, got radius={radius}, std={std}")
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    means = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1).float()
    return _uniform(f"ring{num_modes}", means, std)


def grid25(std: float = 0.05, spacing: float = 2.0, side: int = 5) -> Mixture:
    """``side``² Gaussians on a square grid centred at 0: {−4, −2, 0, 2, 4}² by default."""
    if std <= 0 or spacing <= 0:
        raise ConfigError(f"grid: std and spacing must be > 0, got std={std}, spacing={spacing}")
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    means = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    return _uniform(f"grid{side * side}", means, std)


def mixture_1d(spec: str) -> Mixture:
    """A 1-D mixture from the toy command's ``mixture:W1,MU1,S1;...`` syntax, parsed by
    :func:`improved_gan.data.toy.parse_target` (which raises ConfigError on a malformed spec)."""
    from improved_gan.data.toy import parse_target

    target = parse_target(spec)
    w = torch.tensor(target.weights, dtype=torch.float64)
    return Mixture(spec, torch.tensor(target.means, dtype=torch.float32).reshape(-1, 1),
                   torch.tensor(target.stds, dtype=torch.float32), (w / w.sum()).float())


def get_mixture(name: str, radius: float = 1.0, std: float | None = None) -> Mixture:
    """``ring8`` (radius, std default 0.01), ``grid25`` (std default 0.05) or ``mixture:...`` (1-D)."""
    if name == "ring8":
        return ring8(radius=radius, std=0.01 if std is None else std)
    if name == "grid25":
        return grid25(std=0.05 if std is None else std)
    if name.startswith("mixture:"):
        return mixture_1d(name)
    raise ConfigError(f"unknown dataset '{name}'; choose ring8, grid25 or mixture:W1,MU1,S1;W2,MU2,S2;...")
