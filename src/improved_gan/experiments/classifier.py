"""Train the dataset classifier behind the sample-quality scores, once, and cache it.

``improved-gan classifier --dataset mnist|fashion-mnist`` trains :class:`Classifier28` on the training
split (random shifts, plus horizontal flips for Fashion-MNIST), measures its test accuracy and writes
``CACHE/DATASET/classifier.pt`` with that accuracy and a hash of the weights, next to config.json,
metrics.jsonl and summary.json. If the file exists it is reused (``--force`` retrains). Targets:
≥ 99.3% on MNIST, ≥ 92% on Fashion-MNIST; a run that misses its target still saves the classifier and
says so in summary.json (``meets_target``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from improved_gan.config import option, to_dict
from improved_gan.errors import ConfigError
from improved_gan.metrics.classifier_cache import FILE_NAME, classifier_dir, load_classifier, save_classifier
from improved_gan.models.classifier28 import Classifier28
from improved_gan.train.progress import progress
from improved_gan.train.rundir import RunDir

DATASETS = ("mnist", "fashion-mnist")
TARGETS = {"mnist": 0.993, "fashion-mnist": 0.92}
DEFAULT_EPOCHS = {"mnist": 3, "fashion-mnist": 8}


@dataclasses.dataclass
class Options:
    dataset: str = option("mnist", "dataset the classifier is trained on", choices=DATASETS)
    epochs: int = option(0, "training epochs (0: 3 for MNIST, 8 for Fashion-MNIST)")
    batch_size: int = option(128, "minibatch size")
    lr: float = option(3e-3, "peak Adam learning rate of the one-cycle schedule")
    width: int = option(32, "channels of the first conv layers (the second stage has twice as many)")
    train_subset: int = option(0, "use only the first N training images (0: all; for tests)")
    seed: int = option(0, "random seed")
    cache_dir: str = option("", "classifier cache (default: $IMPROVED_GAN_CACHE or runs/classifiers)")
    force: bool = option(False, "retrain even if a cached classifier exists")
    data_dir: str = option("", "dataset folder (default: $IMPROVED_GAN_DATA)")
    device: str = option("cpu", "torch device")

    def check(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0 or self.width < 1 or self.train_subset < 0:
            raise ConfigError("epochs and train_subset must be >= 0, batch_size and width >= 1, lr > 0")


def load_images(dataset: str, split: str, data_dir: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """(float images (N, 1, 28, 28) in [0, 1], int64 labels (N,)) through the project's data loader."""
    from improved_gan.data.images import load_dataset

    images, labels = load_dataset(dataset, split, data_dir=data_dir or None)
    x = torch.as_tensor(images).to(torch.float32).div_(255.0).unsqueeze(1)
    return x, torch.as_tensor(labels).to(torch.int64)


def augment(x: torch.Tensor, generator: torch.Generator, flip: bool, shift: int = 2) -> torch.Tensor:
    """Random integer shifts of up to ``shift`` pixels (zero padding) and optional horizontal flips."""
    n = x.shape[0]
    padded = F.pad(x, (shift, shift, shift, shift))
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(28).view(1, 28)).view(n, 1, 28, 1).expand(n, 1, 28, 28 + 2 * shift)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(28).view(1, 28)).view(n, 1, 1, 28).expand(n, 1, 28, 28)
    out = out.gather(3, cols)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out[mask] = out[mask].flip(3)
    return out


@torch.no_grad()
def evaluate(model: Classifier28, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i:i + batch_size].to(device)).logits
        correct += int((logits.argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / x.shape[0]


def run(options: Options) -> Path:
    folder = classifier_dir(options.dataset, options.cache_dir)
    path = folder / FILE_NAME
    if path.is_file() and not options.force:
        _, info = load_classifier(options.dataset, options.cache_dir)
        print(f"reusing {path}: test accuracy {info['test_accuracy']:.4f}, hash {info['hash']} "
              "(--force retrains)")
        return folder
    torch.manual_seed(options.seed)
    g = torch.Generator().manual_seed(options.seed)
    device = torch.device(options.device)
    x_train, y_train = load_images(options.dataset, "train", options.data_dir)
    x_test, y_test = load_images(options.dataset, "test", options.data_dir)
    if options.train_subset:
        x_train, y_train = x_train[:options.train_subset], y_train[:options.train_subset]
    epochs = options.epochs or DEFAULT_EPOCHS[options.dataset]
    steps_per_epoch = -(-x_train.shape[0] // options.batch_size)
    model = Classifier28(num_classes=10, width=options.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=options.lr, total_steps=epochs * steps_per_epoch)
    run_dir = RunDir(folder)
    run_dir.write_config(to_dict(options))
    run_dir.file("metrics.jsonl").unlink(missing_ok=True)
    start, step = time.time(), 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(x_train.shape[0], generator=g)
        total = 0.0
        for i in progress(range(steps_per_epoch), desc=f"classifier epoch {epoch + 1}/{epochs}"):
            idx = perm[i * options.batch_size:(i + 1) * options.batch_size]
            xb = augment(x_train[idx], g, flip=options.dataset == "fashion-mnist").to(device)
            loss = F.cross_entropy(model(xb).logits, y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            step += 1
        acc = evaluate(model, x_test, y_test, device)
        run_dir.log(step=step, epoch=epoch + 1, train_loss=total / steps_per_epoch, test_accuracy=acc,
                    elapsed_s=time.time() - start)
        print(f"epoch {epoch + 1}/{epochs}: train loss {total / steps_per_epoch:.4f}, "
              f"test accuracy {acc:.4f}", flush=True)
    acc = evaluate(model, x_test, y_test, device)
    target = TARGETS[options.dataset]
    info = save_classifier(path, model.cpu(), options.dataset, acc, epochs=epochs,
                           train_images=int(x_train.shape[0]), seed=options.seed)
    run_dir.write_summary({**info, "target_accuracy": target, "meets_target": acc >= target,
                           "path": str(path), "wall_time_s": time.time() - start}, seed=options.seed)
    print(f"{options.dataset} classifier: test accuracy {acc:.4f} (target {target}), hash {info['hash']}, "
          f"saved to {path}")
    return folder
