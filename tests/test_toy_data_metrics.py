"""1D targets and the toy metrics, against scipy and known values."""

import numpy as np
import pytest
import torch
from scipy import stats

from improved_gan.data.toy import parse_target
from improved_gan.errors import ConfigError
from improved_gan.metrics.toy import decision_flatness, histogram_js, js_divergence, ks_statistic, wasserstein1


def test_parse_normal_and_mixture():
    t = parse_target("normal:4,0.5")
    assert (t.weights, t.means, t.stds) == ((1.0,), (4.0,), (0.5,))
    m = parse_target("mixture:1,-2,0.5;3,2,0.25")
    assert m.weights == pytest.approx((0.25, 0.75))
    assert m.mean == pytest.approx(0.25 * -2 + 0.75 * 2)
    # variance of a mixture: E[s^2 + m^2] - mean^2
    assert m.std**2 == pytest.approx(0.25 * (0.25 + 4) + 0.75 * (0.0625 + 4) - 1.0)


@pytest.mark.parametrize("spec", ["normal", "normal:4", "normal:a,b", "normal:4,-1", "gauss:1,2",
                                  "mixture:", "mixture:1,2", "mixture:0,1,1", "normal:nan,1"])
def test_bad_specs_name_the_syntax(spec):
    with pytest.raises(ConfigError, match="target"):
        parse_target(spec)


def test_sampling_matches_the_mixture():
    t = parse_target("mixture:1,-3,0.5;1,3,0.5")
    x = t.sample(40000, torch.Generator().manual_seed(0)).numpy()[:, 0]
    assert x.shape == (40000,)
    assert np.mean(x > 0) == pytest.approx(0.5, abs=0.01)
    assert x.std() == pytest.approx(t.std, rel=0.02)
    assert ks_statistic(x, t) < 0.01


def test_w1_against_scipy_and_the_collapse_value():
    t = parse_target("normal:4,0.5")
    rng = np.random.default_rng(0)
    x = rng.normal(3.7, 0.8, size=4000)
    reference = stats.norm(4, 0.5).ppf((np.arange(200000) + 0.5) / 200000)  # quantiles: exact target
    assert wasserstein1(x, t) == pytest.approx(stats.wasserstein_distance(x, reference), abs=2e-3)
    # every sample at the mean: E|X - mu| = sigma sqrt(2/pi)
    assert wasserstein1(np.full(1000, 4.0), t) == pytest.approx(0.5 * np.sqrt(2 / np.pi), abs=1e-3)


def test_ks_against_scipy():
    t = parse_target("mixture:1,0,1;2,3,0.5")
    x = np.random.default_rng(1).normal(1.5, 1.5, size=3000)
    assert ks_statistic(x, t) == pytest.approx(stats.kstest(x, t.cdf).statistic, abs=1e-12)


def test_js_known_values():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(np.log(2))
    assert js_divergence([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0)
    p, q = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    m = (p + q) / 2
    expected = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * (1.0 * np.log(1.0 / 0.75))
    assert js_divergence(p, q) == pytest.approx(expected)
    t = parse_target("normal:0,1")
    assert histogram_js(np.full(100, 100.0), t) > 0.6  # all mass in one edge bin, far from the target
    assert histogram_js(np.random.default_rng(0).normal(size=200000), t) < 1e-3


def test_decision_flatness():
    assert decision_flatness(np.full(10, 0.5)) == 0.0
    assert decision_flatness(np.array([0.0, 1.0])) == 0.5
