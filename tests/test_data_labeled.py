import pytest
import torch

from improved_gan.data.labeled import labeled_subset
from improved_gan.errors import ConfigError


def _labels(n=1000, k=10, seed=0):
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


def test_balanced_and_deterministic():
    y = _labels()
    idx = labeled_subset(y, 100, data_seed=3)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert torch.bincount(y[idx], minlength=10).tolist() == [10] * 10
    assert torch.equal(idx, labeled_subset(y, 100, data_seed=3))
    assert not torch.equal(idx, labeled_subset(y, 100, data_seed=4))


def test_independent_of_global_seed():
    y = _labels()
    torch.manual_seed(1)
    a = labeled_subset(y, 20, data_seed=7)
    torch.manual_seed(2)
    torch.rand(5)
    b = labeled_subset(y, 20, data_seed=7)
    assert torch.equal(a, b)


@pytest.mark.parametrize("count", [0, -10, 15, 101])
def test_not_divisible(count):
    with pytest.raises(ConfigError, match="multiple of the number of classes"):
        labeled_subset(_labels(), count, data_seed=0)


def test_too_many_per_class():
    with pytest.raises(ConfigError, match="has only"):
        labeled_subset(_labels(n=50), 100, data_seed=0)
