"""The 1D study's MLPs, in the tradition of the tutorials: G maps noise to one number; D is a tanh MLP
with a sigmoid output (here: a logit) that also returns the hidden layer feature matching compares.

Techniques change these models only through constructor options: ``minibatch_features=True`` inserts a
:class:`~improved_gan.techniques.minibatch_discrimination.MinibatchDiscrimination` layer between D's
last hidden layer and its output (Section 3.2).
"""

from __future__ import annotations

import torch
from torch import nn

from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination
from improved_gan.techniques.virtual_batch_norm import VirtualBN
from improved_gan.train.gan_step import DiscriminatorOutput


class ToyGenerator(nn.Module):
    """noise (N, noise_dim) -> softplus MLP -> (N, 1). ``virtual_batch_norm=True`` puts a
    :class:`~improved_gan.techniques.virtual_batch_norm.VirtualBN` after each hidden linear layer
    (Section 3.5); the trainer then forwards its fixed reference noise before each use."""

    def __init__(self, noise_dim: int = 1, hidden: int = 32, layers: int = 2, virtual_batch_norm: bool = False):
        super().__init__()
        blocks: list[nn.Module] = []
        width = noise_dim
        for _ in range(layers):
            blocks.append(nn.Linear(width, hidden))
            if virtual_batch_norm:
                blocks.append(VirtualBN(hidden))
            blocks.append(nn.Softplus())
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """x (N, 1) -> tanh MLP -> [minibatch features] -> logit. ``feature_layer`` picks which hidden layer's
    activations (0-based, negative from the end) are returned as ``features``."""

    def __init__(self, hidden: int = 32, layers: int = 3, feature_layer: int = -1,
                 minibatch_features: bool = False, mbd_kernels: int = 5, mbd_kernel_dim: int = 3):
        super().__init__()
        if not -layers <= feature_layer < layers:
            raise ValueError(f"feature_layer {feature_layer} out of range for {layers} hidden layers")
        self.hidden = nn.ModuleList()
        width = 1
        for _ in range(layers):
            self.hidden.append(nn.Linear(width, hidden))
            width = hidden
        self.feature_layer = feature_layer % layers
        self.minibatch = (MinibatchDiscrimination(width, num_kernels=mbd_kernels, kernel_dim=mbd_kernel_dim)
                          if minibatch_features else None)
        self.out = nn.Linear(self.minibatch.out_features if self.minibatch else width, 1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        features = None
        h = x
        for i, layer in enumerate(self.hidden):
            h = torch.tanh(layer(h))
            if i == self.feature_layer:
                features = h
        if self.minibatch is not None:
            h = self.minibatch(h)
        return DiscriminatorOutput(self.out(h).squeeze(1), features)

    @torch.no_grad()
    def probability(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """D(x) = sigmoid(logit), the decision boundary. With minibatch features D's output for a point
        depends on its batch, so each point x is scored as if it were appended to ``context`` (a batch
        of real samples): o(x)_b = Σ_j exp(−‖M(x)_b − M(c_j)_b‖₁) over the context, as in Section 3.2."""
        if self.minibatch is None or context is None:
            return torch.sigmoid(self(x).logits)
        h_x, h_c = self._hidden(x), self._hidden(context)
        m_x = self.minibatch.project(h_x).transpose(0, 1)  # (B, Q, C)
        m_c = self.minibatch.project(h_c).transpose(0, 1)  # (B, N, C)
        o = torch.exp(-torch.cdist(m_x, m_c, p=1)).sum(dim=2).t()  # (Q, B)
        if self.minibatch.bias is not None:
            o = o + self.minibatch.bias
        return torch.sigmoid(self.out(torch.cat([h_x, o], dim=1)).squeeze(1))

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return x
