"""The MLPs of the paper's semi-supervised MNIST experiment (Section 5; the authors'
``train_mnist_feature_matching.py``).

D (a K-class classifier whose extra "generated" logit is fixed at 0, see
:mod:`improved_gan.techniques.semi_supervised`): Gaussian noise σ=0.3 on the input, weight-normalised
dense layers 1000-500-250-250-250 with ReLU, each followed by Gaussian noise σ=0.5, then a
weight-normalised dense layer to K logits with a trainable scale. The hidden-layer scales are set by
data-dependent initialisation (:func:`improved_gan.nn.weight_norm.data_dependent_init`, on 500
training images, noise on as in the authors' ``init=True`` pass) and are not trained afterwards.
Directions start as N(0, 0.1²) entries, the authors' ``theta`` init (with Adam the size of v sets
how fast the direction turns, so this is not cosmetic).

G: z ~ U[0, 1)^100 → dense 500 (no bias) → batch norm without gain → softplus → dense 500 → batch norm
without gain → softplus → weight-normalised dense 784 → sigmoid. The last layer follows the authors'
``l2normalize``: rows of v normalised, a trainable scale starting at 1, bias 0, v from Glorot-uniform,
no data-dependent init.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.nn.batch_norm import BatchNormNoGain
from improved_gan.nn.noise import GaussianNoise
from improved_gan.nn.weight_norm import WNLinear, data_dependent_init

G_OUT_CHOICES = ("wn", "wn-data-init", "linear")


class SSLOutput(NamedTuple):
    logits: torch.Tensor  # (N, K) class logits; the generated class's logit is 0
    features: torch.Tensor  # (N, F) the last hidden layer (after ReLU, before its noise): feature matching


class MLPDiscriminator(nn.Module):
    def __init__(self, in_features: int = 784, widths: tuple[int, ...] = (1000, 500, 250, 250, 250),
                 num_classes: int = 10, input_noise: float = 0.3, hidden_noise: float = 0.5,
                 train_hidden_scale: bool = False, v_init_std: float = 0.1):
        super().__init__()
        self.input_noise = GaussianNoise(input_noise)
        sizes = (in_features, *widths)
        self.hidden = nn.ModuleList(WNLinear(a, b, train_scale=train_hidden_scale)
                                    for a, b in zip(sizes, sizes[1:], strict=False))
        self.noise = nn.ModuleList(GaussianNoise(hidden_noise) for _ in widths)
        self.out = WNLinear(sizes[-1], num_classes, train_scale=True)
        with torch.no_grad():
            for layer in (*self.hidden, self.out):
                layer.weight_v.normal_(0.0, v_init_std)

    def hidden_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The hidden layers' effective (weight, bias). Computing them once and passing them to
        :meth:`features` saves recomputing g·v/‖v‖ when D is applied twice with frozen parameters."""
        return [(layer.weight, layer.bias) for layer in self.hidden]

    def features(self, x: torch.Tensor, weights: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> torch.Tensor:
        """The last hidden layer's activations (what feature matching compares)."""
        h = self.input_noise(x.flatten(1))
        last = len(self.hidden) - 1
        for i, (layer, noise) in enumerate(zip(self.hidden, self.noise, strict=True)):
            h = torch.relu(layer(h) if weights is None or layer.init_mode else F.linear(h, *weights[i]))
            if i < last:
                h = noise(h)
        return h

    def forward(self, x: torch.Tensor) -> SSLOutput:
        f = self.features(x)
        return SSLOutput(self.out(self.noise[-1](f)), f)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, widths: tuple[int, ...] = (500, 500), out_features: int = 784,
                 out_layer: str = "wn"):
        super().__init__()
        if out_layer not in G_OUT_CHOICES:
            raise ValueError(f"out_layer must be one of {G_OUT_CHOICES}, got {out_layer!r}")
        self.z_dim, self.out_layer = z_dim, out_layer
        layers: list[nn.Module] = []
        sizes = (z_dim, *widths)
        for a, b in zip(sizes, sizes[1:], strict=False):
            lin = nn.Linear(a, b, bias=False)
            nn.init.xavier_uniform_(lin.weight)  # Lasagne's default GlorotUniform
            layers += [lin, BatchNormNoGain(b), nn.Softplus()]
        self.body = nn.Sequential(*layers)
        if out_layer == "linear":
            self.out = nn.Linear(sizes[-1], out_features)
            nn.init.xavier_uniform_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        else:
            self.out = WNLinear(sizes[-1], out_features, train_scale=True)
            with torch.no_grad():
                bound = math.sqrt(6.0 / (sizes[-1] + out_features))
                self.out.weight_v.uniform_(-bound, bound)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(z)))


@torch.no_grad()
def init_discriminator(D: MLPDiscriminator, x: torch.Tensor) -> None:
    """Data-dependent init of every weight-normalised layer of D on batch ``x`` (noise as in D's mode)."""
    data_dependent_init(D, x)


@torch.no_grad()
def init_generator(G: MLPGenerator, z: torch.Tensor) -> None:
    """Only for ``out_layer="wn-data-init"`` (not the authors' recipe): data-dependent init of G's
    last layer on one batch of noise."""
    if G.out_layer == "wn-data-init":
        data_dependent_init(G, z)
