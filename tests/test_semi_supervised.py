"""Semi-supervised K+1 discriminator (Section 5) with the generated-class logit fixed at 0."""

import math

import pytest
import torch
import torch.nn.functional as F

from improved_gan.techniques.semi_supervised import (
    discriminator_loss,
    generated_loss,
    labeled_loss,
    log_sum_exp,
    prob_real,
    unlabeled_loss,
)


def test_hand_computed():
    z = torch.zeros(3, 2)  # Z = 2, D = 2/3
    assert log_sum_exp(z)[0].item() == pytest.approx(math.log(2))
    assert prob_real(z)[0].item() == pytest.approx(2 / 3)
    assert unlabeled_loss(z).item() == pytest.approx(-math.log(2 / 3))
    assert generated_loss(z).item() == pytest.approx(-math.log(1 / 3))
    assert labeled_loss(z, torch.tensor([0, 1, 0])).item() == pytest.approx(math.log(2))


def test_brute_force_k_plus_one_softmax():
    torch.manual_seed(0)
    logits = torch.randn(6, 4, dtype=torch.float64) * 2
    labels = torch.tensor([0, 3, 1, 2, 2, 0])
    full = torch.cat([logits, torch.zeros(6, 1, dtype=torch.float64)], dim=1)  # class K = generated
    p = torch.softmax(full, dim=1)
    d = 1 - p[:, 4]
    assert torch.allclose(prob_real(logits), d)
    assert unlabeled_loss(logits).item() == pytest.approx(-torch.log(d).mean().item())
    assert generated_loss(logits).item() == pytest.approx(-torch.log(p[:, 4]).mean().item())
    # labeled: -log p(y | x, y < K+1), i.e. the K-class softmax
    cond = p[torch.arange(6), labels] / d
    assert labeled_loss(logits, labels).item() == pytest.approx(-torch.log(cond).mean().item())
    # the authors' form of the unlabeled loss: -lse + softplus(lse)
    lse = torch.logsumexp(logits, 1)
    assert unlabeled_loss(logits).item() == pytest.approx((-lse + F.softplus(lse)).mean().item())
    out = discriminator_loss(logits, labels, logits, -logits, unlabeled_weight=2.0)
    half = 0.5 * (unlabeled_loss(logits) + generated_loss(-logits))
    assert out["loss_unl"].item() == pytest.approx(half.item())
    assert out["loss"].item() == pytest.approx((labeled_loss(logits, labels) + 2.0 * half).item())


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_stable_for_huge_logits(scale):
    for dtype in (torch.float32, torch.float64):
        logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]], dtype=dtype).mul(scale).requires_grad_()
        labels = torch.tensor([0, 2])
        losses = [labeled_loss(logits, labels), unlabeled_loss(logits), generated_loss(logits)]
        for loss in losses:
            (g,) = torch.autograd.grad(loss, logits)
            assert torch.isfinite(loss) and torch.isfinite(g).all()
        assert torch.isfinite(prob_real(logits)).all()
        lse = torch.logsumexp(logits.detach().double(), 1)
        assert losses[1].item() == pytest.approx(F.softplus(-lse).mean().item(), rel=1e-5, abs=1e-6)
        assert losses[2].item() == pytest.approx(F.softplus(lse).mean().item(), rel=1e-5, abs=1e-6)


def test_gradcheck():
    torch.manual_seed(1)
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 1])
    for fn in (unlabeled_loss, generated_loss, prob_real, log_sum_exp, lambda lg: labeled_loss(lg, labels)):
        assert torch.autograd.gradcheck(fn, (logits,))
