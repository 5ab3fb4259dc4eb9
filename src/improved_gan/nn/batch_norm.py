"""Batch-norm variants used by the paper's models.

:class:`BatchNormNoGain` — batch norm with a learned shift β but no gain γ, as in the generators of the
authors' MNIST and CIFAR-10 code (``nn.batch_norm(..., g=None)``), used in the models of Section 5:

    y = (x − μ_B) / sqrt(σ²_B + ε) + β

with μ_B, σ²_B the (biased) batch mean and variance per feature (per channel over N·H·W for images) in
training mode, and running averages (momentum 0.1, unbiased variance, as in ``torch.nn.BatchNorm`` and
the authors' code) in eval mode. ε defaults to 1e-6 as in the authors' code.

:class:`MeanOnlyBatchNorm` — mean-only batch norm (Salimans & Kingma 2016, the companion of weight
normalisation): y = x − μ_B + β, running mean in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check(x: torch.Tensor, num_features: int, name: str) -> None:
    if x.dim() not in (2, 3, 4) or x.shape[1] != num_features:
        raise ValueError(f"{name}({num_features}) expects (N, {num_features}[, ...]) input, "
                         f"got {tuple(x.shape)}")


class BatchNormNoGain(nn.Module):
    """y = (x − μ_B)/sqrt(σ²_B + ε) + β: batch norm with shift β and no gain, for (N, F) or (N, C, H, W)."""

    def __init__(self, num_features: int, eps: float = 1e-6, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.num_features, type(self).__name__)
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, self.training,
                            self.momentum, self.eps)


class MeanOnlyBatchNorm(nn.Module):
    """y = x − μ_B + β (training; μ_B the batch mean per feature/channel); y = x − running_mean + β (eval)."""

    def __init__(self, num_features: int, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.momentum = num_features, momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.num_features, type(self).__name__)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.training:
            dims = (0,) + tuple(range(2, x.dim()))
            mean = x.mean(dim=dims)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
        else:
            mean = self.running_mean
        return x - mean.view(shape) + self.bias.view(shape)
