"""Virtual batch norm (Section 3.5): each x normalised with the statistics of reference ∪ {x}."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.techniques.virtual_batch_norm import (
    VirtualBatchNorm,
    VirtualBN,
    has_virtual_batch_norm,
    make_reference_noise,
    reference_pass,
)
from improved_gan.train.gan_step import generate


def _layer(features, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    layer = VirtualBN(features).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(features) + 0.5)
        layer.bias.copy_(torch.randn(features))
    return layer


def _brute_force(layer, ref, x):
    """Batch norm over reference ∪ {x_i}, read off at x_i, for every i."""
    outs = []
    for i in range(x.shape[0]):
        both = torch.cat([ref, x[i:i + 1]])
        outs.append(F.batch_norm(both, None, None, layer.weight, layer.bias, True, 0.0, layer.eps)[-1])
    return torch.stack(outs)


@pytest.mark.parametrize("shape", [(6, 4), (5, 3, 2, 3)])
def test_equals_batch_norm_over_reference_plus_x(shape):
    layer = _layer(shape[1])
    ref = torch.randn(shape, dtype=torch.float64) * 2 + 1
    x = torch.randn((4,) + shape[1:], dtype=torch.float64) * 3 - 1
    ref_out = reference_pass(layer, ref)
    # the reference batch itself is normalised with its own statistics
    own = F.batch_norm(ref, None, None, layer.weight, layer.bias, True, 0.0, layer.eps)
    assert torch.allclose(ref_out, own)
    assert torch.allclose(layer(x), _brute_force(layer, ref, x))


def test_hand_computed():
    layer = VirtualBN(1, eps=0.0)
    reference_pass(layer, torch.tensor([[0.0], [2.0], [4.0]]))  # with x = 6: mean 3, var 5
    assert layer(torch.tensor([[6.0]])).item() == pytest.approx(3 / 5 ** 0.5)


@pytest.mark.parametrize("shape", [(6, 4), (5, 3, 2, 3)])
def test_output_independent_of_rest_of_batch(shape):
    layer = _layer(shape[1])
    reference_pass(layer, torch.randn(shape, dtype=torch.float64))
    x = torch.randn((5,) + shape[1:], dtype=torch.float64)
    alone = layer(x[:1])
    other = torch.cat([x[:1], 100 * torch.randn((7,) + shape[1:], dtype=torch.float64)])
    assert torch.allclose(layer(x)[:1], alone)
    assert torch.allclose(layer(other)[:1], alone)
    layer.eval()  # same in eval mode
    assert torch.allclose(layer(x[:1]), alone)


def test_gradients_flow_through_reference_statistics():
    layer = _layer(3)
    ref = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64)
    reference_pass(layer, ref)
    (layer(x) * w).sum().backward()
    grads = [t.grad.clone() for t in (ref, x, layer.weight, layer.bias)]
    for t in (ref, x, layer.weight, layer.bias):
        t.grad = None
    (_brute_force(layer, ref, x) * w).sum().backward()
    assert grads[0].abs().sum() > 0
    for got, want in zip(grads, (ref.grad, x.grad, layer.weight.grad, layer.bias.grad), strict=True):
        assert torch.allclose(got, want)


@pytest.mark.parametrize("shape", [(4, 2), (3, 2, 2, 2)])
def test_gradcheck(shape):
    layer = _layer(shape[1])
    ref = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    x = torch.randn((2,) + shape[1:], dtype=torch.float64, requires_grad=True)

    def f(ref, x, weight, bias):  # reference pass then a forward, as functions of all four inputs
        params = {"weight": weight, "bias": bias}
        layer.collecting = True  # what reference_pass does, here around a functional call
        r = torch.func.functional_call(layer, params, (ref,))
        layer.collecting = False
        return r, torch.func.functional_call(layer, params, (x,))

    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (ref, x, w, b))


def test_errors_and_helpers():
    layer = VirtualBN(3)
    with pytest.raises(RuntimeError, match="reference_pass"):
        layer(torch.randn(2, 3))
    with pytest.raises(ValueError):
        reference_pass(layer, torch.randn(2, 4))
    assert "BatchNorm" not in type(layer).__name__ and VirtualBatchNorm is VirtualBN
    G = nn.Sequential(nn.Linear(2, 3), VirtualBN(3), nn.ReLU())
    assert has_virtual_batch_norm(G) and not has_virtual_batch_norm(nn.Sequential(nn.BatchNorm1d(3)))
    ref_noise = make_reference_noise(8, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ref_noise, make_reference_noise(8, 2, generator=torch.Generator().manual_seed(3)))
    noise = torch.randn(4, 2)
    out = generate(G, noise, ref_noise)  # gan_step's helper runs the reference pass first
    assert torch.allclose(out[:1], generate(G, noise[:1], ref_noise))
    assert not G[1].collecting


def test_float32_large_offset_matches_float64():
    """Activations far from zero with a small spread: no cancellation in the variance."""
    torch.manual_seed(7)
    ref64 = 1000.0 + 0.01 * torch.randn(16, 3, dtype=torch.float64)
    x64 = 1000.0 + 0.01 * torch.randn(4, 3, dtype=torch.float64)
    layer64, layer32 = VirtualBN(3).double(), VirtualBN(3)
    reference_pass(layer64, ref64)
    reference_pass(layer32, ref64.float())
    assert torch.allclose(layer32(x64.float()).double(), layer64(x64), atol=2e-2)
    assert torch.allclose(layer64(x64), _brute_force(layer64, ref64, x64))
