"""Shared test set-up: one torch thread (the tests' models are tiny, and on a loaded 2-core machine
several OpenMP threads per process spin against each other and run many times slower)."""

import torch

torch.set_num_threads(1)
