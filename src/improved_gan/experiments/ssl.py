"""Semi-supervised MNIST / Fashion-MNIST with a K+1-class discriminator and feature matching (Table 1).

Salimans et al. 2016, Section 5: with 100 labeled MNIST digits the paper reports 93 ± 6.5 test errors
of 10,000 after 300 epochs. Defaults are the authors' MNIST recipe (``train_mnist_feature_matching.py``);
every part is an option. Writes config.json, metrics.jsonl (one line per epoch: test errors of the
current D and of the EMA of D), summary.json, checkpoint.pt (atomic, every epoch and every
``--checkpoint-every`` steps), learning_curve.png, confusion.png, samples/epoch_NNN.png + samples.gif,
report.html. ``--resume RUN_DIR`` continues from the checkpoint with identical results.

Under ``torchrun --nproc_per_node N -m improved_gan ssl ...`` the same command trains on N processes:
``--batch-size`` is the global batch, each rank trains on its slice of every unlabeled and labeled batch
of the epoch plan (the labeled batches come from the whole labeled set), D and G are wrapped in
DistributedDataParallel after their data-dependent init (rank 0's weights), and rank 0 alone evaluates
and writes (see docs/distributed.md).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from improved_gan.config import option, to_dict
from improved_gan.data.images import DATASETS, load_dataset
from improved_gan.data.labeled import labeled_subset
from improved_gan.errors import ConfigError
from improved_gan.experiments.ssl_train import SSLTrainer
from improved_gan.models.mnist_mlp import G_OUT_CHOICES
from improved_gan.techniques.feature_matching import REDUCTIONS, VARIANTS
from improved_gan.train import distributed
from improved_gan.train import distributed_ops as dops
from improved_gan.train.checkpoint import capture_rng_state, restore_rng_state
from improved_gan.train.distributed_options import dist_bn_option, dist_fm_option, dist_timeout_option
from improved_gan.train.progress import progress
from improved_gan.train.resume import checkpoint_path, resume_on_every_rank, save_run_state
from improved_gan.train.rundir import RunDir, default_run_path
from improved_gan.viz.images import save_gif, save_image_grid
from improved_gan.viz.report import Section, write_report
from improved_gan.viz.ssl import confusion_matrix_figure, learning_curve

PAPER_ERRORS = {20: 1677, 50: 221, 100: 93, 200: 90}  # Table 1, MNIST, mean over 10 seeds
FASHION_NAMES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Boot")


@dataclasses.dataclass
class Options:
    dataset: str = option("mnist", "dataset", choices=DATASETS)
    labels: int = option(100, "number of labeled training examples (a multiple of 10, class-balanced)")
    seed: int = option(1, "training seed: initialisation, noise, batch order")
    data_seed: int = option(1, "seed choosing the labeled subset (independent of --seed)")
    epochs: int = option(300, "epochs (the paper: 300)")
    max_steps: int = option(0, "stop after this many iterations in total (0: no limit), for quick runs")
    batch_size: int = option(100, "labeled and unlabeled batch size (each)")
    iters_per_epoch: int = option(0, "iterations per epoch (0: training-set size / batch size = 600)")
    train_subset: int = option(0, "use only the first N training images as the unlabeled set (0: all)")
    test_subset: int = option(0, "evaluate on the first N test images only (0: all 10,000)")
    lr: float = option(0.003, "Adam learning rate of D and G")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    adam_eps: float = option(1e-8, "Adam epsilon")
    adam_eps_in_sqrt: bool = option(True, "epsilon inside the square root, as the authors' Adam "
                                          "(--no-adam-eps-in-sqrt: torch.optim.Adam)")
    lr_schedule: str = option("constant", "learning-rate schedule", choices=("constant", "linear-decay"))
    lr_decay_start: int = option(0, "linear-decay: epoch from which the rate falls linearly to 0")
    ema_rate: float = option(1e-4, "rate of the exponential moving average of D's parameters")
    d_widths: tuple[int, ...] = option((1000, 500, 250, 250, 250), "D's hidden-layer widths")
    g_widths: tuple[int, ...] = option((500, 500), "G's hidden-layer widths")
    z_dim: int = option(100, "dimension of G's uniform noise")
    input_noise: float = option(0.3, "std of the Gaussian noise on D's input")
    hidden_noise: float = option(0.5, "std of the Gaussian noise after each hidden layer of D")
    train_hidden_scale: bool = option(False, "train the weight-norm scales of D's hidden layers (the "
                                             "authors freeze them after data-dependent init)")
    d_v_init_std: float = option(0.1, "std of the initial weight-norm directions of D (the authors' 0.1)")
    init_size: int = option(500, "training images used for D's data-dependent initialisation")
    g_out: str = option("wn", "G's last layer: weight-normalised (authors), with data init, or plain",
                        choices=G_OUT_CHOICES)
    technique: str = option("feature-matching", "G's loss: feature-matching, or baseline (-log D(G(z)))")
    fm_variant: str = option("l2sq", "feature-matching distance", choices=VARIANTS)
    fm_reduction: str = option("mean", "feature-matching reduction over features", choices=REDUCTIONS)
    fm_batch: str = option("separate", "real batch of feature matching: a second unlabeled batch (authors) "
                           "or the D step's", choices=("separate", "same"))
    d_noise_in_g_step: bool = option(True, "keep D's Gaussian noise on during the G step (authors)")
    unlabeled_weight: float = option(1.0, "weight of the unlabeled/generated part of D's loss")
    supervised_only: bool = option(False, "baseline: train D on the labeled images only (no G)")
    compile_update: bool = option(False, "fuse Adam and the EMA into one pass per parameter with "
                                  "torch.compile (needs a C++ compiler on CPU; same update, faster)")
    batched_d: bool = option(True, "one D forward on labeled+unlabeled+generated (same result, faster)")
    checkpoint_every: int = option(0, "also checkpoint every N iterations (0: at the end of each epoch only)")
    samples: bool = option(True, "save a grid of G's samples each epoch and a GIF")
    out: str = option("", "run directory (default runs/<time>-ssl)")
    resume: str = option("", "continue the run in this directory from its checkpoint")
    data_dir: str = option("", "dataset folder (DIR/mnist/*.gz); default $IMPROVED_GAN_DATA, the cache, "
                               "then a download")
    device: str = option("cpu", "torch device (cpu, cuda, cuda:1, mps)")
    threads: int = option(0, "torch intra-op threads (0: torch's default)")
    progress: bool = option(True, "progress bar on a terminal")
    dist_fm: str = dist_fm_option()
    dist_bn: str = dist_bn_option()
    dist_timeout: float = dist_timeout_option()

    def check(self) -> None:
        if self.labels <= 0 or self.labels % 10:
            raise ConfigError(f"--labels {self.labels}: must be a positive multiple of 10 (class-balanced)")
        for name in ("epochs", "batch_size", "z_dim", "init_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("max_steps", "iters_per_epoch", "train_subset", "test_subset", "checkpoint_every",
                     "threads", "lr_decay_start"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1 or not self.adam_eps >= 0:
            raise ConfigError("need --lr > 0, 0 <= --beta1, --beta2 < 1 and --adam-eps >= 0")
        if not 0 < self.ema_rate <= 1:
            raise ConfigError(f"--ema-rate must be in (0, 1], got {self.ema_rate}")
        if min(self.input_noise, self.hidden_noise) < 0:
            raise ConfigError("noise levels must be >= 0")
        if not self.d_widths or min(self.d_widths) <= 0 or not self.g_widths or min(self.g_widths) <= 0:
            raise ConfigError("--d-widths and --g-widths need at least one positive width")
        if self.technique not in ("feature-matching", "baseline"):
            raise ConfigError(f"--technique {self.technique!r}: choose feature-matching or baseline")
        if self.train_subset and self.train_subset < max(self.batch_size, self.labels, self.init_size):
            raise ConfigError("--train-subset must be at least --batch-size, --labels and --init-size")
        if self.dist_timeout <= 0:
            raise ConfigError(f"--dist-timeout must be > 0, got {self.dist_timeout}")


def _load(o: Options, device: torch.device):
    data_dir = o.data_dir or None
    x_train, y_train = load_dataset(o.dataset, "train", data_dir)
    x_test, y_test = load_dataset(o.dataset, "test", data_dir)
    # the labeled subset and D's init batch come from the full training set, chosen by data_seed alone
    lab = labeled_subset(y_train, o.labels, o.data_seed)
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(o.data_seed))
    init_idx = order[:o.init_size]
    if o.train_subset:
        x_unl = x_train[:o.train_subset]
    else:
        x_unl = x_train
    if o.test_subset:
        x_test, y_test = x_test[:o.test_subset], y_test[:o.test_subset]
    flat = lambda t: t.reshape(len(t), -1).to(device)  # noqa: E731
    return (flat(x_unl), flat(x_train[lab]), y_train[lab].to(device), flat(x_train[init_idx]),
            flat(x_test), y_test.to(device))


def run(options: Options) -> Path | None:
    with distributed.session(options.device, options.dist_timeout) as ctx:
        options, state = resume_on_every_rank(options, Options, ctx)
        threads = torch.get_num_threads()
        if options.threads:
            torch.set_num_threads(options.threads)
        try:
            path = _run(options, state, ctx)
        finally:
            torch.set_num_threads(threads)
        distributed.barrier(ctx)  # every process ends after rank 0 has written the run directory
    return path if ctx.is_main else None  # (the CLI prints the path once)


def _run(o: Options, state: dict | None, ctx: distributed.DistContext | None = None) -> Path:
    ctx = ctx or distributed.DistContext()
    device = ctx.device if ctx.distributed else torch.device(o.device)
    ctx.check_batch("batch_size", o.batch_size)
    out = distributed.broadcast_object(o.out or str(default_run_path("ssl")), ctx)
    run_dir = RunDir(out, enabled=ctx.is_main)
    run_dir.write_config(to_dict(o))
    x_unl, x_lab, y_lab, x_init, x_test, y_test = _load(o, device)
    tr = SSLTrainer(o, x_unl, x_lab, y_lab, x_init, device, ctx)
    elapsed = 0.0
    if state is not None:
        tr.load_state_dict(state["trainer"])
        restore_rng_state(state["rng"], tr.shuffle_gen, tr.z_gen)
        distributed.restore_rank_rng(state.get("rank_rng"), ctx)
        elapsed = float(state["elapsed_s"])
        run_dir.truncate_metrics(tr.step)
    ckpt = str(checkpoint_path(run_dir))
    total_steps = o.epochs * tr.iters if not o.max_steps else min(o.max_steps, o.epochs * tr.iters)

    def save(started: float) -> None:  # every rank calls it (RNG states are gathered); rank 0 writes
        rank_rng = distributed.gather_rng_states(ctx)
        save_run_state(run_dir, o, {"trainer": tr.state_dict(),
                                    "rng": capture_rng_state(tr.shuffle_gen, tr.z_gen),
                                    "elapsed_s": elapsed + time.time() - started, "rank_rng": rank_rng})
        distributed.barrier(ctx)

    bar = progress(total=total_steps, desc=f"ssl {o.dataset} {o.labels} labels", initial=tr.step,
                   enabled=None if o.progress and ctx.is_main else False)
    started = time.time()
    while tr.step < total_steps:
        if tr.plan is None:
            tr.plan_epoch()
        epoch_start = time.time()
        while tr.pos < tr.iters and tr.step < total_steps:
            tr.train_step(ckpt if Path(ckpt).exists() else None)
            bar.update(1)
            if o.checkpoint_every and tr.step % o.checkpoint_every == 0 and tr.pos < tr.iters:
                save(started)
        finished = tr.pos >= tr.iters
        if finished:
            tr.epoch += 1
        stats = tr.epoch_stats()  # averaged over ranks
        if ctx.is_main:
            with dops.local_only():
                _log_epoch(run_dir, tr, x_test, y_test, elapsed + time.time() - started,
                           time.time() - epoch_start, stats)
            if o.samples and tr.G is not None:
                save_image_grid(tr.samples(), run_dir.file(f"samples/epoch_{tr.epoch:03d}.png"), nrow=10,
                                title=f"{o.dataset} G samples, epoch {tr.epoch} (step {tr.step})")
        if finished:
            tr.plan = None
        save(started)
    bar.close()
    elapsed += time.time() - started
    distributed.assert_in_sync(tr.D, ctx, "D")
    if tr.G is not None:
        distributed.assert_in_sync(tr.G, ctx, "G")
    if not ctx.is_main:
        return run_dir.path
    return _finish(run_dir, o, tr, x_test, y_test, elapsed)


def _log_epoch(run_dir: RunDir, tr: SSLTrainer, x_test, y_test, elapsed: float, epoch_time: float,
               stats: dict) -> None:
    errors = int((tr.predict(x_test, ema=False) != y_test).sum())
    errors_ema = int((tr.predict(x_test, ema=True) != y_test).sum())
    epoch = tr.epoch if tr.pos >= tr.iters else round(tr.epoch + tr.pos / tr.iters, 4)
    run_dir.log(epoch=epoch, step=tr.step,
                test_errors=errors, test_errors_ema=errors_ema, test_size=len(y_test),
                lr=tr.opt_d.param_groups[0]["lr"], **stats,
                epoch_time_s=round(epoch_time, 3), elapsed_s=round(elapsed, 3))


def _time_to_reach(rows: list[dict], key: str, threshold: int) -> dict | None:
    for r in rows:
        if r[key] <= threshold:
            return {"epoch": r["epoch"], "elapsed_s": r["elapsed_s"]}
    return None


def _finish(run_dir: RunDir, o: Options, tr: SSLTrainer, x_test, y_test, elapsed: float) -> Path:
    rows = run_dir.read_metrics()
    last = rows[-1]
    best = min(rows, key=lambda r: (r["test_errors_ema"], r["step"]))
    summary = {
        "dataset": o.dataset, "labels": o.labels, "data_seed": o.data_seed,
        "supervised_only": o.supervised_only,
        "epochs": last["epoch"], "steps": tr.step, "test_size": len(y_test),
        "final_test_errors": last["test_errors"], "final_test_errors_ema": last["test_errors_ema"],
        "best_test_errors_ema": best["test_errors_ema"], "best_ema_epoch": best["epoch"],
        "best_test_errors": min(r["test_errors"] for r in rows),
        "time_to_reach": {str(t): {"current": _time_to_reach(rows, "test_errors", t),
                                   "ema": _time_to_reach(rows, "test_errors_ema", t)}
                          for t in (200, 150, 100)},
        "paper_test_errors": PAPER_ERRORS.get(o.labels) if o.dataset == "mnist" else None,
        "wall_time_s": elapsed,
    }
    run_dir.write_summary(summary, seed=o.seed)
    learning_curve(rows, run_dir.file("learning_curve.png"),
                   title=f"{o.dataset}, {o.labels} labels, seed {o.seed}",
                   paper=summary["paper_test_errors"] if len(y_test) == 10_000 else None)
    pred = tr.predict(x_test, ema=True)
    names = FASHION_NAMES if o.dataset == "fashion-mnist" else None
    confusion_matrix_figure(y_test, pred, run_dir.file("confusion.png"), names,
                            title="EMA of D, test set")
    figures = ["learning_curve.png", "confusion.png"]
    frames = sorted(run_dir.path.glob("samples/epoch_*.png"))
    if frames:
        save_gif(frames, run_dir.file("samples.gif"), duration=0.4)
        figures += [str(frames[-1].relative_to(run_dir.path)), "samples.gif"]
    table = [{k: r[k] for k in ("epoch", "step", "test_errors", "test_errors_ema", "loss_lab", "loss_unl",
                                "loss_gen", "train_err", "d_real_unl", "d_fake", "elapsed_s")} for r in rows]
    sections = [
        Section("Result", text=(f"Final test errors: current D {last['test_errors']}, "
                                f"EMA {last['test_errors_ema']} "
                                f"of {len(y_test)}; best EMA {best['test_errors_ema']} at epoch "
                                f"{best['epoch']}. Paper (300 epochs, 10 seeds): "
                                f"{summary['paper_test_errors']}."), figures=figures),
        Section("Per epoch", rows=table),
    ]
    write_report(run_dir.file("report.html"), f"Semi-supervised {o.dataset}, {o.labels} labels", sections,
                 config=to_dict(o))
    return run_dir.path
