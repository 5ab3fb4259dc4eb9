"""Additive Gaussian noise, used in the paper's MNIST discriminator (Section 5, Appendix; the authors'
code adds σ=0.3 noise to the input and σ=0.5 after each hidden layer).

    y = x + σ·ε,  ε ~ N(0, I)     in training mode;      y = x     in eval mode (or when σ = 0).
"""

from __future__ import annotations

import torch
from torch import nn


class GaussianNoise(nn.Module):
    """y = x + σ·N(0, I) in ``train()`` mode, identity in ``eval()`` mode. No parameters."""

    def __init__(self, sigma: float):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"GaussianNoise sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0.0:
            return x
        return torch.empty_like(x).normal_(0.0, self.sigma).add_(x)  # two passes over x, not three
