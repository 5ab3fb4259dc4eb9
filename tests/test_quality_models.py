"""The 28×28 conv G and D: shapes, techniques switched by configuration, K+1 'labels' outputs."""

import pytest
import torch
from torch import nn

from improved_gan.experiments.ablation_quality import VARIANTS
from improved_gan.experiments.classifier import augment
from improved_gan.models.classifier28 import Classifier28
from improved_gan.models.conv28 import Discriminator28, Generator28, build_models
from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination
from improved_gan.techniques.selection import TechniqueSet, parse_techniques
from improved_gan.techniques.virtual_batch_norm import VirtualBN, has_virtual_batch_norm, reference_pass
from improved_gan.train.gan_step import GANObjective, gan_step

SMALL = {"g_width": 8, "d_width": 8, "feature_dim": 32, "minibatch_kernels": 6, "z_dim": 16}


def test_shapes_and_output_range():
    G, D = build_models(TechniqueSet(), **SMALL)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    out = D(x)
    assert out.logits.shape == (5,) and out.features.shape == (5, 32) and out.class_logits is None
    assert Generator28(z_dim=4, width=4, output="tanh")(torch.randn(3, 4)).min() >= -1


def test_techniques_switch_layers():
    plain_g, plain_d = build_models(TechniqueSet(), **SMALL)
    assert not has_virtual_batch_norm(plain_g)
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain_g.modules())
    assert not any(isinstance(m, MinibatchDiscrimination) for m in plain_d.modules())
    G, D = build_models(parse_techniques("virtual-batch-norm,minibatch-discrimination"), **SMALL)
    assert has_virtual_batch_norm(G) and not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert sum(isinstance(m, VirtualBN) for m in G.modules()) == 2
    assert D.mbd is not None and D.head.in_features == 32 + 6


def test_minibatch_features_make_d_batch_dependent_and_plain_d_is_not():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    for mbd, dependent in ((0, False), (6, True)):
        D = Discriminator28(width=8, feature_dim=32, minibatch_kernels=mbd).eval()
        alone = D(x[:4]).logits
        together = D(x).logits[:4]
        assert torch.allclose(alone, together, atol=1e-6) != dependent


def test_vbn_generator_output_does_not_depend_on_batch():
    torch.manual_seed(0)
    G = Generator28(z_dim=16, width=8, norm="virtual")
    reference_pass(G, torch.randn(32, 16))
    z = torch.randn(6, 16)
    assert torch.allclose(G(z)[:2], G(z[:2]), atol=1e-5)


def test_labels_discriminator_is_k_plus_one():
    D = Discriminator28(width=8, feature_dim=32, num_classes=10)
    out = D(torch.rand(4, 1, 28, 28))
    assert out.class_logits.shape == (4, 10)
    assert torch.allclose(out.logits, torch.logsumexp(out.class_logits, 1))


def test_gan_step_with_labels_adds_class_loss_and_trains():
    torch.manual_seed(0)
    t = parse_techniques("minibatch-discrimination,label-smoothing,historical-averaging")
    G, D = build_models(t, labels=True, **SMALL)
    obj = GANObjective.build(t, G, D)
    og, od = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    real, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    first = gan_step(G, D, og, od, obj, real, torch.randn(16, 16), torch.randn(16, 16), real_labels=y)
    for _ in range(15):
        last = gan_step(G, D, og, od, obj, real, torch.randn(16, 16), torch.randn(16, 16), real_labels=y)
    assert last["d_labeled_loss"] < first["d_labeled_loss"]  # D learns the (fixed) labels
    plain = Discriminator28(width=8, feature_dim=32)
    out = plain(real)
    with pytest.raises(ValueError, match="class_logits"):
        obj.discriminator_loss(out, out, real_labels=y)


def test_ablation_variants_are_the_papers():
    def flags(name):
        spec, labels = VARIANTS[name]
        t = parse_techniques(spec)
        return (t.minibatch_discrimination, t.virtual_batch_norm, t.label_smoothing, t.historical_averaging,
                labels, t.feature_matching)

    assert flags("all") == (True, True, True, False, True, False)
    assert flags("-VBN+BN") == (True, False, True, False, True, False)
    assert flags("-L+HA") == (True, True, True, True, False, False)
    assert flags("-LS") == (True, True, False, False, True, False)
    assert flags("-L") == (True, True, True, False, False, False)
    assert flags("-MBF") == (False, True, True, False, True, False)
    assert flags("DCGAN") == (False,) * 6


def test_classifier_and_augmentation_shapes():
    out = Classifier28(width=4, feature_dim=16)(torch.rand(3, 1, 28, 28))
    assert out.logits.shape == (3, 10) and out.features.shape == (3, 16)
    x = torch.zeros(2, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    y = augment(x, torch.Generator().manual_seed(0), flip=True)
    assert y.shape == x.shape and torch.equal(y.sum((1, 2, 3)), x.sum((1, 2, 3)))  # shifted, nothing lost
