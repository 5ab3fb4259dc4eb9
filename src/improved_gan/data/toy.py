"""1D targets for the toy study: ``normal:MU,SIGMA`` and ``mixture:W1,MU1,S1;W2,MU2,S2;...``."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import stats

from improved_gan.errors import ConfigError

SPEC_HELP = "normal:MU,SIGMA (e.g. normal:4,0.5) or mixture:W1,MU1,S1;W2,MU2,S2;... (weights > 0, sigmas > 0)"


@dataclasses.dataclass(frozen=True)
class Mixture1D:
    """A mixture of 1D normals (one component for ``normal:``); weights sum to 1."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    spec: str = ""

    @property
    def mean(self) -> float:
        return float(np.dot(self.weights, self.means))

    @property
    def std(self) -> float:
        w, m, s = map(np.asarray, (self.weights, self.means, self.stds))
        return float(np.sqrt(np.dot(w, s**2 + m**2) - self.mean**2))

    def support(self, k: float = 3.0) -> tuple[float, float]:
        """[min(mu - k sigma), max(mu + k sigma)] over the components: where the mass is."""
        lo = min(m - k * s for m, s in zip(self.means, self.stds, strict=False))
        hi = max(m + k * s for m, s in zip(self.means, self.stds, strict=False))
        return lo, hi

    def pdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return sum(w * stats.norm.pdf(x, m, s) for w, m, s in zip(self.weights, self.means, self.stds, strict=False))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return sum(w * stats.norm.cdf(x, m, s) for w, m, s in zip(self.weights, self.means, self.stds, strict=False))

    def sample(self, n: int, generator: torch.Generator, device: str | torch.device = "cpu") -> torch.Tensor:
        """(n, 1) float32 samples drawn with ``generator`` (CPU generator; moved to ``device``)."""
        weights = torch.tensor(self.weights, dtype=torch.float64)
        comp = torch.multinomial(weights, n, replacement=True, generator=generator)
        means = torch.tensor(self.means, dtype=torch.float32)[comp]
        stds = torch.tensor(self.stds, dtype=torch.float32)[comp]
        x = means + stds * torch.randn(n, generator=generator)
        return x.unsqueeze(1).to(device)


def _numbers(text: str, spec: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"target '{spec}': '{text}' is not a list of numbers; expected {SPEC_HELP}") from None


def parse_target(spec: str) -> Mixture1D:
    """Parse a target spec; any malformed spec raises ConfigError quoting the expected syntax."""
    kind, sep, rest = spec.strip().partition(":")
    if not sep:
        raise ConfigError(f"target '{spec}' has no ':'; expected {SPEC_HELP}")
    if kind == "normal":
        values = _numbers(rest, spec)
        if len(values) != 2:
            raise ConfigError(f"target '{spec}': normal takes MU,SIGMA (2 numbers), got {len(values)}")
        comps = [(1.0, values[0], values[1])]
    elif kind == "mixture":
        comps = []
        for part in filter(None, (p.strip() for p in rest.split(";"))):
            values = _numbers(part, spec)
            if len(values) != 3:
                raise ConfigError(f"target '{spec}': each mixture component is W,MU,SIGMA, got '{part}'")
            comps.append(tuple(values))
        if not comps:
            raise ConfigError(f"target '{spec}' has no components; expected {SPEC_HELP}")
    else:
        raise ConfigError(f"target '{spec}': unknown kind '{kind}'; expected {SPEC_HELP}")
    weights, means, stds = zip(*comps, strict=False)
    if any(not np.isfinite(v) for v in (*weights, *means, *stds)):
        raise ConfigError(f"target '{spec}': values must be finite numbers")
    if any(s <= 0 for s in stds):
        raise ConfigError(f"target '{spec}': every SIGMA must be > 0")
    if any(w <= 0 for w in weights):
        raise ConfigError(f"target '{spec}': every weight must be > 0")
    total = sum(weights)
    return Mixture1D(tuple(w / total for w in weights), tuple(means), tuple(stds), spec)
