"""Feature matching, Section 3.1 of Salimans et al. 2016 (arXiv:1606.03498).

The generator is trained to match the expected value of an intermediate discriminator layer f:

    L_G = ‖ E_{x~p_data} f(x) − E_{z~p_z} f(G(z)) ‖²₂

estimated on *batch means*: the mean over the batch (dim 0) of the real features against the mean over
the batch of the generated features. The real side is a target and is detached here.

Variants (``variant=``):

- ``"l2sq"`` (the paper): squared L2 distance between the two batch means. ``reduction="mean"``
  averages the squared differences over the features (what the authors' MNIST code does,
  ``T.mean(T.square(m1 - m2))``); ``reduction="sum"`` is the plain squared norm of the formula.
- ``"l1"``: mean absolute difference of the batch means (the authors' CIFAR-10 code,
  ``T.mean(abs(m1 - m2))``); ``reduction="sum"`` sums instead of averaging over features.
- ``"pairwise"``: **not the paper's method.** Sample i of the real batch is paired with sample i of the
  generated batch and the loss is the mean (or sum) over pairs of ‖f(x_i) − f(G(z_i))‖₂ (with a square
  root). This is what some tutorials and torchgan did; it is kept only so the difference can be
  measured. It needs both batches to have the same size.
"""

from __future__ import annotations

import torch

from improved_gan.errors import ConfigError

VARIANTS = ("l2sq", "l1", "pairwise")
REDUCTIONS = ("mean", "sum")


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor, variant: str = "l2sq",
                          reduction: str = "mean") -> torch.Tensor:
    """Feature matching loss (Section 3.1): ‖mean_i f(x_i) − mean_j f(G(z_j))‖²₂.

    ``real_features`` (N, ...) and ``fake_features`` (M, ...) are flattened to (N, F) and (M, F); the
    batch sizes may differ except for ``variant="pairwise"``. Gradients flow only into
    ``fake_features``. Returns a scalar tensor.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown feature-matching variant '{variant}'; choose one of: "
                          f"{', '.join(VARIANTS)}")
    if reduction not in REDUCTIONS:
        raise ConfigError(f"unknown feature-matching reduction '{reduction}'; choose one of: "
                          f"{', '.join(REDUCTIONS)}")
    real = real_features.detach().flatten(1)
    fake = fake_features.flatten(1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: real {tuple(real_features.shape)} vs fake "
                         f"{tuple(fake_features.shape)}")
    if variant == "pairwise":
        if real.shape[0] != fake.shape[0]:
            raise ValueError("the 'pairwise' variant pairs sample i with sample i and needs equal "
                             "batch sizes")
        dist = torch.linalg.vector_norm(real - fake, dim=1)  # gradient 0 (not NaN) at 0
        return dist.mean() if reduction == "mean" else dist.sum()
    diff = real.mean(dim=0) - fake.mean(dim=0)
    per_feature = diff.pow(2) if variant == "l2sq" else diff.abs()
    return per_feature.mean() if reduction == "mean" else per_feature.sum()
