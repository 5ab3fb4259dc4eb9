"""Sample-quality metrics on inputs with known answers."""

import pytest
import torch

from improved_gan.errors import ConfigError
from improved_gan.metrics.image_scores import (
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
    standard_scores,
)


def test_repeated_image_scores_one():
    p = torch.softmax(torch.randn(1, 10), 1).repeat(500, 1)
    mean, std = inception_score(p)
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_confident_uniform_classes_score_number_of_classes():
    labels = torch.arange(10).repeat(100)  # 1000 samples, 100 per class, in sorted blocks
    p = torch.nn.functional.one_hot(labels, 10).double()
    mean, std = inception_score(p, splits=10)
    # shuffled splits are not exactly balanced, so each part scores exp(H(p_y)) <= 10
    assert 9.5 < mean <= 10.0 + 1e-9 and std < 0.3
    p7 = torch.nn.functional.one_hot(torch.arange(7).repeat(10), 7).double()
    assert inception_score(p7, splits=1)[0] == pytest.approx(7.0, rel=1e-9)


def test_score_between_one_and_classes_and_rejects_logits():
    p = torch.softmax(torch.randn(1000, 10) * 3, 1)
    mean, _ = inception_score(p)
    assert 1.0 < mean < 10.0
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(torch.randn(100, 10))


def test_identical_sets_give_zero_fid_and_kid():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2000, 16, generator=g)
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)
    kid, _ = kernel_inception_distance(f, f, subsets=10, subset_size=500)
    shifted, _ = kernel_inception_distance(f, f + 0.5, subsets=10, subset_size=500)
    assert abs(kid) < 0.02 and shifted > 20 * abs(kid)


def test_fid_matches_matrix_square_root_and_handles_singular_covariances():
    import numpy as np
    import scipy.linalg

    from improved_gan.metrics.image_scores import feature_statistics, frechet_distance_from_stats

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(500, 6, generator=g), torch.randn(500, 6, generator=g) * 2 + 1
    mu_a, s_a = feature_statistics(a)
    mu_b, s_b = feature_statistics(b)
    root = np.real(scipy.linalg.sqrtm(s_a @ s_b))
    ref = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b) - 2 * np.trace(root)
    assert frechet_distance_from_stats(mu_a, s_a, mu_b, s_b) == pytest.approx(ref, rel=1e-8)
    dead = torch.cat([a, torch.zeros(500, 3)], 1)  # three features always 0 -> singular covariance
    assert frechet_distance(dead, dead) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(dead, torch.cat([b, torch.zeros(500, 3)], 1)) == pytest.approx(ref, rel=1e-6)


def test_fid_of_shifted_gaussian_is_squared_shift():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(20000, 4, generator=g)
    b = torch.randn(20000, 4, generator=g) + torch.tensor([2.0, 0, 0, 0])
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    kid_far, _ = kernel_inception_distance(a, b, subsets=5, subset_size=500)
    kid_near, _ = kernel_inception_distance(a, torch.randn(2000, 4, generator=g), subsets=5, subset_size=500)
    assert kid_far > 0.1 > abs(kid_near)


def test_precision_recall_identical_and_collapsed():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(1000, 8, generator=g)
    assert precision_recall(real, real) == (1.0, 1.0)
    collapsed = real[:1].repeat(500, 1) + 1e-3 * torch.randn(500, 8, generator=g)
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)


def test_standard_scores_clear_error_without_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("IMPROVED_GAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(ConfigError, match="IMPROVED_GAN_INCEPTION_WEIGHTS"):
        standard_scores(torch.rand(10, 1, 28, 28))
    with pytest.raises(ConfigError, match="weights file"):
        standard_scores(torch.rand(10, 1, 28, 28), weights_path=tmp_path / "missing.pth")
