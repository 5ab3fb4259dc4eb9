"""Virtual batch normalization, Section 3.5 of Salimans et al. 2016 (arXiv:1606.03498).

Each example x is normalised with the statistics of a *reference batch*, fixed once at the start of
training, together with x itself:

    μ_x  = 1/(N_ref+1) · mean(x)   + N_ref/(N_ref+1) · μ_ref
    ν_x  = 1/(N_ref+1) · mean(x²)  + N_ref/(N_ref+1) · ν_ref         (mean of squares)
    σ²_x = ν_x − μ_x²
    y    = γ · (x − μ_x) / sqrt(σ²_x + ε) + β

where μ_ref, ν_ref are the per-feature (per-channel, over N_ref·H·W values, for images) mean and mean
of squares of the layer's input on the reference batch and mean(x), mean(x²) are taken over x's own
spatial positions (a single value per feature for (N, F) inputs). This is exactly batch norm over the
set reference ∪ {x}, so the output for x does not depend on the other examples in its batch. It is the
formulation of TF-GAN's ``virtual_batchnorm`` (coefficients 1/(N_ref+1) and N_ref/(N_ref+1) on mean and
mean of squares) and of the authors' ImageNet code, which mixes each example into the reference
statistics with weight 1/(N_ref+1). The reference batch itself is normalised with its own statistics.

Usage::

    out = reference_pass(G, reference_noise)   # every VirtualBN caches μ_ref, ν_ref (not detached)
    fake = G(noise)                            # uses the cached statistics

The cached statistics are *not* detached: when the reference pass and the following forward are in the
same autograd graph, gradients flow through μ_ref and ν_ref into the parameters below, as in the paper
(the reference pass is therefore repeated every step, costing one extra forward on the reference batch).

The class is called ``VirtualBN`` and not ``VirtualBatchNorm``: some weight-initialisation helpers
(e.g. the DCGAN recipe ``if 'BatchNorm' in classname: ...``) re-initialise every layer whose class name
contains "BatchNorm" and would overwrite γ with random values. ``VirtualBatchNorm`` is an alias.
"""

from __future__ import annotations

import torch
from torch import nn


class VirtualBN(nn.Module):
    """Virtual batch norm (Section 3.5) for (N, F) or (N, C, H, W) inputs with learned γ (scale) and β.

    Modes: in *collect* mode (set by :func:`reference_pass`) the input is the reference batch; it is
    normalised with its own statistics, which are cached. In the normal mode each example is
    normalised with (1/(N_ref+1))·own + (N_ref/(N_ref+1))·reference statistics. Behaves the same in
    ``train()`` and ``eval()``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))  # γ
        self.bias = nn.Parameter(torch.zeros(num_features))  # β
        self.collecting = False
        self.ref_mean: torch.Tensor | None = None
        self.ref_meansq: torch.Tensor | None = None
        self.ref_var: torch.Tensor | None = None  # ν_ref − μ_ref², kept for a stable forward
        self.ref_size: int = 0

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"VirtualBN({self.num_features}) expects (N, {self.num_features}) or "
                             f"(N, {self.num_features}, H, W) input, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        spatial = tuple(range(2, x.dim()))  # () for (N, F); (2, 3) for images
        shape = (1, -1) + (1,) * len(spatial)
        gamma, beta = self.weight.view(shape), self.bias.view(shape)
        if self.collecting:
            var, mean = torch.var_mean(x, dim=(0,) + spatial, correction=0)
            self.ref_mean, self.ref_var, self.ref_size = mean, var, x.shape[0]
            self.ref_meansq = var + mean.pow(2)
            scale = gamma * torch.rsqrt(var.view(shape) + self.eps)
            return torch.addcmul(beta - mean.view(shape) * scale, x, scale)
        if self.ref_mean is None:
            raise RuntimeError("VirtualBN used before any reference batch: call "
                               "improved_gan.techniques.virtual_batch_norm.reference_pass(model, "
                               "reference_input) first (Section 3.5)")
        # With a = 1/(N_ref+1), d = mean(x) − μ_ref and v_x the variance of x over its own positions,
        #   μ_x = μ_ref + a·d,   σ²_x = ν_x − μ_x² = a·v_x + (1−a)·(a·d² + σ²_ref)
        # (the same numbers as mixing mean and mean of squares, without the cancellation in ν − μ²).
        a = 1.0 / (self.ref_size + 1.0)
        ref_mean, ref_var = self.ref_mean.view(shape), self.ref_var.view(shape)
        if spatial:  # statistics are per (example, channel): small tensors, one pass over x
            own_var, own_mean = torch.var_mean(x, dim=spatial, keepdim=True, correction=0)
            d = own_mean - ref_mean
            var = a * own_var + (1.0 - a) * (a * d.pow(2) + ref_var)
            scale = gamma * torch.rsqrt(var + self.eps)
            return torch.addcmul(beta - (ref_mean + a * d) * scale, x, scale)
        # (N, F): every example has its own statistics; x − μ_x = (1−a)·d with d = x − μ_ref
        d = x - ref_mean
        var = torch.addcmul((1.0 - a) * ref_var + self.eps, d, d, value=a * (1.0 - a))
        return torch.addcmul(beta, d * torch.rsqrt(var), gamma * (1.0 - a))


VirtualBatchNorm = VirtualBN


def virtual_bn_layers(module: nn.Module) -> list[VirtualBN]:
    return [m for m in module.modules() if isinstance(m, VirtualBN)]


def has_virtual_batch_norm(module: nn.Module) -> bool:
    """True when ``module`` contains at least one :class:`VirtualBN` layer."""
    return any(isinstance(m, VirtualBN) for m in module.modules())


def reference_pass(model: nn.Module, reference_input: torch.Tensor) -> torch.Tensor:
    """Run ``model(reference_input)`` with every VirtualBN layer in collect mode (Section 3.5).

    Each layer normalises the reference batch with its own statistics and caches them (not detached) for
    the following forwards. Returns the model's output on the reference batch.
    """
    layers = virtual_bn_layers(model)
    for layer in layers:
        layer.collecting = True
    try:
        return model(reference_input)
    finally:
        for layer in layers:
            layer.collecting = False


def make_reference_noise(num: int, dim: int, generator: torch.Generator | None = None,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """The fixed reference noise batch z_ref ~ N(0, I), shape (num, dim), chosen once at the start of
    training; store it in the checkpoint so a resumed run uses the same reference batch."""
    if generator is not None:
        z = torch.randn(num, dim, generator=generator, device=generator.device)
        return z.to(device) if device is not None else z
    return torch.randn(num, dim, device=device)
