"""Mode metrics on hand-made sample sets whose answers are known, and the 2-D mixtures themselves."""

import math

import pytest
import torch

from improved_gan.data.mixtures2d import Mixture, get_mixture, grid25, ring8
from improved_gan.errors import ConfigError
from improved_gan.metrics.modes import (
    assign_modes,
    energy_distance,
    mode_metrics,
    reverse_kl,
    sliced_wasserstein,
)


def test_ring8_has_eight_distinct_modes_at_2pi_k_over_8():
    m = ring8()
    assert m.num_modes == 8
    d = torch.cdist(m.means, m.means) + torch.eye(8) * 10
    assert float(d.min()) == pytest.approx(2 * math.sin(math.pi / 8), rel=1e-5)  # neighbours, none coincide
    assert m.means[2].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)
    assert float(m.stds[0]) == pytest.approx(0.01)
    m2 = ring8(radius=2.0, std=0.02)
    assert m2.means.norm(dim=1).tolist() == pytest.approx([2.0] * 8)


def test_grid25_means_and_sampling_statistics():
    m = grid25()
    assert m.num_modes == 25
    assert sorted(set(m.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    g = torch.Generator().manual_seed(0)
    x = m.sample(20000, generator=g)
    idx, dist = assign_modes(x, m.means, m.stds)
    counts = torch.bincount(idx, minlength=25).float()
    assert float(counts.min()) > 20000 / 25 * 0.8  # roughly uniform over modes
    resid = x - m.means[idx]
    assert float(resid.std()) == pytest.approx(0.05, rel=0.05)


def test_all_modes_perfect():
    m = ring8()
    x = m.means.repeat(50, 1)  # every sample exactly on a mode, 50 per mode
    r = mode_metrics(x, m)
    assert r["modes"] == 8 and r["high_quality_pct"] == 100.0
    assert r["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert r["counts"] == [50] * 8


def test_true_samples_score_like_the_published_ideal():
    m = grid25()
    x = m.sample(2500, generator=torch.Generator().manual_seed(1))
    r = mode_metrics(x, m)
    assert r["modes"] == 25
    assert 97.0 < r["high_quality_pct"] < 99.9  # chi(2) mass inside 3 sigma is 98.9%
    assert r["reverse_kl"] < 0.02


def test_one_mode_only():
    m = ring8()
    x = m.means[3] + 0.005 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    r = mode_metrics(x, m)
    assert r["modes"] == 1 and r["captured"][3]
    assert r["high_quality_pct"] == 100.0
    assert r["reverse_kl"] == pytest.approx(math.log(8))


def test_far_from_every_mode():
    m = ring8()
    x = torch.zeros(100, 2)  # the ring's centre: 100 sigma from each mode
    r = mode_metrics(x, m)
    assert r["modes"] == 0 and r["high_quality_pct"] == 0.0
    assert math.isnan(r["reverse_kl"])


def test_threshold_is_three_standardized_sigmas():
    m = ring8(std=0.01)
    inside = m.means[0] + torch.tensor([[0.0299, 0.0]])
    outside = m.means[0] + torch.tensor([[0.0212, 0.0213]])  # sqrt(2.12^2 + 2.13^2) = 3.005 sigma
    assert mode_metrics(inside, m)["high_quality_pct"] == 100.0
    assert mode_metrics(outside, m)["high_quality_pct"] == 0.0


def test_reverse_kl_known_values():
    assert reverse_kl([5, 5, 5, 5]) == 0.0
    assert reverse_kl([1, 0, 0, 0]) == pytest.approx(math.log(4))
    assert reverse_kl([3, 1]) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert reverse_kl([1, 1], weights=[0.5, 0.5]) == 0.0
    assert reverse_kl([1, 3], weights=[0.25, 0.75]) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(reverse_kl([0, 0, 0]))
    with pytest.raises(ValueError):
        reverse_kl([1, -1])
    with pytest.raises(ValueError):
        reverse_kl([1, 1], weights=[1.0])


def test_distribution_distances():
    m = ring8()
    g = torch.Generator().manual_seed(0)
    a, b = m.sample(1000, generator=g), m.sample(1000, generator=g)
    collapsed = m.means[0] + 0.01 * torch.randn(1000, 2, generator=g)
    assert energy_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert energy_distance(a, b) < 0.01 < energy_distance(a, collapsed)
    assert sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(0)) < 0.05
    assert sliced_wasserstein(a, collapsed, generator=torch.Generator().manual_seed(0)) > 0.3
    shifted = a + torch.tensor([1.0, 0.0])
    sw = sliced_wasserstein(a, shifted, num_projections=4000, generator=torch.Generator().manual_seed(0))
    assert sw == pytest.approx(2 / math.pi, rel=0.03)  # E|cos(theta)| over the circle
    assert sliced_wasserstein(a, b[:700]) < 0.06  # unequal sizes


def test_bad_inputs():
    m = ring8()
    with pytest.raises(ValueError):
        mode_metrics(torch.zeros(0, 2), m)
    with pytest.raises(ValueError):
        mode_metrics(torch.zeros(10, 3), m)
    with pytest.raises(ValueError):
        mode_metrics(torch.full((10, 2), float("nan")), m)
    with pytest.raises(ValueError):
        mode_metrics(torch.zeros(10, 2), m, threshold=0)
    with pytest.raises(ConfigError):
        get_mixture("ring9")
    with pytest.raises(ConfigError):
        ring8(std=0.0)
    with pytest.raises(ConfigError):
        Mixture("bad", torch.zeros(2, 2), torch.ones(2), torch.tensor([0.7, 0.7]))
    with pytest.raises(ConfigError):
        m.sample(0)
