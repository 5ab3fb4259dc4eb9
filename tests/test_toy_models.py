"""The toy MLPs: shapes, the feature layer, minibatch features and the decision-boundary helper."""

import pytest
import torch

from improved_gan.models.toy import ToyDiscriminator, ToyGenerator
from improved_gan.techniques.virtual_batch_norm import has_virtual_batch_norm


def test_shapes_and_features():
    G = ToyGenerator(noise_dim=3, hidden=8, layers=2)
    assert G(torch.randn(5, 3)).shape == (5, 1)
    D = ToyDiscriminator(hidden=8, layers=3, feature_layer=0)
    out = D(torch.randn(5, 1))
    assert out.logits.shape == (5,)
    assert out.features.shape == (5, 8)
    # feature_layer=0 returns the first hidden layer's tanh activations
    x = torch.randn(4, 1)
    assert torch.allclose(D(x).features, torch.tanh(D.hidden[0](x)))


def test_feature_layer_range_checked():
    with pytest.raises(ValueError, match="feature_layer"):
        ToyDiscriminator(layers=2, feature_layer=2)


def test_minibatch_features_make_output_batch_dependent():
    torch.manual_seed(0)
    D = ToyDiscriminator(hidden=8, minibatch_features=True, mbd_kernels=4, mbd_kernel_dim=2)
    x = torch.randn(6, 1)
    alone = D(x[:3]).logits
    together = D(x).logits[:3]
    assert not torch.allclose(alone, together)
    plain = ToyDiscriminator(hidden=8)
    assert torch.allclose(plain(x[:3]).logits, plain(x).logits[:3])


def test_probability_scores_each_point_inside_the_context_batch():
    torch.manual_seed(0)
    D = ToyDiscriminator(hidden=8, minibatch_features=True)
    context, x = torch.randn(20, 1), torch.randn(7, 1)
    brute = torch.stack([torch.sigmoid(D(torch.cat([context, x[i:i + 1]])).logits[-1]) for i in range(7)])
    assert torch.allclose(D.probability(x, context), brute, atol=1e-6)


def test_vbn_generator_switch():
    assert has_virtual_batch_norm(ToyGenerator(virtual_batch_norm=True))
    assert not has_virtual_batch_norm(ToyGenerator())
