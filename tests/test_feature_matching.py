"""Feature matching (Section 3.1): ‖E f(x) − E f(G(z))‖² on batch means."""

import math

import pytest
import torch

from improved_gan.errors import ConfigError
from improved_gan.techniques.feature_matching import feature_matching_loss

REAL = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # batch mean (2, 3)
FAKE = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # batch mean (1, 1); mean difference (1, 2)


@pytest.mark.parametrize(("variant", "reduction", "expected"), [
    ("l2sq", "mean", 2.5), ("l2sq", "sum", 5.0), ("l1", "mean", 1.5), ("l1", "sum", 3.0),
    ("pairwise", "mean", math.sqrt(5.0)), ("pairwise", "sum", 2 * math.sqrt(5.0)),
])
def test_hand_computed(variant, reduction, expected):
    loss = feature_matching_loss(REAL, FAKE, variant=variant, reduction=reduction)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_default_is_paper_l2sq_mean():
    assert feature_matching_loss(REAL, FAKE).item() == pytest.approx(2.5)


def test_batch_means_not_pairs():
    torch.manual_seed(0)
    real, fake = torch.randn(8, 5), torch.randn(8, 5)
    perm = torch.randperm(8)
    assert torch.allclose(feature_matching_loss(real, fake), feature_matching_loss(real, fake[perm]))
    pair = feature_matching_loss(real, fake, variant="pairwise")
    assert not torch.allclose(pair, feature_matching_loss(real, fake[perm], variant="pairwise"))
    # a generator batch with the real mean has zero loss even if its samples are paired differently
    shifted = real[torch.randperm(8)]
    assert feature_matching_loss(real, shifted).item() == pytest.approx(0.0, abs=1e-10)
    assert feature_matching_loss(real, shifted, variant="pairwise").item() > 0.1


def test_brute_force_gradient_and_detached_real():
    torch.manual_seed(1)
    real = torch.randn(6, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    loss = feature_matching_loss(real, fake, reduction="sum")
    loss.backward()
    assert real.grad is None  # the real side is a target
    diff = real.detach().flatten(1).mean(0) - fake.detach().flatten(1).mean(0)
    assert loss.item() == pytest.approx(float((diff ** 2).sum()))
    expected = (-2.0 * diff / 4).expand(4, -1).reshape(fake.shape)
    assert torch.allclose(fake.grad, expected)
    fake0 = fake.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda f: feature_matching_loss(real.detach(), f, variant="l1"), (fake0,))
    assert torch.autograd.gradcheck(lambda f: feature_matching_loss(real.detach(), f), (fake0,))


def test_flattens_trailing_dims():
    torch.manual_seed(2)
    real, fake = torch.randn(5, 2, 3), torch.randn(5, 2, 3)
    flat = feature_matching_loss(real.flatten(1), fake.flatten(1))
    assert torch.allclose(feature_matching_loss(real, fake), flat)


def test_pairwise_zero_distance_gradient_is_finite():
    x = torch.randn(3, 4)
    fake = x.clone().requires_grad_()
    feature_matching_loss(x, fake, variant="pairwise").backward()
    assert torch.isfinite(fake.grad).all()


def test_invalid_choices_name_the_options():
    with pytest.raises(ConfigError, match="l2sq, l1, pairwise"):
        feature_matching_loss(REAL, FAKE, variant="l2")
    with pytest.raises(ConfigError, match="mean, sum"):
        feature_matching_loss(REAL, FAKE, reduction="none")
    with pytest.raises(ValueError):
        feature_matching_loss(REAL, FAKE[:1], variant="pairwise")
    with pytest.raises(ValueError):
        feature_matching_loss(REAL, torch.zeros(2, 3))
