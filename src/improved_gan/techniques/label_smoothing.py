"""One-sided label smoothing, Section 3.4 of Salimans et al. 2016 (arXiv:1606.03498).

The discriminator's targets for real examples are replaced by a smoothed value α (0.9 in practice)
while the targets for generated examples stay exactly 0. With a smoothed fake target β the optimal
discriminator D*(x) = (α p_data + β p_model) / (p_data + p_model) would reward the generator for
staying where p_data is small, so only the positive side is smoothed.

The discriminator minimises

    L_D = mean_i BCE(l_i^real, α) + mean_j BCE(l_j^fake, 0)
        = mean_i [α·softplus(−l_i) + (1−α)·softplus(l_i)] + mean_j softplus(l_j)

and the generator loss used alongside it is the non-saturating −log D(G(z)) = softplus(−l) of
Goodfellow et al. 2014 (the generator loss of the paper's non-feature-matching runs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                      real_target: float = 1.0) -> torch.Tensor:
    """Section 3.4: mean BCE-with-logits of the real logits against ``real_target`` (α) plus the mean
    BCE of the fake logits against exactly 0. ``real_target=1.0`` is the standard GAN loss; pass 0.9
    when one-sided label smoothing is on."""
    if not 0.0 <= real_target <= 1.0:
        raise ValueError(f"real_target must be in [0, 1], got {real_target}")
    real_logits = real_logits.reshape(-1)
    fake_logits = fake_logits.reshape(-1)
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.softplus(fake_logits).mean()  # BCE against target 0: -log(1 - sigmoid(l)) = softplus(l)
    return real + fake


def generator_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss −log D(G(z)) = softplus(−l), the mean over the batch."""
    return F.softplus(-fake_logits.reshape(-1)).mean()
