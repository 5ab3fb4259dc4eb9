import torch

from improved_gan.models.mnist_mlp import MLPDiscriminator, MLPGenerator, init_discriminator
from improved_gan.nn.weight_norm import WNLinear


def test_discriminator_shapes_and_frozen_hidden_scales():
    torch.manual_seed(0)
    D = MLPDiscriminator()
    out = D(torch.rand(7, 784))
    assert out.logits.shape == (7, 10) and out.features.shape == (7, 250)
    trainable = {n for n, p in D.named_parameters()}
    assert "out.weight_g" in trainable
    assert not any(n.startswith("hidden.") and n.endswith("weight_g") for n in trainable)
    assert [layer.out_features for layer in D.hidden] == [1000, 500, 250, 250, 250]
    assert all(isinstance(m, WNLinear) for m in (*D.hidden, D.out))
    assert [n.sigma for n in D.noise] == [0.5] * 5 and D.input_noise.sigma == 0.3
    assert abs(float(D.hidden[0].weight_v.detach().std()) - 0.1) < 0.005  # the authors' theta ~ N(0, 0.1^2)


def test_data_dependent_init_normalises_preactivations():
    torch.manual_seed(0)
    D = MLPDiscriminator(input_noise=0.0, hidden_noise=0.0)
    x = torch.rand(500, 784)
    init_discriminator(D, x)
    with torch.no_grad():
        h = x
        for layer in D.hidden:
            pre = layer(h)
            assert pre.mean(0).abs().max() < 1e-3 and (pre.std(0, unbiased=False) - 1).abs().max() < 1e-3
            h = torch.relu(pre)
        logits = D.out(h)
        assert (logits.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_noise_only_in_train_mode_and_features_with_cached_weights():
    torch.manual_seed(0)
    D = MLPDiscriminator()
    x = torch.rand(5, 784)
    D.eval()
    assert torch.equal(D(x).logits, D(x).logits)
    assert torch.allclose(D.features(x), D.features(x, D.hidden_weights()))
    D.train()
    assert not torch.equal(D(x).logits, D(x).logits)


def test_batched_forward_equals_separate_passes_without_noise():
    torch.manual_seed(0)
    D = MLPDiscriminator().eval()
    a, b, c = torch.rand(4, 784), torch.rand(4, 784), torch.rand(4, 784)
    joint = D(torch.cat([a, b, c])).logits.split(4)
    for j, s in zip(joint, (a, b, c), strict=True):
        assert torch.allclose(j, D(s).logits, atol=1e-5)


def test_generator():
    torch.manual_seed(0)
    G = MLPGenerator()
    x = G(torch.rand(16, 100))
    assert x.shape == (16, 784) and float(x.detach().min()) >= 0 and float(x.detach().max()) <= 1
    names = dict(G.named_parameters())
    assert "out.weight_g" in names and torch.equal(names["out.weight_g"], torch.ones(784))
    assert sum(1 for m in G.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None) == 0
