"""MNIST and Fashion-MNIST as tensors: ``load_dataset(name, split, data_dir=None)``.

Images are uint8 (N, 28, 28), labels int64 (N,). Files are found, verified and if needed downloaded by
:mod:`improved_gan.data.download`. Parsed datasets are kept in memory per process (keyed by the
resolved location), and each call returns fresh tensors that the caller may modify.
"""

from __future__ import annotations

import os

import torch

from improved_gan.data.download import ENV_DATA, load_file
from improved_gan.data.idx import parse_idx
from improved_gan.data.registry import get_dataset
from improved_gan.errors import ConfigError, DataError

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")
NUM_CLASSES = 10

_MEMO: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def load_dataset(name: str, split: str, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of ``split`` ("train" or "test") of ``name``."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}")
    key = (name, split, str(data_dir or os.environ.get(ENV_DATA, "")))
    if key not in _MEMO:
        spec = get_dataset(name)
        images = parse_idx(load_file(spec, f"{split}-images", data_dir), f"{name} {split} images")
        labels = parse_idx(load_file(spec, f"{split}-labels", data_dir), f"{name} {split} labels")
        if images.ndim != 3 or images.shape[1:] != spec.image_shape or labels.ndim != 1:
            raise DataError(f"{name} {split}: unexpected shapes images {images.shape}, labels {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{name} {split}: {len(images)} images but {len(labels)} labels")
        _MEMO[key] = (torch.from_numpy(images), torch.from_numpy(labels.astype("int64")))
    images, labels = _MEMO[key]
    return images.clone(), labels.clone()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [0, 1] (the authors' scaling for the MNIST MLPs)."""
    return images.reshape(len(images), -1).to(torch.float32).div_(255.0)
