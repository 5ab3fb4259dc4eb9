"""Historical averaging (Section 3.3): weight · Σ ‖θ − mean_{i≤t} θ_i‖²."""

import pytest
import torch
from torch import nn

from improved_gan.techniques.historical_averaging import HistoricalAverage


def test_hand_computed():
    p = nn.Parameter(torch.tensor([1.0, -1.0]))
    ha = HistoricalAverage([p], weight=0.5)
    assert ha.penalty().item() == 0.0  # no history yet
    ha.update()  # history {θ1 = (1, -1)}
    with torch.no_grad():
        p.copy_(torch.tensor([3.0, 1.0]))
    ha.update()  # mean (2, 0)
    with torch.no_grad():
        p.copy_(torch.tensor([5.0, 0.0]))
    assert ha.penalty().item() == pytest.approx(0.5 * (9.0 + 0.0))
    assert ha.count == 2


def test_brute_force_average_during_training():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ha = HistoricalAverage(model.parameters(), weight=0.1)
    history = []
    ptrs = [a.data_ptr() for a in ha.averages]
    for _ in range(7):
        loss = model(torch.randn(5, 3)).pow(2).mean() + ha.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ha.update()
        history.append([p.detach().clone() for p in model.parameters()])
    assert [a.data_ptr() for a in ha.averages] == ptrs  # updated in place, no new buffers
    means = [torch.stack(ps).mean(0) for ps in zip(*history, strict=True)]
    for avg, mean in zip(ha.averages, means, strict=True):
        assert torch.allclose(avg, mean, atol=1e-6)
    expected = 0.1 * sum(((p - m) ** 2).sum() for p, m in zip(model.parameters(), means, strict=True))
    assert ha.penalty().item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-9)


def test_gradient():
    p = nn.Parameter(torch.randn(3, dtype=torch.float64))
    ha = HistoricalAverage([p], weight=2.0)
    ha.update()
    with torch.no_grad():
        p.add_(1.0)
    ha.penalty().backward()
    assert torch.allclose(p.grad, 2 * 2.0 * torch.ones(3, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda q: 2.0 * ((q - ha.averages[0]) ** 2).sum(), (p.detach().clone()
                                                                                          .requires_grad_(),))


def test_state_dict_round_trip():
    torch.manual_seed(1)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    ha_a, ha_b = HistoricalAverage(a.parameters(), 1.0), HistoricalAverage(b.parameters(), 1.0)
    for _ in range(3):
        with torch.no_grad():
            a.weight.add_(torch.randn(2, 2))
        ha_a.update()
    b.load_state_dict(a.state_dict())
    ha_b.load_state_dict(ha_a.state_dict())
    assert ha_b.count == 3
    assert ha_b.penalty().item() == pytest.approx(ha_a.penalty().item())
    with torch.no_grad():  # continuing gives the same running mean in both
        a.weight.add_(1.0)
        b.weight.add_(1.0)
    ha_a.update()
    ha_b.update()
    assert torch.allclose(ha_a.averages[0], ha_b.averages[0])
    state = ha_a.state_dict()
    state["averages"] = state["averages"][:1]
    with pytest.raises(ValueError):
        ha_b.load_state_dict(state)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        HistoricalAverage([], 1.0)
    with pytest.raises(ValueError):
        HistoricalAverage(nn.Linear(1, 1).parameters(), -1.0)
