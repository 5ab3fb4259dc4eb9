"""Minibatch discrimination (Section 3.2)."""

import math

import pytest
import torch

from improved_gan.nn import data_dependent_init
from improved_gan.techniques.minibatch_discrimination import (
    MinibatchDiscrimination,
    minibatch_features,
    minibatch_features_naive,
)


def test_hand_computed():
    layer = MinibatchDiscrimination(1, num_kernels=1, kernel_dim=1)
    with torch.no_grad():
        layer.T.fill_(1.0)
    x = torch.tensor([[0.0], [1.0], [3.0]])
    out = layer(x)
    e = math.exp
    expected = [e(-1) + e(-3), e(-1) + e(-2), e(-3) + e(-2)]
    assert out.shape == (3, 2) and layer.out_features == 2
    assert torch.equal(out[:, 0], x[:, 0])
    assert torch.allclose(out[:, 1], torch.tensor(expected))


def test_brute_force_loops():
    torch.manual_seed(0)
    M = torch.randn(5, 3, 2, dtype=torch.float64)
    o = minibatch_features(M, chunk_size=2)
    for i in range(5):
        for b in range(3):
            ref = sum(math.exp(-float((M[i, b] - M[j, b]).abs().sum())) for j in range(5) if j != i)
            assert o[i, b].item() == pytest.approx(ref)


@pytest.mark.parametrize("chunk", [None, 1, 3, 7, 100])
def test_chunked_matches_naive_values_and_gradients(chunk):
    torch.manual_seed(1)
    M = torch.randn(7, 4, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(7, 4, dtype=torch.float64)
    fast = minibatch_features(M, chunk)
    (g_fast,) = torch.autograd.grad(fast, M, g)
    slow = minibatch_features_naive(M)
    (g_slow,) = torch.autograd.grad(slow, M, g)
    assert torch.allclose(fast, slow) and torch.allclose(g_fast, g_slow)


def test_gradcheck_function():
    torch.manual_seed(2)
    M = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: minibatch_features(m, 2), (M,))


@pytest.mark.parametrize("weight_norm", [False, True])
def test_gradcheck_layer(weight_norm):
    torch.manual_seed(3)
    layer = MinibatchDiscrimination(4, num_kernels=3, kernel_dim=2, weight_norm=weight_norm, chunk_size=2)
    layer = layer.double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    params = dict(layer.named_parameters())

    def f(x, *values):
        return torch.func.functional_call(layer, dict(zip(params, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *[p.detach().clone().requires_grad_() for p in params.values()]))


@pytest.mark.parametrize("weight_norm", [False, True])
def test_permutation_equivariant(weight_norm):
    torch.manual_seed(4)
    layer = MinibatchDiscrimination(6, num_kernels=5, kernel_dim=3, weight_norm=weight_norm)
    x = torch.randn(9, 6)
    perm = torch.randperm(9)
    assert torch.allclose(layer(x)[perm], layer(x[perm]), atol=1e-6)


def test_self_excluded_and_identical_examples():
    layer = MinibatchDiscrimination(3, num_kernels=4, kernel_dim=2)
    assert torch.allclose(layer(torch.randn(1, 3))[:, 3:], torch.zeros(1, 4))
    same = torch.ones(5, 3)
    assert torch.allclose(layer(same)[:, 3:], torch.full((5, 4), 4.0))  # N - 1 neighbours at distance 0


def test_flattens_input_and_checks_size():
    layer = MinibatchDiscrimination(12, num_kernels=2)
    assert layer(torch.randn(4, 3, 2, 2)).shape == (4, 14)
    with pytest.raises(ValueError):
        layer(torch.randn(4, 5))
    with pytest.raises(ValueError):
        minibatch_features(torch.randn(4, 5))


def test_weight_norm_parametrisation_and_data_init():
    torch.manual_seed(5)
    layer = MinibatchDiscrimination(8, num_kernels=6, kernel_dim=4, weight_norm=True)
    assert torch.equal(layer.bias, torch.full((6,), -1.0))
    norms = layer.tensor.pow(2).sum(0).sqrt()
    assert torch.allclose(norms, torch.ones(6, 4))  # exp(log_scale = 0) = 1
    x = torch.randn(32, 8) * 5
    out = data_dependent_init(torch.nn.Sequential(layer), x)
    assert torch.allclose(out, layer(x), atol=1e-5)
    assert torch.allclose(out[:, 8:].mean(0), torch.zeros(6), atol=1e-5)  # bias = -mean o
    M = layer.project(x).transpose(0, 1)
    dist = torch.cdist(M, M, p=1) + torch.eye(32) * 1e9
    assert torch.allclose(0.5 * dist.min(2).values.mean(1), torch.ones(6), rtol=1e-4)
    with pytest.raises(RuntimeError):
        MinibatchDiscrimination(3).data_init(torch.randn(4, 3))


def test_saved_memory_is_linear_in_batch():
    """The chunked function keeps only O(N·B·C) for backward; the naive one keeps O(N²·B·C)."""
    sizes = {"fast": [], "naive": []}
    M = torch.randn(64, 10, 5, requires_grad=True)
    for name, fn in (("fast", minibatch_features), ("naive", minibatch_features_naive)):
        with torch.autograd.graph.saved_tensors_hooks(lambda t, n=name: sizes[n].append(t.numel()) or t,
                                                      lambda t: t):
            fn(M).sum().backward()
    assert max(sizes["fast"]) <= M.numel()
    assert max(sizes["naive"]) >= 64 * 64 * 10 * 5
