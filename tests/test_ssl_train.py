import math

import pytest
import torch

from improved_gan.config import build_options
from improved_gan.errors import ConfigError
from improved_gan.experiments.ssl import Options
from improved_gan.experiments.ssl_train import SSLTrainer
from improved_gan.train.optim import AdamEpsInSqrt, ParamEMA


@pytest.mark.parametrize("compiled", [False, True], ids=["foreach", "compiled"])
def test_adam_eps_inside_sqrt_matches_formula(compiled):
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AdamEpsInSqrt([p], lr=0.1, betas=(0.5, 0.999), eps=1e-2, compiled=compiled)
    m = v = torch.zeros(2)
    ref = p.detach().clone()
    for t in range(1, 4):
        g = torch.tensor([0.3, -0.01]) * t
        p.grad = g.clone()
        opt.step()
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.1 * (m / (1 - 0.5 ** t)) / torch.sqrt(v / (1 - 0.999 ** t) + 1e-2)
    assert torch.allclose(p.detach(), ref, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, True], ids=["foreach", "compiled"])
def test_ema_bias_correction(compiled):
    p = torch.full((3,), 2.0)
    ema = ParamEMA([p], rate=1e-4, compiled=compiled)
    for _ in range(5):
        ema.update([p])
    assert torch.allclose(ema.averaged()[0], p)  # an uncorrected average would be ~0.001
    assert math.isclose(float(ema.avg[0][0]), 2 * (1 - (1 - 1e-4) ** 5), rel_tol=1e-4)


def _trainer(**kw):
    o = build_options(Options, {"d_widths": (32, 16), "g_widths": (16,), "batch_size": 10, "labels": 20,
                                "init_size": 50, **kw})
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (200, 784), dtype=torch.uint8, generator=g)
    y = torch.arange(200) % 10
    return SSLTrainer(o, x, x[:20], y[:20], x[:50], torch.device("cpu")), o


def test_epoch_plan_tiles_labeled_set():
    tr, o = _trainer()
    tr.plan_epoch()
    assert tr.iters == 20
    lab = tr.plan["lab"].view(-1, 20)  # each 20 consecutive entries: one permutation of the 20 labeled
    assert all(sorted(row.tolist()) == list(range(20)) for row in lab)
    assert sorted(tr.plan["unl"].tolist()) == list(range(200))
    assert not torch.equal(tr.plan["unl"], tr.plan["unl2"])


def test_g_step_leaves_d_without_gradients_and_trains_both():
    tr, _ = _trainer()
    tr.plan_epoch()
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    calls = []
    for p in tr.D.parameters():
        p.register_post_accumulate_grad_hook(lambda p: calls.append(p))
    tr.train_step()
    n_d = len(d0)
    assert len(calls) == n_d  # each D parameter got a gradient once: in the D step, not in the G step
    assert all(p.grad is not None for p in tr.G.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters(), strict=True))
    assert all(p.requires_grad for p in tr.D.parameters())
    assert tr.step == 1 and tr.ema.count == 1


def test_batched_and_separate_d_passes_agree():
    losses = []
    for batched in (True, False):
        tr, _ = _trainer(batched_d=batched, input_noise=0.0, hidden_noise=0.0)
        tr.plan_epoch()
        for _ in range(3):
            tr.train_step()
        losses.append(tr.epoch_stats())
    for k in losses[0]:
        assert math.isclose(losses[0][k], losses[1][k], rel_tol=1e-4, abs_tol=1e-6), k


@pytest.mark.parametrize("adam_eps_in_sqrt", [True, False], ids=["authors-adam", "torch-adam"])
def test_compiled_update_trains_like_the_foreach_update(adam_eps_in_sqrt):
    """compile_update fuses the same Adam and EMA formulas: the parameters after 3 steps agree."""
    trainers = []
    for compiled in (False, True):
        tr, _ = _trainer(compile_update=compiled, adam_eps_in_sqrt=adam_eps_in_sqrt)
        tr.plan_epoch()
        for _ in range(3):
            tr.train_step()
        trainers.append(tr)
    eager, fused = trainers
    for a, b in zip([*eager.D.parameters(), *eager.G.parameters()],
                    [*fused.D.parameters(), *fused.G.parameters()], strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(eager.ema.averaged(), fused.ema.averaged(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.equal(eager.ema.averaged()[0], torch.zeros_like(eager.ema.averaged()[0]))


@pytest.mark.parametrize("bad", [{"labels": 15}, {"epochs": 0}, {"lr": -1.0}, {"ema_rate": 0.0},
                                 {"technique": "minibatch-discrimination"}, {"d_widths": ()},
                                 {"train_subset": 10}])
def test_options_check(bad):
    with pytest.raises(ConfigError):
        build_options(Options, bad)
