"""DCGAN-style convolutional G and D for 28×28×1 images (MNIST, Fashion-MNIST), sized for CPUs.

Generator (Radford et al. 2016 shapes, scaled down):
    z (N, z_dim) → Linear → (4w, 7, 7) → norm → ReLU → ConvT 4×4/2 → (2w, 14, 14) → norm → ReLU
    → ConvT 4×4/2 → (1, 28, 28) → sigmoid (images in [0, 1])
with ``norm`` = batch norm, virtual batch norm (Section 3.5 of Salimans et al. 2016; the trainer
forwards a fixed reference batch first, see :func:`improved_gan.train.gan_step.generate`) or none.

Discriminator:
    x → [Gaussian noise] → Conv 4×4/2 (w) → LReLU(0.2) → Dropout → Conv 4×4/2 (2w) → LReLU → Dropout
    → Linear(feature_dim) → LReLU  = ``features`` (what feature matching compares, Section 3.1)
    → [minibatch discrimination, Section 3.2] → Linear → 1 logit, or K class logits
The K-logit form is the "labels" variant: a K+1 discriminator whose fake logit is fixed at 0, so
D(x) = sigmoid(logsumexp(l)) (Section 5); ``logits`` is that log-sum-exp and ``class_logits`` the K
logits. D has no batch norm, so only minibatch discrimination makes its output depend on the batch,
and the trainer calls D on real and on generated batches separately.

A technique is chosen by the builder arguments (from the run's configuration), never by editing this
file.
"""

from __future__ import annotations

import torch
from torch import nn

from improved_gan.techniques.virtual_batch_norm import VirtualBN
from improved_gan.train.gan_step import DiscriminatorOutput

NORMS = ("batch", "virtual", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "virtual":
        return VirtualBN(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; choose one of: {', '.join(NORMS)}")


class Generator28(nn.Module):
    def __init__(self, z_dim: int = 64, width: int = 32, norm: str = "batch", output: str = "sigmoid"):
        super().__init__()
        if output not in ("sigmoid", "tanh"):
            raise ValueError("output must be 'sigmoid' ([0, 1] images) or 'tanh' ([-1, 1])")
        self.z_dim, self.width, self.output = z_dim, width, output
        self.fc = nn.Linear(z_dim, 4 * width * 49, bias=norm == "none")
        self.net = nn.Sequential(
            _norm(norm, 4 * width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=norm == "none"),
            _norm(norm, 2 * width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, 1, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], 4 * self.width, 7, 7)
        x = self.net(h)
        return torch.sigmoid(x) if self.output == "sigmoid" else torch.tanh(x)


class Discriminator28(nn.Module):
    def __init__(self, width: int = 32, feature_dim: int = 256, num_classes: int = 0, dropout: float = 0.3,
                 input_noise: float = 0.0, minibatch_kernels: int = 0, minibatch_kernel_dim: int = 5):
        super().__init__()
        self.num_classes, self.input_noise = num_classes, input_noise
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout),
            nn.Flatten(), nn.Linear(2 * width * 49, feature_dim), nn.LeakyReLU(0.2, inplace=True),
        )
        self.mbd = None
        head_in = feature_dim
        if minibatch_kernels:
            from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination

            self.mbd = MinibatchDiscrimination(feature_dim, num_kernels=minibatch_kernels,
                                               kernel_dim=minibatch_kernel_dim)
            head_in = self.mbd.out_features
        self.head = nn.Linear(head_in, num_classes or 1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        if self.training and self.input_noise > 0:
            x = x + self.input_noise * torch.randn_like(x)
        features = self.body(x)
        h = self.mbd(features) if self.mbd is not None else features
        out = self.head(h)
        if self.num_classes:
            return DiscriminatorOutput(torch.logsumexp(out, dim=1), features, out)
        return DiscriminatorOutput(out.squeeze(1), features)


def build_models(techniques, *, labels: bool = False, num_classes: int = 10, z_dim: int = 64,
                 g_width: int = 32, d_width: int = 32, feature_dim: int = 256, dropout: float = 0.3,
                 input_noise: float = 0.0,
                 minibatch_kernels: int = 50) -> tuple[Generator28, Discriminator28]:
    """G and D for a :class:`~improved_gan.techniques.selection.TechniqueSet`: virtual batch norm in G
    when ``virtual_batch_norm`` is on (batch norm otherwise), minibatch discrimination in D when
    ``minibatch_discrimination`` is on, K class logits when ``labels``."""
    G = Generator28(z_dim=z_dim, width=g_width, norm="virtual" if techniques.virtual_batch_norm else "batch")
    D = Discriminator28(width=d_width, feature_dim=feature_dim, num_classes=num_classes if labels else 0,
                        dropout=dropout, input_noise=input_noise,
                        minibatch_kernels=minibatch_kernels if techniques.minibatch_discrimination else 0)
    return G, D
