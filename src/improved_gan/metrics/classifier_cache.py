"""Where the dataset classifier behind the quality scores is kept, and how it is identified.

``improved-gan classifier --dataset NAME`` trains it once and writes ``CACHE/NAME/classifier.pt``
(an atomic checkpoint holding the weights, the architecture, the test accuracy and a hash of the
weights). Every later quality run loads it from there, checks the hash and records it in its
summary.json, so two scores are comparable exactly when their classifier hashes agree.

CACHE is, in order: the ``cache_dir`` option, the ``IMPROVED_GAN_CACHE`` environment variable,
``runs/classifiers``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from improved_gan.errors import CheckpointError
from improved_gan.models.classifier28 import Classifier28
from improved_gan.train.checkpoint import load_checkpoint, save_checkpoint

FILE_NAME = "classifier.pt"


def cache_root(cache_dir: str | os.PathLike = "") -> Path:
    return Path(cache_dir or os.environ.get("IMPROVED_GAN_CACHE") or Path("runs") / "classifiers")


def classifier_dir(dataset: str, cache_dir: str | os.PathLike = "") -> Path:
    return cache_root(cache_dir) / dataset


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 (first 16 hex digits) over the state dict's names and bytes, in order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_classifier(path: str | os.PathLike, model: Classifier28, dataset: str, test_accuracy: float,
                    **extra: Any) -> dict[str, Any]:
    info = {"dataset": dataset, "test_accuracy": float(test_accuracy), "hash": weights_hash(model),
            "config": dict(model.config), **extra}
    save_checkpoint(path, {"state_dict": model.state_dict(), **info})
    return info


def load_classifier(dataset: str, cache_dir: str | os.PathLike = "", device: str | torch.device = "cpu",
                    path: str | os.PathLike | None = None) -> tuple[Classifier28, dict[str, Any]]:
    """(classifier in eval mode, info with dataset, test_accuracy, hash, config)."""
    path = Path(path) if path else classifier_dir(dataset, cache_dir) / FILE_NAME
    if not path.is_file():
        raise CheckpointError(
            f"no {dataset} classifier at {path}; train it once with `improved-gan classifier --dataset "
            f"{dataset}` (same --cache-dir or IMPROVED_GAN_CACHE)")
    state = load_checkpoint(path, map_location="cpu")
    if state.get("dataset") != dataset:
        raise CheckpointError(f"{path} holds a classifier for {state.get('dataset')!r}, not {dataset!r}")
    model = Classifier28(**state["config"])
    model.load_state_dict(state["state_dict"])
    digest = weights_hash(model)
    if digest != state["hash"]:
        raise CheckpointError(f"classifier {path} does not match its recorded hash ({digest} != "
                              f"{state['hash']}); retrain it with `improved-gan classifier --force`")
    info = {k: v for k, v in state.items() if k != "state_dict"}
    info["path"] = str(path)
    return model.to(device).eval(), info


@torch.no_grad()
def classifier_outputs(model: Classifier28, images: torch.Tensor, batch_size: int = 500
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities (N, K), penultimate features (N, F)) of images in [0, 1], on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    probs, feats = [], []
    for i in range(0, images.shape[0], batch_size):
        out = model(images[i:i + batch_size].to(device))
        probs.append(torch.softmax(out.logits.double(), 1).cpu())
        feats.append(out.features.cpu())
    return torch.cat(probs), torch.cat(feats)
