"""How close G's 1D samples are to the target, and how undecided D is over the target's support."""

from __future__ import annotations

import numpy as np

from improved_gan.data.toy import Mixture1D


def wasserstein1(samples: np.ndarray, target: Mixture1D, grid_points: int = 20001) -> float:
    """W1(empirical, target) = ∫ |F_n(x) − F(x)| dx, integrated on a fine grid covering both.

    A generator collapsed onto the mean of N(mu, sigma) scores sigma·sqrt(2/pi) (0.399 for sigma = 0.5).
    """
    samples = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    lo, hi = target.support(8.0)
    lo, hi = min(lo, samples[0]), max(hi, samples[-1])
    x = np.linspace(lo, hi, grid_points)
    emp = np.searchsorted(samples, x, side="right") / samples.size
    return float(np.trapezoid(np.abs(emp - target.cdf(x)), x))


def ks_statistic(samples: np.ndarray, target: Mixture1D) -> float:
    """Kolmogorov–Smirnov statistic sup_x |F_n(x) − F(x)| (evaluated at the jumps of F_n)."""
    s = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = s.size
    cdf = target.cdf(s)
    above = np.arange(1, n + 1) / n - cdf
    below = cdf - np.arange(0, n) / n
    return float(max(above.max(), below.max()))


def histogram_js(samples: np.ndarray, target: Mixture1D, bins: int = 100) -> float:
    """Jensen–Shannon divergence (natural log, in [0, ln 2]) between the histogram of the samples and the
    target's probability of the same bins, over the target's 4-sigma support; mass outside counts in the
    two edge bins."""
    lo, hi = target.support(4.0)
    edges = np.linspace(lo, hi, bins + 1)
    samples = np.clip(np.asarray(samples, dtype=np.float64).ravel(), lo, hi)
    p, _ = np.histogram(samples, bins=edges)
    p = p / p.sum()
    cdf = target.cdf(edges)
    cdf[0], cdf[-1] = 0.0, 1.0
    q = np.diff(cdf)
    return js_divergence(p, q)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def decision_flatness(d_values: np.ndarray) -> float:
    """Mean |D(x) − 0.5| over points of the target's support: 0 when D can no longer tell real from fake."""
    return float(np.mean(np.abs(np.asarray(d_values) - 0.5)))


def toy_metrics(samples: np.ndarray, target: Mixture1D, d_on_support: np.ndarray) -> dict[str, float]:
    samples = np.asarray(samples, dtype=np.float64).ravel()
    return {
        "w1": wasserstein1(samples, target),
        "ks": ks_statistic(samples, target),
        "js": histogram_js(samples, target),
        "mean": float(samples.mean()),
        "std": float(samples.std()),
        "d_flatness": decision_flatness(d_on_support),
    }
