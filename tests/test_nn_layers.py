"""Weight norm with data-dependent init, Gaussian noise, batch norm without gain, mean-only BN."""

import pytest
import torch
from torch import nn

from improved_gan.nn import (
    BatchNormNoGain,
    GaussianNoise,
    MeanOnlyBatchNorm,
    WNConv2d,
    WNConvTranspose2d,
    WNLinear,
    data_dependent_init,
)


def _gradcheck_module(module, x, fast_mode=False):
    module = module.double()
    params = dict(module.named_parameters())

    def f(x, *values):
        return torch.func.functional_call(module, dict(zip(params, values, strict=True)), (x,))

    values = [p.detach().clone().requires_grad_() for p in params.values()]
    return torch.autograd.gradcheck(f, (x.double().requires_grad_(), *values), fast_mode=fast_mode)


def _channel_stats(y):
    flat = y.transpose(0, 1).reshape(y.shape[1], -1)
    return flat.mean(1), flat.std(1, unbiased=False)


LAYERS = [
    (lambda: WNLinear(5, 3), (6, 5), (-1, 1), (1,)),
    (lambda: WNConv2d(2, 3, 3, padding=1), (2, 2, 4, 4), (-1, 1, 1, 1), (1, 2, 3)),
    (lambda: WNConvTranspose2d(2, 3, 4, stride=2, padding=1), (2, 2, 3, 3), (1, -1, 1, 1), (0, 2, 3)),
]


@pytest.mark.parametrize(("make", "shape", "g_shape", "dims"), LAYERS)
def test_weight_norm_formula(make, shape, g_shape, dims):
    torch.manual_seed(0)
    layer = make()
    with torch.no_grad():
        layer.weight_g.copy_(torch.rand(3) + 0.5)
    w = layer.weight
    assert torch.allclose(w.pow(2).sum(dims).sqrt(), layer.weight_g)  # ‖w_k‖ = g_k
    v = layer.weight_v
    assert torch.allclose(w, layer.weight_g.view(g_shape) * v / v.pow(2).sum(dims, keepdim=True).sqrt())


def test_wn_linear_matches_torch_weight_norm():
    torch.manual_seed(1)
    ours = WNLinear(4, 3)
    ref = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3), dim=0)
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(ours.weight_g.view(3, 1) * 1.7)
        ours.weight_g.mul_(1.7)
        ref.parametrizations.weight.original1.copy_(ours.weight_v)
        ref.bias.copy_(ours.bias)
    x = torch.randn(5, 4)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)


@pytest.mark.parametrize(("make", "shape", "g_shape", "dims"), LAYERS)
@pytest.mark.parametrize("init_scale", [1.0, 0.1])
def test_data_dependent_init(make, shape, g_shape, dims, init_scale):
    torch.manual_seed(2)
    layer = make()
    layer.init_scale = init_scale
    x = torch.randn((16,) + shape[1:]) * 3 + 2
    out = layer.data_init(x)
    mean, std = _channel_stats(out)
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5)
    assert torch.allclose(std, torch.full((3,), init_scale), rtol=1e-4)
    assert torch.allclose(out, layer(x), atol=1e-5) and bool(layer.initialized)


@pytest.mark.parametrize(("layer", "shape"), [
    (lambda: WNLinear(4, 3), (3, 4)),
    (lambda: WNConv2d(2, 2, 2, padding=1), (2, 2, 3, 3)),
    (lambda: WNConvTranspose2d(2, 2, 2, stride=2), (2, 2, 2, 2)),
])
def test_gradcheck_weight_norm(layer, shape):
    torch.manual_seed(3)
    assert _gradcheck_module(layer(), torch.randn(shape))


def test_model_init_in_one_pass_and_frozen_scale():
    torch.manual_seed(4)
    model = nn.Sequential(WNLinear(6, 8, train_scale=False), nn.ReLU(), WNLinear(8, 4, init_scale=0.1))
    x = torch.randn(64, 6) * 4
    out = data_dependent_init(model, x)
    mean, std = _channel_stats(out)
    assert torch.allclose(mean, torch.zeros(4), atol=1e-5) and torch.allclose(std, torch.full((4,), 0.1))
    hidden_mean, hidden_std = _channel_stats(model[0](x))
    assert torch.allclose(hidden_std, torch.ones(8), rtol=1e-4)
    assert not model[0].init_mode and not model[2].init_mode
    names = [n for n, _ in model.named_parameters()]
    assert "0.weight_g" not in names and "2.weight_g" in names  # frozen scale is a buffer...
    model.requires_grad_(True)
    assert "0.weight_g" not in [n for n, _ in model.named_parameters()]  # ...and stays frozen
    assert "0.weight_g" in model.state_dict()
    model[2].freeze_scale()
    assert not model[2].train_scale and "2.weight_g" in model.state_dict()
    assert torch.allclose(model(x), out, atol=1e-5)


def test_gaussian_noise():
    torch.manual_seed(5)
    noise = GaussianNoise(0.5)
    x = torch.zeros(200, 200)
    y = noise(x)
    assert y.std().item() == pytest.approx(0.5, rel=0.02) and abs(y.mean().item()) < 0.01
    noise.eval()
    assert noise(x) is x
    assert GaussianNoise(0.0)(x) is x
    with pytest.raises(ValueError):
        GaussianNoise(-1.0)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 2)])
def test_batch_norm_no_gain(shape):
    torch.manual_seed(6)
    bn = BatchNormNoGain(3)
    assert [n for n, _ in bn.named_parameters()] == ["bias"]
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(shape) * 2 + 1
    dims = (0,) + tuple(range(2, len(shape)))
    view = (1, -1) + (1,) * (len(shape) - 2)
    mean, var = x.mean(dims), x.var(dims, unbiased=False)
    expected = (x - mean.view(view)) / (var.view(view) + 1e-6).sqrt() + bn.bias.view(view)
    assert torch.allclose(bn(x), expected, atol=1e-5)
    bn.eval()  # running statistics after one step with momentum 0.1
    rm, rv = 0.1 * mean, 0.9 + 0.1 * x.var(dims, unbiased=True)
    assert torch.allclose(bn(x), (x - rm.view(view)) / (rv.view(view) + 1e-6).sqrt() + bn.bias.view(view),
                          atol=1e-5)
    bn.train()
    assert _gradcheck_module(bn, torch.randn(shape))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 2)])
def test_mean_only_batch_norm(shape):
    torch.manual_seed(7)
    bn = MeanOnlyBatchNorm(3)
    x = torch.randn(shape) + 3
    dims = (0,) + tuple(range(2, len(shape)))
    view = (1, -1) + (1,) * (len(shape) - 2)
    assert torch.allclose(bn(x), x - x.mean(dims).view(view))
    assert torch.allclose(bn.running_mean, 0.1 * x.mean(dims))
    bn.eval()
    assert torch.allclose(bn(x), x - bn.running_mean.view(view))
    bn.train()
    assert _gradcheck_module(bn, torch.randn(shape))
    with pytest.raises(ValueError):
        bn(torch.randn(2, 4))


def test_batch_norm_no_gain_matches_torch_with_unit_gain():
    x = torch.randn(6, 3, 2, 2)
    ref = nn.BatchNorm2d(3, eps=1e-6)
    assert torch.allclose(BatchNormNoGain(3)(x), ref(x), atol=1e-6)
