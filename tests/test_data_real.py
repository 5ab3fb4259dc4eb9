"""The real datasets, through IMPROVED_GAN_DATA (CI points it at the verified copies)."""

import os

import pytest
import torch

from improved_gan.data.images import DATASETS, load_dataset, to_float
from improved_gan.errors import ConfigError

pytestmark = pytest.mark.skipif(not os.environ.get("IMPROVED_GAN_DATA"),
                                reason="IMPROVED_GAN_DATA is not set (CI sets it to the verified copies)")


def test_mnist_sanity_facts():
    x, y = load_dataset("mnist", "train")
    assert x.shape == (60000, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    xt, yt = load_dataset("mnist", "test")
    assert xt.shape == (10000, 28, 28)
    assert torch.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    f = to_float(xt[:3])
    assert f.shape == (3, 784) and 0.0 <= float(f.min()) and float(f.max()) <= 1.0


def test_fashion_mnist_balanced():
    x, y = load_dataset("fashion-mnist", "test")
    assert x.shape == (10000, 28, 28)
    assert torch.bincount(y).tolist() == [1000] * 10
    _, ytr = load_dataset("fashion-mnist", "train")
    assert torch.bincount(ytr).tolist() == [6000] * 10


def test_returns_fresh_tensors():
    a, _ = load_dataset("mnist", "test")
    a.zero_()
    b, _ = load_dataset("mnist", "test")
    assert int(b.sum()) > 0


def test_choices():
    assert DATASETS == ("mnist", "fashion-mnist")
    with pytest.raises(ConfigError, match="choose one of"):
        load_dataset("cifar10", "train")
    with pytest.raises(ConfigError, match="split"):
        load_dataset("mnist", "valid")
