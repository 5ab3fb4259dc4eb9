"""MLP generator and discriminator for the mode-collapse benchmarks (2-D mixtures, also 1-D).

In the spirit of PacGAN's synthetic experiments (Gaussian noise, fully connected ReLU layers in G, a
discriminator of moderate width, batch 100, Adam) but smaller, so that a 10-seed ablation runs on two CPU
cores. Techniques switch layers on by configuration (never by editing this file):

- minibatch discrimination (Section 3.2): a :class:`MinibatchDiscrimination` layer between D's last
  hidden layer and its output layer;
- virtual batch norm (Section 3.5): a :class:`VirtualBN` after every hidden linear layer of G, before
  the ReLU; the trainer keeps the fixed reference noise batch and calls
  :func:`improved_gan.train.gan_step.generate` with it.

D returns :class:`DiscriminatorOutput`: the logit and ``features``, the input of its output layer (the
last hidden layer, concatenated with the minibatch features when that layer is on), which is what
feature matching compares.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination
from improved_gan.techniques.selection import TechniqueSet
from improved_gan.techniques.virtual_batch_norm import VirtualBN
from improved_gan.train.gan_step import DiscriminatorOutput


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    noise_dim: int = 2
    data_dim: int = 2
    g_hidden: int = 256
    g_layers: int = 4
    d_hidden: int = 128
    d_layers: int = 2
    mbd_kernels: int = 5
    mbd_kernel_dim: int = 3


class Generator(nn.Module):
    """z (N, noise_dim) → x (N, data_dim): ``layers`` × [Linear → (VirtualBN) → ReLU], then Linear."""

    def __init__(self, noise_dim: int, data_dim: int, hidden: int, layers: int, vbn: bool = False):
        super().__init__()
        blocks: list[nn.Module] = []
        width = noise_dim
        for _ in range(layers):
            blocks.append(nn.Linear(width, hidden))
            if vbn:
                blocks.append(VirtualBN(hidden))
            blocks.append(nn.ReLU())
            width = hidden
        blocks.append(nn.Linear(width, data_dim))
        self.net = nn.Sequential(*blocks)
        self.noise_dim = noise_dim

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    """x (N, data_dim) → :class:`DiscriminatorOutput`: ``layers`` × [Linear → LeakyReLU(0.2)], then
    (minibatch discrimination), then Linear → logit."""

    def __init__(self, data_dim: int, hidden: int, layers: int, mbd: MinibatchDiscrimination | None = None):
        super().__init__()
        blocks: list[nn.Module] = []
        width = data_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.mbd = mbd
        self.out = nn.Linear(mbd.out_features if mbd is not None else width, 1)

    def forward(self, x) -> DiscriminatorOutput:
        h = self.body(x)
        if self.mbd is not None:
            h = self.mbd(h)
        return DiscriminatorOutput(self.out(h).squeeze(1), h)


def build_models(techniques: TechniqueSet, config: MLPConfig) -> tuple[Generator, Discriminator]:
    """(G, D) with the layers the chosen techniques need."""
    for name in ("noise_dim", "data_dim", "g_hidden", "g_layers", "d_hidden", "d_layers", "mbd_kernels",
                 "mbd_kernel_dim"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    G = Generator(config.noise_dim, config.data_dim, config.g_hidden, config.g_layers,
                  vbn=techniques.virtual_batch_norm)
    mbd = None
    if techniques.minibatch_discrimination:
        mbd = MinibatchDiscrimination(config.d_hidden, num_kernels=config.mbd_kernels,
                                      kernel_dim=config.mbd_kernel_dim)
    D = Discriminator(config.data_dim, config.d_hidden, config.d_layers, mbd)
    return G, D
