"""Sample quality of a convolutional GAN on MNIST / Fashion-MNIST (Salimans et al. 2016, Sections 3-4).

``improved-gan quality --dataset fashion-mnist --technique minibatch-discrimination,virtual-batch-norm,
label-smoothing --labels`` trains the DCGAN-style G and D of :mod:`improved_gan.models.conv28` with the
chosen techniques (``--labels``: the K+1 discriminator trained on the class labels too) and writes:

- ``samples-stepNNNNNN.png``: a grid of G at a fixed noise batch, at every snapshot (each epoch end,
  every ``--eval-every`` steps, and the last step), and ``samples.gif`` of them;
- ``metrics.jsonl`` (losses every ``--log-every`` steps; scores on ``--curve-samples`` samples at every
  snapshot), ``scores.png`` (the score curves), ``summary.json`` and ``report.html``;
- ``checkpoint.pt`` (models, optimizers, historical averages, VBN reference noise, fixed noise, RNG
  states, options) every ``--checkpoint-every`` steps and at every snapshot; ``--resume RUN_DIR``
  continues and gives the same final numbers as an uninterrupted run.

Scores (:mod:`improved_gan.metrics.image_scores`) use the dataset classifier cached by
``improved-gan classifier`` (its hash goes into summary.json): Inception-style score over ``--splits``
splits, FID and KID on its penultimate features against the real test set, precision/recall (k=3).
The real test set's own score is reported as the ceiling.

Under ``torchrun --nproc_per_node N -m improved_gan quality ...`` the same command trains on N processes:
``--batch-size`` is the global batch (each rank trains on its slice of every batch of the epoch's
permutation), G's batch norm is synchronised (``--dist-bn``), rank 0 alone scores, draws and writes;
``--resume`` works the same way (see docs/distributed.md).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from improved_gan.config import option, to_dict
from improved_gan.errors import ConfigError
from improved_gan.experiments.classifier import DATASETS, load_images
from improved_gan.metrics.classifier_cache import classifier_outputs, load_classifier
from improved_gan.metrics.image_scores import inception_score, score_samples
from improved_gan.models.conv28 import build_models
from improved_gan.techniques.selection import parse_techniques
from improved_gan.techniques.virtual_batch_norm import make_reference_noise
from improved_gan.train import distributed
from improved_gan.train import distributed_ops as dops
from improved_gan.train.checkpoint import capture_rng_state, restore_rng_state
from improved_gan.train.distributed_options import (
    dist_bn_option,
    dist_fm_option,
    dist_mbd_option,
    dist_timeout_option,
)
from improved_gan.train.gan_step import GANObjective, gan_step, generate
from improved_gan.train.guards import check_finite
from improved_gan.train.progress import progress
from improved_gan.train.resume import checkpoint_path, resume_on_every_rank, save_run_state
from improved_gan.train.rundir import RunDir, default_run_path
from improved_gan.viz.images import save_gif, save_image_grid
from improved_gan.viz.quality import save_score_curves
from improved_gan.viz.report import Section
from improved_gan.viz.report import write_report as write_report_html

DEFAULT_TECHNIQUE = "minibatch-discrimination,virtual-batch-norm,label-smoothing"


@dataclasses.dataclass
class Options:
    dataset: str = option("fashion-mnist", "training images", choices=DATASETS)
    technique: str = option(DEFAULT_TECHNIQUE, "comma-separated techniques, or 'baseline'")
    labels: bool = option(True, "K+1 discriminator trained on the class labels too (the paper's 'labels')")
    epochs: int = option(1, "passes over the training images")
    max_steps: int = option(0, "stop after this many steps (0: epochs × steps per epoch)")
    batch_size: int = option(64, "minibatch size (real and generated)")
    lr: float = option(5e-4, "Adam learning rate of both players")
    beta1: float = option(0.5, "Adam beta1")
    z_dim: int = option(64, "noise dimension")
    g_width: int = option(16, "G channels before the last layer (x2 and x4 earlier)")
    d_width: int = option(16, "D channels of the first conv layer (x2 in the second)")
    feature_dim: int = option(128, "width of D's feature layer (feature matching, minibatch features)")
    dropout: float = option(0.3, "dropout in D")
    input_noise: float = option(0.0, "std of Gaussian noise added to D's inputs while training")
    minibatch_kernels: int = option(50, "minibatch-discrimination kernels B (kernel dim 5)")
    smoothing: float = option(0.9, "real target with one-sided label smoothing")
    ha_weight: float = option(1e-3, "historical-averaging weight")
    vbn_reference: int = option(32, "size of the fixed VBN reference noise batch")
    train_subset: int = option(0, "use only the first N training images (0: all)")
    eval_every: int = option(0, "snapshot (grid + scores) every N steps, besides each epoch end (0: off)")
    log_every: int = option(50, "log losses every N steps")
    checkpoint_every: int = option(200, "checkpoint every N steps (and at every snapshot)")
    eval_samples: int = option(10000, "generated samples for the final scores")
    curve_samples: int = option(2000, "generated samples for the scores at each snapshot")
    real_samples: int = option(10000, "real test images the scores compare with (and the ceiling)")
    splits: int = option(10, "splits of the Inception-style score")
    kid_subsets: int = option(50, "random subsets of KID (size up to 1000)")
    seed: int = option(0, "random seed (weights, noise, data order)")
    out: str = option("", "run directory (default: runs/<time>-quality)")
    resume: str = option("", "continue the run in this directory from its checkpoint")
    cache_dir: str = option("", "classifier cache (default: $IMPROVED_GAN_CACHE or runs/classifiers)")
    data_dir: str = option("", "dataset folder (default: $IMPROVED_GAN_DATA)")
    device: str = option("cpu", "torch device")
    threads: int = option(0, "torch CPU threads (0: torch's default; 1 is fastest on a busy machine)")
    dist_mbd: str = dist_mbd_option()
    dist_fm: str = dist_fm_option()
    dist_bn: str = dist_bn_option()
    dist_timeout: float = dist_timeout_option()

    def check(self) -> None:
        parse_techniques(self.technique)
        positive = ("epochs", "batch_size", "z_dim", "g_width", "d_width", "feature_dim", "log_every",
                    "checkpoint_every", "vbn_reference", "splits", "kid_subsets")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"option '{name}' must be >= 1, got {getattr(self, name)}")
        if min(self.eval_samples, self.curve_samples, self.real_samples) < max(self.splits, 4):
            raise ConfigError("eval_samples, curve_samples and real_samples must be >= splits and >= 4")
        if self.max_steps < 0 or self.eval_every < 0 or self.train_subset < 0 or self.lr <= 0:
            raise ConfigError("max_steps, eval_every and train_subset must be >= 0 and lr > 0")
        if self.dist_timeout <= 0:
            raise ConfigError("option 'dist_timeout' must be > 0 seconds")


class Trainer:
    """Models, optimizers, techniques and RNG of one run; ``state_dict`` is everything resume needs."""

    def __init__(self, o: Options, num_classes: int, device: torch.device,
                 ctx: distributed.DistContext | None = None):
        self.o, self.device = o, device
        self.ctx = ctx = ctx or distributed.DistContext()
        self.techniques = parse_techniques(o.technique)
        torch.manual_seed(o.seed)
        self.G, self.D = build_models(self.techniques, labels=o.labels, num_classes=num_classes,
                                      z_dim=o.z_dim, g_width=o.g_width, d_width=o.d_width,
                                      feature_dim=o.feature_dim,
                                      dropout=o.dropout, input_noise=o.input_noise,
                                      minibatch_kernels=o.minibatch_kernels)
        if ctx.distributed and o.dist_bn == "sync":
            self.G = dops.convert_sync_batch_norm(self.G, ctx)
        self.G.to(device)
        self.D.to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr, betas=(o.beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr, betas=(o.beta1, 0.999))
        self.objective = GANObjective.build(self.techniques, self.G, self.D, smoothing=o.smoothing,
                                            ha_weight=o.ha_weight)
        self.z_gen = torch.Generator().manual_seed(o.seed + 1)
        fixed = torch.Generator().manual_seed(o.seed + 2)
        self.fixed_noise = torch.randn(100, o.z_dim, generator=fixed).to(device)
        self.reference_noise = (make_reference_noise(o.vbn_reference, o.z_dim, fixed).to(device)
                                if self.techniques.virtual_batch_norm else None)
        self.step = 0
        self.train_time = 0.0
        if ctx.distributed:  # same weights (rank 0's), same reference batch; then per-rank dropout noise
            if self.reference_noise is not None:
                self.reference_noise = distributed.broadcast_tensor(self.reference_noise, ctx)
            self.objective = dops.distributed_objective(self.objective, ctx, o.dist_fm)
            distributed.seed_rank_rng(o.seed, ctx)
        self.G_train, self.D_train = distributed.wrap_ddp(self.G, ctx), distributed.wrap_ddp(self.D, ctx)
        self.hooks = dops.enable_global_minibatch(self.D, ctx) if o.dist_mbd == "global" else []

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.o.z_dim, generator=self.z_gen).to(self.device)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One step on the global batch ``real`` (every rank passes the same rows; each trains on its
        slice, with its slice of the global noise batches)."""
        n, shard = real.shape[0], self.ctx.shard
        stats = gan_step(self.G_train, self.D_train, self.opt_g, self.opt_d, self.objective,
                         shard(real).to(self.device), shard(self.noise(n)), shard(self.noise(n)),
                         reference_noise=self.reference_noise,
                         real_labels=shard(labels).to(self.device) if self.o.labels else None)
        stats = distributed.reduce_mean(stats, self.ctx)
        self.step += 1
        check_finite(self.step, **{k: v for k, v in stats.items() if k.endswith("loss")})
        return stats

    @torch.no_grad()
    def sample(self, n: int | None = None, batch: int = 500) -> torch.Tensor:
        """G in eval mode (batch norm uses its running statistics; VBN its reference batch)."""
        self.G.eval()
        try:
            if n is None:
                return generate(self.G, self.fixed_noise, self.reference_noise).cpu()
            g = torch.Generator().manual_seed(self.o.seed + 3)  # the same eval noise at every snapshot
            z = torch.randn(n, self.o.z_dim, generator=g).to(self.device)
            return torch.cat([generate(self.G, z[i:i + batch], self.reference_noise).cpu()
                              for i in range(0, n, batch)])
        finally:
            self.G.train()

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "objective": self.objective.state_dict(),
                "fixed_noise": self.fixed_noise.cpu(), "step": self.step, "train_time": self.train_time,
                "reference_noise": None if self.reference_noise is None else self.reference_noise.cpu()}

    def load_state_dict(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.objective.load_state_dict(s["objective"])
        self.fixed_noise = s["fixed_noise"].to(self.device)
        if s["reference_noise"] is not None:
            self.reference_noise = s["reference_noise"].to(self.device)
        self.step, self.train_time = s["step"], s["train_time"]


class Evaluator:
    """The cached classifier and its outputs on the real test images."""

    def __init__(self, o: Options, device: torch.device):
        self.o = o
        self.classifier, self.info = load_classifier(o.dataset, o.cache_dir, device)
        x_test, _ = load_images(o.dataset, "test", o.data_dir)
        probs, self.real_features = classifier_outputs(self.classifier, x_test[:o.real_samples])
        self.ceiling = inception_score(probs, splits=o.splits, seed=o.seed)

    def scores(self, images: torch.Tensor, kid_subsets: int | None = None) -> dict[str, float]:
        probs, feats = classifier_outputs(self.classifier, images)
        return score_samples(probs, feats, self.real_features, splits=self.o.splits,
                             kid_subsets=kid_subsets or self.o.kid_subsets, seed=self.o.seed)


def variant_name(o: Options) -> str:
    """``baseline``, or the technique names with ``+labels`` when the K+1 discriminator is used."""
    label = parse_techniques(o.technique).label
    if not o.labels:
        return label
    return "labels" if label == "baseline" else label + "+labels"


def write_report(run_dir: RunDir, o: Options, summary: dict, snapshots: list[int]) -> Path:
    grids = [f"samples-step{s:06d}.png" for s in snapshots]
    save_gif([run_dir.file(g) for g in grids], run_dir.file("samples.gif"), duration=0.5)
    save_score_curves(run_dir.read_metrics(), run_dir.file("scores.png"),
                      f"{o.dataset}: {summary['variant']} (scores on {o.curve_samples} samples per snapshot)",
                      ceiling=summary["real_score_mean"])
    columns = ["variant", "steps", "score_mean", "score_std", "fid", "kid_mean", "precision", "recall",
               "real_score_mean", "train_time_s"]
    sections = [
        Section("Final scores", f"{summary['samples']} samples, {summary['splits']} splits; classifier "
                f"{summary['classifier']['hash']} (test accuracy "
                f"{summary['classifier']['test_accuracy']:.4f}); "
                "the real test set's score is the ceiling.", rows=[summary], columns=columns),
        Section("Samples at fixed noise", "Last snapshot and the animation over training.",
                figures=[grids[-1], "samples.gif"]),
        Section("Scores over training", figures=["scores.png"]),
    ]
    title = f"Sample quality: {o.dataset}, {summary['variant']}"
    return write_report_html(run_dir.file("report.html"), title, sections, config=to_dict(o))


def run(options: Options) -> Path | None:
    with distributed.session(options.device, options.dist_timeout) as ctx:
        options, state = resume_on_every_rank(options, Options, ctx)
        out = distributed.broadcast_object(options.out or str(default_run_path("quality")), ctx)
        run_dir = RunDir(out, enabled=ctx.is_main)
        _run(options, state, run_dir, ctx)
        distributed.barrier(ctx)  # every process ends after rank 0 has written the run directory
    return run_dir.path if ctx.is_main else None  # (the CLI prints the path once)


def _run(options: Options, state: dict | None, run_dir: RunDir, ctx: distributed.DistContext) -> None:
    o = options
    if o.threads:
        torch.set_num_threads(o.threads)
    device = ctx.device if ctx.distributed else torch.device(o.device)
    ctx.check_batch("batch_size", o.batch_size)
    run_dir.write_config(to_dict(o))
    if state is None:  # a fresh run never appends to the metrics of an older run in the same folder
        run_dir.file("metrics.jsonl").unlink(missing_ok=True)
    x_train, y_train = load_images(o.dataset, "train", o.data_dir)
    if o.train_subset:
        x_train, y_train = x_train[:o.train_subset], y_train[:o.train_subset]
    evaluator = Evaluator(o, device) if ctx.is_main else None  # rank 0 alone scores
    tr = Trainer(o, num_classes=int(y_train.max()) + 1, device=device, ctx=ctx)
    steps_per_epoch = x_train.shape[0] // o.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"{x_train.shape[0]} training images are fewer than one batch of {o.batch_size}")
    total = min(o.max_steps or o.epochs * steps_per_epoch, o.epochs * steps_per_epoch)
    snapshots: list[int] = []
    if state is not None:
        tr.load_state_dict(state["trainer"])
        restore_rng_state(state["rng"], tr.z_gen)
        distributed.restore_rank_rng(state.get("rank_rng"), ctx)
        snapshots = list(state["snapshots"])
        run_dir.truncate_metrics(tr.step)

    def save() -> None:  # every rank calls it (the RNG states are gathered); rank 0 writes
        rank_rng = distributed.gather_rng_states(ctx)
        save_run_state(run_dir, o, {"trainer": tr.state_dict(), "rng": capture_rng_state(tr.z_gen),
                                    "snapshots": snapshots, "rank_rng": rank_rng})
        distributed.barrier(ctx)

    def snapshot() -> None:
        if ctx.is_main:
            with dops.local_only():
                save_image_grid(tr.sample(), run_dir.file(f"samples-step{tr.step:06d}.png"), nrow=10,
                                title=f"{variant_name(o)}  step {tr.step}")
                scores = evaluator.scores(tr.sample(o.curve_samples), kid_subsets=min(10, o.kid_subsets))
            run_dir.log(step=tr.step, kind="scores", samples=o.curve_samples, **scores)
        snapshots.append(tr.step)
        save()

    if tr.step == 0 and not snapshots:
        snapshot()  # the untrained generator: the first frame and the floor of the curves
    bar = progress(total=total, initial=tr.step, desc=f"quality {parse_techniques(o.technique).label}",
                   enabled=None if ctx.is_main else False)
    while tr.step < total:
        epoch, offset = divmod(tr.step, steps_per_epoch)
        # the data order of an epoch depends only on (seed, epoch), so a resumed run needs no loader state
        order = torch.Generator().manual_seed(o.seed * 100003 + epoch)
        perm = torch.randperm(x_train.shape[0], generator=order)
        for i in range(offset, steps_per_epoch):
            if tr.step >= total:
                break
            idx = perm[i * o.batch_size:(i + 1) * o.batch_size]
            start = time.time()
            stats = tr.train_step(x_train[idx], y_train[idx])
            tr.train_time += time.time() - start
            bar.update(1)
            if tr.step % o.log_every == 0:
                run_dir.log(step=tr.step, kind="losses", epoch=epoch + 1, train_time_s=tr.train_time, **stats)
            periodic = o.eval_every and tr.step % o.eval_every == 0
            if tr.step == total or (i + 1) == steps_per_epoch or periodic:
                snapshot()
            elif tr.step % o.checkpoint_every == 0:
                save()
    bar.close()
    for hook in tr.hooks:
        hook.remove()
    distributed.assert_in_sync(tr.G, ctx, "G")
    distributed.assert_in_sync(tr.D, ctx, "D")
    if not ctx.is_main:
        return

    final = evaluator.scores(tr.sample(o.eval_samples))
    summary = {
        "dataset": o.dataset, "variant": variant_name(o), "technique": o.technique,
        "labels": o.labels, "steps": tr.step, "epochs": tr.step / steps_per_epoch, "seed": o.seed,
        **final, "train_time_s": tr.train_time,
        "real_score_mean": evaluator.ceiling[0], "real_score_std": evaluator.ceiling[1],
        "classifier": {k: evaluator.info[k] for k in ("hash", "test_accuracy", "path")},
        "samples": o.eval_samples, "real_samples": min(o.real_samples, evaluator.real_features.shape[0]),
        "splits": o.splits, "kid_subsets": o.kid_subsets, "pr_k": 3,
        "snapshots": snapshots, "checkpoint": str(checkpoint_path(run_dir)),
    }
    summary["world_size"] = ctx.world_size
    summary = run_dir.write_summary(summary, seed=o.seed)
    write_report(run_dir, o, summary, snapshots)
