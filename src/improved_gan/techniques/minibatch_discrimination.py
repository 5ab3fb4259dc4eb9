"""Minibatch discrimination, Section 3.2 of Salimans et al. 2016 (arXiv:1606.03498).

For features f(x_i) ∈ R^A of the N examples of a batch and a tensor T ∈ R^{A×B×C}:

    M_i = f(x_i) · T ∈ R^{B×C}
    c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖_{L1})
    o(x_i)_b = Σ_{j≠i} c_b(x_i, x_j)                  (self term exp(0) = 1 excluded)
    output   = concat(f(x_i), o(x_i)) ∈ R^{A+B}

The layer sees a whole batch, so **the trainer must call D on the real batch and on the generated batch
separately**, never on a mixed batch (the paper computes the side information within each kind);
:func:`improved_gan.train.gan_step.gan_step` does so.

``weight_norm=True`` follows the authors' released ``MinibatchLayer`` (openai/improved-gan,
``mnist_svhn_cifar10/nn.py``): T = θ · exp(s_{b,c}) / ‖θ_{·,b,c}‖₂ (norm over the A inputs, learned log
scale s initialised to 0, θ ~ N(0, 0.05²)), and a learned per-kernel bias b initialised to −1 is added:
o_b + bias_b. Their data-dependent init (``data_init`` / :func:`improved_gan.nn.data_dependent_init`)
divides the scale so that half the mean nearest-neighbour L1 distance is 1 per kernel, then sets the
bias to minus the mean of o so the new features start centred. Without weight norm the layer is the
paper's formula with no bias; T is initialised N(0, 1/A).

**Memory.** The direct form builds the N×N×B×C tensor of differences (2 GiB in float32 at N=1024,
B=100, C=5, plus as much again kept for backward). :func:`minibatch_features` instead runs a custom
autograd function that processes rows i in chunks and keeps only M for the backward pass, recomputing
each chunk's differences there:

    ∂L/∂M_{k,b,c} = −Σ_j (G_{k,b} + G_{j,b}) · c_b(x_k, x_j) · sign(M_{k,b,c} − M_{j,b,c}),  G = ∂L/∂o

(using the symmetry of c and the antisymmetry of sign). Peak memory is O(chunk·N·B·C) instead of
O(N²·B·C). The function is differentiable once (no double backward); use
:func:`minibatch_features_naive` where higher-order gradients are needed. ``bench/techniques.py``
measures both.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_CHUNK_ELEMENTS = 1 << 20  # elements of one (C, B, chunk, N) block for the automatic chunk size (4 MiB f32)


def minibatch_features_naive(M: torch.Tensor) -> torch.Tensor:
    """Reference o(x_i)_b = Σ_{j≠i} exp(−‖M_{i,b} − M_{j,b}‖₁) through the full (N, N, B, C) tensor.

    ``M`` has shape (N, B, C); returns (N, B). Fully differentiable (any order)."""
    dist = (M.unsqueeze(1) - M.unsqueeze(0)).abs().sum(dim=3)  # (N, N, B)
    return torch.exp(-dist).sum(dim=1) - 1.0  # remove the j = i term exp(0) = 1


def _auto_chunk(n: int, b: int, c: int) -> int:
    return max(1, min(n, _CHUNK_ELEMENTS // max(1, n * b * c)))


class _MinibatchFeatures(torch.autograd.Function):
    """Chunked o(x_i)_b with a recomputing backward. Works on M permuted to (C, B, N) so that each
    block of differences (C, B, k, N) has the batch index innermost: the sum over C adds contiguous
    slabs and the sum over j is a contiguous reduction."""

    @staticmethod
    def forward(ctx, M: torch.Tensor, chunk: int) -> torch.Tensor:
        n = M.shape[0]
        Mt = M.permute(2, 1, 0).contiguous()  # (C, B, N)
        out = M.new_empty(M.shape[1], n)  # (B, N)
        for start in range(0, n, chunk):
            diff = Mt[:, :, start:start + chunk, None] - Mt[:, :, None, :]  # (C, B, k, N)
            dist = diff.abs_().sum(dim=0)  # (B, k, N)
            out[:, start:start + chunk] = dist.neg_().exp_().sum(dim=2)
        ctx.save_for_backward(Mt)
        ctx.chunk = chunk
        return out.sub_(1.0).t()  # (N, B); the -1 removes the j = i term

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        (Mt,) = ctx.saved_tensors
        chunk = ctx.chunk
        n = Mt.shape[2]
        g = grad_out.t().contiguous()  # (B, N)
        grad_t = torch.empty_like(Mt)  # (C, B, N)
        for start in range(0, n, chunk):
            diff = Mt[:, :, start:start + chunk, None] - Mt[:, :, None, :]  # (C, B, k, N)
            c = diff.abs().sum(dim=0).neg_().exp_()  # c_b(x_k, x_j), (B, k, N)
            c.mul_(g[:, start:start + chunk, None] + g[:, None, :])  # (G_k + G_j) c_kj
            grad_t[:, :, start:start + chunk] = diff.sign_().mul_(c).sum(dim=3).neg_()
        return grad_t.permute(2, 1, 0), None


def minibatch_features(M: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """o(x_i)_b = Σ_{j≠i} exp(−‖M_{i,b} − M_{j,b}‖₁) for ``M`` of shape (N, B, C), computed in row chunks
    (``chunk_size`` rows at a time; by default blocks of about 1M elements, 4 MiB in float32, small
    enough to stay in cache: faster than larger blocks in ``bench/techniques.py``). Returns (N, B)."""
    if M.dim() != 3:
        raise ValueError(f"M must have shape (N, B, C), got {tuple(M.shape)}")
    n, b, c = M.shape
    chunk = chunk_size if chunk_size is not None else _auto_chunk(n, b, c)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _MinibatchFeatures.apply(M, chunk)


class MinibatchDiscrimination(nn.Module):
    """Section 3.2 layer: (N, A) features → (N, A + B) = concat(f(x_i), o(x_i)).

    ``num_kernels`` is B, ``kernel_dim`` is C. Inputs with more than two dimensions are flattened.
    """

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5,
                 weight_norm: bool = False, chunk_size: int | None = None):
        super().__init__()
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.out_features = in_features + num_kernels
        self.weight_norm = weight_norm
        self.chunk_size = chunk_size
        self.init_mode = False
        shape = (in_features, num_kernels, kernel_dim)
        if weight_norm:
            self.theta = nn.Parameter(torch.randn(shape) * 0.05)
            self.log_scale = nn.Parameter(torch.zeros(num_kernels, kernel_dim))
            self.bias = nn.Parameter(torch.full((num_kernels,), -1.0))
        else:
            self.T = nn.Parameter(torch.randn(shape) / math.sqrt(in_features))
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_kernels={self.num_kernels}, "
                f"kernel_dim={self.kernel_dim}, weight_norm={self.weight_norm}")

    @property
    def tensor(self) -> torch.Tensor:
        """T ∈ R^{A×B×C} (weight-normalised when ``weight_norm``)."""
        if not self.weight_norm:
            return self.T
        norm = self.theta.pow(2).sum(dim=0, keepdim=True).sqrt()
        return self.theta * (self.log_scale.exp().unsqueeze(0) / norm)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """M = f(x)·T, shape (N, B, C)."""
        x = x.flatten(1)
        return (x @ self.tensor.flatten(1)).view(x.shape[0], self.num_kernels, self.kernel_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.init_mode:
            return self.data_init(x)
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"MinibatchDiscrimination expects {self.in_features} features, got {x.shape[1]}")
        o = minibatch_features(self.project(x), self.chunk_size)
        if self.bias is not None:
            o = o + self.bias
        return torch.cat([x, o], dim=1)

    @torch.no_grad()
    def data_init(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' data-dependent init (weight_norm=True only): rescale so that half the mean
        nearest-neighbour L1 distance of each kernel is 1, then bias = −mean_i o(x_i). Returns the
        output on ``x`` after the init."""
        if not self.weight_norm:
            raise RuntimeError("data_init needs MinibatchDiscrimination(weight_norm=True)")
        x = x.flatten(1)
        if x.shape[0] < 2:
            raise ValueError("data_init needs a batch of at least 2 examples")
        M = self.project(x).transpose(0, 1)  # (B, N, C)
        dist = torch.cdist(M, M, p=1)  # (B, N, N)
        dist.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        half_mean_min = 0.5 * dist.min(dim=2).values.mean(dim=1).clamp_min(1e-12)  # (B,)
        self.log_scale.sub_(half_mean_min.log().unsqueeze(1))
        o = minibatch_features(self.project(x), self.chunk_size)
        self.bias.copy_(-o.mean(dim=0))
        return torch.cat([x, o + self.bias], dim=1)
