"""Semi-supervised K+1-class discriminator, Section 5 of Salimans et al. 2016 (arXiv:1606.03498).

The classifier outputs K logits l_1..l_K for the real classes; the logit of the extra "generated"
class is fixed at 0 (softmax is invariant to shifting all K+1 logits, so this loses nothing). With
Z(x) = Σ_k exp(l_k(x)) the probability that x is real is

    D(x) = Z(x) / (Z(x) + 1) = sigmoid(lse(l)),        lse(l) = log Σ_k exp(l_k).

Losses (each the mean over the batch):

- labeled:    L_lab = −log p(y | x, y < K+1)  = cross-entropy over the K classes = −l_y + lse(l)
- unlabeled:  −log D(x)          = −lse(l) + softplus(lse(l)) = softplus(−lse(l))
- generated:  −log(1 − D(G(z))) = softplus(lse(l))

Agreement with the authors' code (openai/improved-gan, ``mnist_svhn_cifar10/train_mnist_feature_matching.py``
and ``train_cifar_*.py``): their ``loss_lab = −mean(l_y) + mean(lse)`` is :func:`labeled_loss`; their
``loss_unl = −0.5·mean(lse_unl) + 0.5·mean(softplus(lse_unl)) + 0.5·mean(softplus(lse_fake))`` is
``0.5·(unlabeled_loss + generated_loss)`` — note the factor 0.5, which :func:`discriminator_loss`
applies too; the discriminator minimises ``loss_lab + unlabeled_weight · loss_unl``. Everything is
computed from ``torch.logsumexp`` and ``softplus`` so logits of ±1e4 give finite values and gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def log_sum_exp(logits: torch.Tensor) -> torch.Tensor:
    """lse(l) = log Σ_k exp(l_k) over the class dimension (dim 1), computed stably. Shape (N,)."""
    return torch.logsumexp(logits, dim=1)


def labeled_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Supervised part of Section 5: mean cross-entropy over the K real classes, −l_y + lse(l)."""
    return F.cross_entropy(logits, labels)


def unlabeled_loss(logits: torch.Tensor) -> torch.Tensor:
    """−log D(x) on real unlabeled data, D = Z/(Z+1): −lse + softplus(lse) = softplus(−lse), mean."""
    return F.softplus(-log_sum_exp(logits)).mean()


def generated_loss(logits: torch.Tensor) -> torch.Tensor:
    """−log(1 − D(G(z))) on generated data: log(Z+1) = softplus(lse(l)), mean over the batch."""
    return F.softplus(log_sum_exp(logits)).mean()


def prob_real(logits: torch.Tensor) -> torch.Tensor:
    """D(x) = Z/(Z+1) = sigmoid(lse(l)), shape (N,)."""
    return torch.sigmoid(log_sum_exp(logits))


def discriminator_loss(logits_lab: torch.Tensor, labels: torch.Tensor, logits_unl: torch.Tensor,
                       logits_gen: torch.Tensor, unlabeled_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The authors' combination: ``loss = L_lab + unlabeled_weight · 0.5 · (L_unl + L_gen)``.

    Returns ``{"loss", "loss_lab", "loss_unl"}`` where ``loss_unl`` already includes the 0.5.
    """
    loss_lab = labeled_loss(logits_lab, labels)
    loss_unl = 0.5 * (unlabeled_loss(logits_unl) + generated_loss(logits_gen))
    return {"loss": loss_lab + unlabeled_weight * loss_unl, "loss_lab": loss_lab, "loss_unl": loss_unl}
