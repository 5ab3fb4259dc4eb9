"""One-sided label smoothing (Section 3.4) and the non-saturating generator loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from improved_gan.techniques.label_smoothing import discriminator_bce, generator_bce


def test_hand_computed_zero_logits():
    z = torch.zeros(4)
    for alpha in (1.0, 0.9):
        assert discriminator_bce(z, z, real_target=alpha).item() == pytest.approx(2 * math.log(2))
    assert generator_bce(z).item() == pytest.approx(math.log(2))


def test_matches_formula():
    torch.manual_seed(0)
    real, fake = torch.randn(7, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    a = 0.9
    expected = (a * F.softplus(-real) + (1 - a) * F.softplus(real)).mean() + F.softplus(fake).mean()
    assert discriminator_bce(real, fake, real_target=a).item() == pytest.approx(expected.item())
    assert discriminator_bce(real, fake).item() == pytest.approx(
        (-torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()).item())


@pytest.mark.parametrize("alpha", [1.0, 0.9, 0.7, 0.0])
def test_fake_target_never_smoothed(alpha):
    torch.manual_seed(1)
    real = torch.randn(6, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(5, dtype=torch.float64, requires_grad=True)
    discriminator_bce(real, fake, real_target=alpha).backward()
    assert torch.allclose(fake.grad, torch.sigmoid(fake.detach()) / 5)  # target exactly 0 for every alpha
    assert torch.allclose(real.grad, (torch.sigmoid(real.detach()) - alpha) / 6)


def test_generator_bce_is_non_saturating():
    logits = torch.tensor([-1e4, -5.0, 0.0, 5.0, 1e4], dtype=torch.float64, requires_grad=True)
    loss = generator_bce(logits)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.allclose(logits.grad, -(1 - torch.sigmoid(logits.detach())) / 5)
    assert logits.grad[0].item() == pytest.approx(-0.2)  # strong gradient when D rejects the sample


def test_accepts_column_logits_and_rejects_bad_target():
    real, fake = torch.randn(3, 1), torch.randn(3, 1)
    assert torch.allclose(discriminator_bce(real, fake), discriminator_bce(real.view(-1), fake.view(-1)))
    with pytest.raises(ValueError):
        discriminator_bce(real, fake, real_target=1.5)
