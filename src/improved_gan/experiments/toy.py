"""The 1D study: an MLP generator learns a normal distribution (or a 1D mixture) while the discriminator's
decision boundary is drawn; ``--compare`` runs baseline, feature matching and minibatch discrimination
with the same seeds and writes the figures, GIFs, tables and report.

Under ``torchrun --nproc_per_node N -m improved_gan toy ...`` the same command trains on N processes:
``--batch-size`` is the global batch (each rank draws it from the same seeded stream and trains on its
slice), G and D are wrapped in DistributedDataParallel, losses are averaged over ranks, and rank 0 alone
draws the figures and writes the run directory (see docs/distributed.md)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from improved_gan.config import option, to_dict
from improved_gan.data.toy import SPEC_HELP, Mixture1D, parse_target
from improved_gan.errors import ConfigError
from improved_gan.metrics.toy import toy_metrics
from improved_gan.models.toy import ToyDiscriminator, ToyGenerator
from improved_gan.techniques.selection import TechniqueSet, parse_techniques, split_variants
from improved_gan.train import distributed
from improved_gan.train import distributed_ops as dops
from improved_gan.train.distributed_options import dist_fm_option, dist_mbd_option, dist_timeout_option
from improved_gan.train.gan_step import GANObjective, gan_step, generate
from improved_gan.train.guards import check_finite
from improved_gan.train.progress import progress
from improved_gan.train.rundir import RunDir, default_run_path, write_json_atomic
from improved_gan.viz import toy as toy_viz
from improved_gan.viz.report import Section, markdown_table, write_report

COMPARE_DEFAULT = "baseline;feature-matching;minibatch-discrimination"
METRIC_COLUMNS = ("variant", "w1", "ks", "js", "mean", "std", "d_flatness", "wall_time_s")


@dataclasses.dataclass
class Options:
    target: str = option("normal:4,0.5", f"target distribution: {SPEC_HELP}")
    technique: str = option("baseline", "technique(s) for a single run: baseline or a comma-separated list "
                            "of feature-matching, minibatch-discrimination, historical-averaging, "
                            "label-smoothing, virtual-batch-norm")
    compare: bool = option(False, "run every variant of --compare-variants with the same seed and compare")
    compare_variants: str = option(COMPARE_DEFAULT, "variants for --compare, separated by ';'")
    steps: int = option(3000, "training iterations (one D step + one G step each)")
    batch_size: int = option(128, "samples per batch (real and generated each)")
    noise: str = option("normal", "noise distribution fed to G", choices=("uniform", "normal"))
    noise_range: float = option(1.0, "uniform noise on [-r, r], or the std of normal noise")
    noise_dim: int = option(1, "noise dimension")
    g_hidden: int = option(32, "width of G's hidden layers")
    g_layers: int = option(2, "number of G's hidden layers (softplus)")
    d_hidden: int = option(32, "width of D's hidden layers")
    d_layers: int = option(3, "number of D's hidden layers (tanh)")
    optimizer: str = option("adam", "optimizer for both players", choices=("adam", "sgd"))
    lr: float = option(2e-3, "learning rate for both players")
    beta1: float = option(0.5, "Adam beta1 (momentum for SGD)")
    pretrain_steps: int = option(0, "pre-train D to regress the (peak-normalised) target pdf first")
    feature_layer: int = option(-1, "D hidden layer that feature matching compares (0-based; -1 = last)")
    fm_variant: str = option("l2sq", "feature-matching distance", choices=("l2sq", "l1", "pairwise"))
    fm_reduction: str = option("mean", "feature-matching reduction over features", choices=("mean", "sum"))
    mbd_kernels: int = option(5, "minibatch discrimination: number of kernels B")
    mbd_kernel_dim: int = option(3, "minibatch discrimination: kernel dimension C")
    smoothing: float = option(0.9, "one-sided label smoothing: target for real samples")
    ha_weight: float = option(1e-2, "historical averaging: penalty weight lambda")
    vbn_reference: int = option(128, "virtual batch norm: size of the fixed reference noise batch")
    log_every: int = option(20, "log metrics every N steps")
    frames: int = option(30, "frames in each training GIF")
    eval_samples: int = option(10000, "G samples used for the final metrics")
    seed: int = option(0, "random seed (same seed, same numbers on CPU)")
    device: str = option("cpu", "torch device, e.g. cpu or cuda")
    threads: int = option(1, "torch CPU threads (0 = torch default; these tiny MLPs run fastest on 1)")
    dist_mbd: str = dist_mbd_option()
    dist_fm: str = dist_fm_option()
    dist_timeout: float = dist_timeout_option()
    out: str = option("", "run directory (default runs/<timestamp>-toy)")

    def check(self) -> None:
        parse_target(self.target)
        if self.compare:
            split_variants(self.compare_variants)
        else:
            parse_techniques(self.technique)
        positive = ("steps", "batch_size", "noise_dim", "g_hidden", "g_layers", "d_hidden", "d_layers",
                    "log_every", "frames", "eval_samples", "mbd_kernels", "mbd_kernel_dim", "vbn_reference")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"option '{name}' must be a positive integer, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("option 'batch_size' must be at least 2 (minibatch features compare samples)")
        if not (self.lr > 0 and self.noise_range > 0 and self.ha_weight >= 0):
            raise ConfigError("options 'lr' and 'noise_range' must be > 0 and 'ha_weight' >= 0")
        if not 0 < self.smoothing <= 1:
            raise ConfigError(f"option 'smoothing' must be in (0, 1], got {self.smoothing}")
        if not -self.d_layers <= self.feature_layer < self.d_layers:
            raise ConfigError(f"option 'feature_layer' must be in [-{self.d_layers}, {self.d_layers - 1}]")
        if self.pretrain_steps < 0 or self.threads < 0:
            raise ConfigError("options 'pretrain_steps' and 'threads' must be >= 0")
        if self.dist_timeout <= 0:
            raise ConfigError("option 'dist_timeout' must be > 0 seconds")


@dataclasses.dataclass
class VariantResult:
    name: str
    metrics: dict[str, float]
    history: list[dict]
    snapshots: list[toy_viz.Snapshot]
    models: dict | None = None  # the trained "G" and "D" (unwrapped) and the "objective" (technique state)


def _noise(opts: Options, n: int, gen: torch.Generator, device) -> torch.Tensor:
    if opts.noise == "uniform":
        z = (torch.rand(n, opts.noise_dim, generator=gen) * 2 - 1) * opts.noise_range
    else:
        z = torch.randn(n, opts.noise_dim, generator=gen) * opts.noise_range
    return z.to(device)


def _optimizer(opts: Options, params):
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=opts.lr, betas=(opts.beta1, 0.999))
    return torch.optim.SGD(params, lr=opts.lr, momentum=opts.beta1)


def plot_grid(target: Mixture1D, points: int = 200) -> np.ndarray:
    lo, hi = target.support(5.0)
    return np.linspace(lo, hi, points)


def pretrain_discriminator(D: ToyDiscriminator, target: Mixture1D, opts: Options, gen: torch.Generator,
                           device) -> None:
    """The tutorials' warm start: regress D(x) onto the target pdf (scaled to peak 1) at uniform x."""
    lo, hi = target.support(5.0)
    peak = target.pdf(plot_grid(target)).max()
    opt = _optimizer(opts, D.parameters())
    for _ in range(opts.pretrain_steps):
        x = lo + (hi - lo) * torch.rand(opts.batch_size, 1, generator=gen)
        y = torch.as_tensor(target.pdf(x.numpy()[:, 0]) / peak, dtype=torch.float32)
        loss = torch.mean((torch.sigmoid(D(x.to(device)).logits) - y.to(device)) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def train_variant(opts: Options, target: Mixture1D, techniques: TechniqueSet, run: RunDir,
                  ctx: distributed.DistContext | None = None) -> VariantResult:
    """Train one variant. With a distributed ``ctx`` every rank runs this; only rank 0 draws snapshots
    and computes the final metrics (the other ranks return empty ones)."""
    ctx = ctx or distributed.DistContext(device=torch.device(opts.device))
    device = ctx.device if ctx.distributed else torch.device(opts.device)
    ctx.check_batch("batch_size", opts.batch_size)
    torch.manual_seed(opts.seed)  # same initial weights for every variant of a comparison (and every rank)
    gen = torch.Generator().manual_seed(opts.seed)  # the same stream on every rank; each keeps its slice
    G = ToyGenerator(opts.noise_dim, opts.g_hidden, opts.g_layers, techniques.virtual_batch_norm).to(device)
    mbd = techniques.minibatch_discrimination
    D = ToyDiscriminator(opts.d_hidden, opts.d_layers, opts.feature_layer, mbd, opts.mbd_kernels,
                         opts.mbd_kernel_dim).to(device)
    reference = _noise(opts, opts.vbn_reference, gen, device) if techniques.virtual_batch_norm else None
    if reference is not None:
        reference = distributed.broadcast_tensor(reference, ctx)  # rank 0's reference batch everywhere
    objective = GANObjective.build(techniques, G, D, smoothing=opts.smoothing, ha_weight=opts.ha_weight,
                                   fm_variant=opts.fm_variant, fm_reduction=opts.fm_reduction)
    opt_g, opt_d = _optimizer(opts, G.parameters()), _optimizer(opts, D.parameters())
    if opts.pretrain_steps:
        pretrain_discriminator(D, target, opts, gen, device)
    # Several ranks: D's pre-training ran identically everywhere, rank 0's weights win; wrap after.
    distributed.broadcast_module_(D, ctx)
    G_train, D_train = distributed.wrap_ddp(G, ctx), distributed.wrap_ddp(D, ctx)
    hooks = dops.enable_global_minibatch(D, ctx) if opts.dist_mbd == "global" else []
    if ctx.distributed:
        objective = dops.distributed_objective(objective, ctx, opts.dist_fm)

    eval_gen = torch.Generator().manual_seed(opts.seed + 1)
    frame_noise = _noise(opts, 2000, eval_gen, device)
    context = target.sample(opts.batch_size - 1, eval_gen, device)
    grid = plot_grid(target)
    grid_t = torch.as_tensor(grid, dtype=torch.float32, device=device).unsqueeze(1)

    def snapshot(step: int) -> toy_viz.Snapshot:
        with torch.no_grad():
            samples = generate(G, frame_noise, reference).cpu().numpy()[:, 0]
            d_values = D.probability(grid_t, context).cpu().numpy()
        return toy_viz.Snapshot(step, samples, grid, d_values)

    frame_steps = set(np.linspace(0, opts.steps, opts.frames).round().astype(int).tolist())
    snapshots = [snapshot(0)] if 0 in frame_steps and ctx.is_main else []
    history = []
    name = techniques.label
    start = time.time()
    for step in progress(range(1, opts.steps + 1), total=opts.steps, desc=name,
                         enabled=None if ctx.is_main else False):
        real = ctx.shard(target.sample(opts.batch_size, gen, device))
        noise_d = ctx.shard(_noise(opts, opts.batch_size, gen, device))
        noise_g = ctx.shard(_noise(opts, opts.batch_size, gen, device))
        stats = gan_step(G_train, D_train, opt_g, opt_d, objective, real, noise_d, noise_g,
                         reference_noise=reference)
        stats = distributed.reduce_mean(stats, ctx)  # every rank logs and checks the same numbers
        check_finite(step, **{k: v for k, v in stats.items() if k.endswith("loss")})
        if step % opts.log_every == 0 or step == opts.steps:
            record = {"variant": name, "step": step, **stats}
            history.append(record)
            run.log(**record)
        if step in frame_steps and ctx.is_main:
            with dops.local_only():
                snapshots.append(snapshot(step))
    train_time = time.time() - start
    for hook in hooks:
        hook.remove()
    distributed.assert_in_sync(G, ctx, "G")
    distributed.assert_in_sync(D, ctx, "D")
    if not ctx.is_main:
        return VariantResult(name, {}, history, snapshots, {"G": G, "D": D, "objective": objective})

    with torch.no_grad():
        samples = generate(G, _noise(opts, opts.eval_samples, eval_gen, device), reference).cpu().numpy()
        support = np.linspace(*target.support(3.0), 200)
        d_support = D.probability(torch.as_tensor(support, dtype=torch.float32, device=device).unsqueeze(1),
                                  context).cpu().numpy()
    metrics = toy_metrics(samples, target, d_support)
    metrics["wall_time_s"] = train_time
    return VariantResult(name, metrics, history, snapshots, {"G": G, "D": D, "objective": objective})


def _write_variant(run: RunDir, target: Mixture1D, result: VariantResult) -> list[str]:
    slug = result.name.replace("+", "_")
    files = [f"{slug}-distribution.png", f"{slug}-training.gif", f"{slug}-losses.png"]
    toy_viz.save_distribution_figure(result.snapshots[-1], target, result.name, run.file(files[0]))
    toy_viz.save_training_gif(result.snapshots, target, result.name, run.file(files[1]))
    toy_viz.save_loss_figure(result.history, result.name, run.file(files[2]))
    write_json_atomic(run.file(f"{slug}-metrics.json"), {"variant": result.name, **result.metrics})
    run.file(f"{slug}-metrics.md").write_text(markdown_table([{"variant": result.name, **result.metrics}],
                                                             METRIC_COLUMNS))
    return files


def run(opts: Options) -> Path | None:
    if opts.threads:
        torch.set_num_threads(opts.threads)
    with distributed.session(opts.device, opts.dist_timeout) as ctx:
        path = distributed.broadcast_object(str(opts.out or default_run_path("toy")), ctx)
        run_dir = RunDir(path, enabled=ctx.is_main)
        _run(opts, run_dir, ctx)
        distributed.barrier(ctx)  # every process ends after rank 0 has written the run directory
    return run_dir.path if ctx.is_main else None  # (the CLI prints the path once)


def _run(opts: Options, run_dir: RunDir, ctx: distributed.DistContext) -> None:
    target = parse_target(opts.target)
    variants = split_variants(opts.compare_variants) if opts.compare else [parse_techniques(opts.technique)]
    run_dir.write_config(to_dict(opts))
    start = time.time()
    results = [train_variant(opts, target, techniques, run_dir, ctx) for techniques in variants]
    if not ctx.is_main:
        return

    sections = []
    rows = [{"variant": r.name, **r.metrics} for r in results]
    run_dir.file("metrics_table.md").write_text(markdown_table(rows, METRIC_COLUMNS))
    write_json_atomic(run_dir.file("metrics_table.json"), rows)
    sections.append(Section("Results", f"Target {target.spec}; {opts.steps} steps, batch {opts.batch_size}, "
                            f"seed {opts.seed}. W1: Wasserstein-1 to the target; KS: Kolmogorov-Smirnov "
                            "statistic; JS: histogram Jensen-Shannon divergence (nats); d_flatness: mean "
                            "|D(x) - 0.5| over the target's 3-sigma support.", rows=rows,
                            columns=METRIC_COLUMNS))
    if len(results) > 1:
        toy_viz.save_comparison_figure({r.name: r.snapshots[-1] for r in results}, target,
                                       run_dir.file("comparison.png"))
        sections.append(Section("Side by side", figures=["comparison.png"]))
    for r in results:
        sections.append(Section(r.name, figures=_write_variant(run_dir, target, r)))
    summary = run_dir.write_summary({"command": "toy", "target": target.spec,
                                     "variants": {r.name: r.metrics for r in results},
                                     "wall_time_s": time.time() - start, "world_size": ctx.world_size},
                                    seed=opts.seed)
    write_report(run_dir.file("report.html"), f"1D study: {target.spec}", sections, config=to_dict(opts))
    del summary
