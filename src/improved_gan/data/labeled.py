"""The labeled subset of semi-supervised learning (Salimans et al. 2016, Section 5; the authors' code).

``labels`` examples, the same number per class, chosen by their own seed (``data_seed``) independently
of the training seed: the training set is permuted with the data seed and the first ``labels / K``
examples of each class in that order are kept (what the authors' MNIST script does). The unlabeled set
is the whole training set, labeled examples included.
"""

from __future__ import annotations

import torch

from improved_gan.errors import ConfigError


def labeled_subset(labels: torch.Tensor, count: int, data_seed: int, num_classes: int = 10) -> torch.Tensor:
    """Indices (int64, class 0's first, then class 1's, ...) of a class-balanced subset of ``count``."""
    if count <= 0 or count % num_classes != 0:
        raise ConfigError(f"--labels {count}: the labeled subset is class-balanced, so it must be a positive "
                          f"multiple of the number of classes ({num_classes}), e.g. {num_classes * 10}")
    per_class = count // num_classes
    g = torch.Generator().manual_seed(int(data_seed))
    order = torch.randperm(len(labels), generator=g)
    shuffled = labels[order]
    chosen = []
    for c in range(num_classes):
        idx = order[shuffled == c]
        if len(idx) < per_class:
            raise ConfigError(f"--labels {count} asks for {per_class} examples of class {c}, but the "
                              f"training set has only {len(idx)}")
        chosen.append(idx[:per_class])
    return torch.cat(chosen)
