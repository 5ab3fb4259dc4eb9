"""Mode-collapse benchmark: an MLP GAN on ring8, grid25 or a 1-D mixture, scored with PacGAN's metrics.

The mixture's modes are known, so each run reports modes captured, high-quality % and reverse KL
(PacGAN's definitions, :mod:`improved_gan.metrics.modes`) plus the energy and sliced Wasserstein
distances, over one or more seeds.

Layout of ``--out DIR``::

    DIR/config.json, summary.json (mean ± std over seeds), metrics.jsonl (one line per seed), report.html
    DIR/seed-S/   config.json, metrics.jsonl (one line per evaluation), summary.json, checkpoint.pt,
                  scatter.png, density.png, training.gif, curves.png, report.html

Nothing finished is trained twice: each run writes ``samples.npy`` and then, last, ``summary.json``; a
command started again with the same ``--out`` (or ``--resume DIR``, which also takes the options saved in
``DIR/config.json``) keeps every run whose summary exists and was trained with the same options, and
trains the others again from their seed, so an interrupted multi-seed run ends with the table an
uninterrupted one writes (runs are a few seconds to a minute long, so a run, not a step, is the unit
that is resumed). A finished run trained with other options is an error, not overwritten.

Under ``torchrun --nproc_per_node N -m improved_gan modes ...`` each seed trains on N processes
(``--batch-size`` is the global batch, each rank trains on its slice; rank 0 evaluates, draws and writes;
see docs/distributed.md). ``--workers`` must then be 1.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from improved_gan.config import build_options, option, to_dict
from improved_gan.data.mixtures2d import Mixture, get_mixture
from improved_gan.errors import CheckpointError, ConfigError
from improved_gan.metrics.modes import energy_distance, mode_metrics, sliced_wasserstein
from improved_gan.models.mlp2d import MLPConfig, build_models
from improved_gan.techniques.selection import TechniqueSet, parse_techniques
from improved_gan.techniques.virtual_batch_norm import make_reference_noise
from improved_gan.train import distributed
from improved_gan.train import distributed_ops as dops
from improved_gan.train.checkpoint import capture_rng_state
from improved_gan.train.distributed_options import dist_fm_option, dist_mbd_option, dist_timeout_option
from improved_gan.train.gan_step import GANObjective, gan_step, generate
from improved_gan.train.guards import check_finite
from improved_gan.train.progress import progress
from improved_gan.train.resume import save_run_state
from improved_gan.train.rundir import RunDir, default_run_path
from improved_gan.viz.report import Section, write_report

TECHNIQUE_HELP = ("baseline or a comma-separated list of feature-matching, minibatch-discrimination, "
                  "historical-averaging, label-smoothing, virtual-batch-norm")
SUMMARY_KEYS = ("modes", "high_quality_pct", "reverse_kl", "energy_distance", "sliced_wasserstein",
                "wall_time_s")


@dataclasses.dataclass
class TrainOptions:
    """Options shared by ``modes`` and ``ablation``."""

    dataset: str = option("ring8", "ring8, grid25, or a 1-D mixture:W1,MU1,S1;W2,MU2,S2;...")
    radius: float = option(1.0, "ring8: radius r of the ring")
    std: float | None = option(None, "per-axis standard deviation of every mode (default: ring8 0.01, "
                               "grid25 0.05)")
    seeds: int = option(1, "number of seeds: runs seed, seed+1, ..., seed+K-1")
    seed: int = option(0, "first seed")
    steps: int = option(4000, "training iterations (one D step + one G step each)")
    batch_size: int = option(100, "real and generated samples per batch")
    lr: float = option(5e-4, "Adam learning rate for both players")
    lr_decay: bool = option(True, "decay both learning rates linearly to 0 over the run")
    beta1: float = option(0.5, "Adam beta1")
    noise_dim: int = option(2, "dimension of G's Gaussian noise")
    g_hidden: int = option(256, "width of G's hidden layers")
    g_layers: int = option(4, "number of G's hidden ReLU layers")
    d_hidden: int = option(128, "width of D's hidden layers")
    d_layers: int = option(2, "number of D's hidden LeakyReLU layers")
    mbd_kernels: int = option(5, "minibatch discrimination: number of kernels B")
    mbd_kernel_dim: int = option(3, "minibatch discrimination: kernel dimension C")
    smoothing: float = option(0.9, "one-sided label smoothing: target for real samples")
    ha_weight: float = option(1e-3, "historical averaging: penalty weight lambda")
    num_samples: int = option(2500, "generated samples scored by the metrics")
    evals: int = option(20, "evaluations (metrics lines, GIF frames) over training")
    workers: int = option(1, "runs trained in parallel processes (each with one torch thread)")
    threads: int = option(1, "torch CPU threads of a run trained in this process (small MLPs: 1 is fastest)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    dist_mbd: str = dist_mbd_option()
    dist_fm: str = dist_fm_option()
    dist_timeout: float = dist_timeout_option()
    out: str = option("", "run directory (default: runs/<time>-<command>); an existing one is continued")
    resume: str = option("", "continue this interrupted run directory with the options saved in its "
                         "config.json: finished runs are kept, the others are trained again")

    def check(self) -> None:
        mixture_for(self)
        for name in ("seeds", "steps", "batch_size", "noise_dim", "g_hidden", "g_layers", "d_hidden",
                     "d_layers", "mbd_kernels", "mbd_kernel_dim", "num_samples", "evals", "workers",
                     "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"option '{name}' must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("option 'batch_size' must be >= 2 (minibatch discrimination compares samples)")
        if not self.lr > 0:
            raise ConfigError(f"option 'lr' must be > 0, got {self.lr}")
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"option 'beta1' must be in [0, 1), got {self.beta1}")
        if not 0 < self.smoothing <= 1:
            raise ConfigError(f"option 'smoothing' must be in (0, 1], got {self.smoothing}")
        if self.ha_weight < 0:
            raise ConfigError(f"option 'ha_weight' must be >= 0, got {self.ha_weight}")
        if self.dist_timeout <= 0:
            raise ConfigError(f"option 'dist_timeout' must be > 0, got {self.dist_timeout}")
        resolve_device(self.device)


@dataclasses.dataclass
class Options(TrainOptions):
    technique: str = option("baseline", f"technique(s): {TECHNIQUE_HELP}")

    def check(self) -> None:
        super().check()
        parse_techniques(self.technique)


def mixture_for(options: TrainOptions) -> Mixture:
    if options.std is not None and not options.std > 0:
        raise ConfigError(f"option 'std' must be > 0, got {options.std}")
    if options.radius <= 0:
        raise ConfigError(f"option 'radius' must be > 0, got {options.radius}")
    return get_mixture(options.dataset, radius=options.radius, std=options.std)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"option 'device': '{name}' is not a device; use auto, cpu, cuda, cuda:N "
                          "or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"option 'device': {name} requested but CUDA is not available; use --device cpu")
    return device


def train_one(options: TrainOptions, techniques: TechniqueSet, seed: int, path: str | Path,
              figures: bool = True, show_progress: bool | None = None,
              ctx: distributed.DistContext | None = None) -> dict:
    """Train one GAN with ``techniques`` and ``seed`` into ``path``; returns its summary, with the final
    generated samples under ``"samples"`` (a list, not written to summary.json).

    With a distributed ``ctx`` every rank calls this; rank 0 evaluates and writes, the others return
    ``{}``."""
    ctx = ctx or distributed.DistContext()
    run = RunDir(path, enabled=ctx.is_main)
    run.write_config({**to_dict(options), "technique": techniques.label, "seed": seed})
    mixture = mixture_for(options)
    device = ctx.device if ctx.distributed else resolve_device(options.device)
    ctx.check_batch("batch_size", options.batch_size)
    torch.manual_seed(seed)  # model initialisation
    gen = torch.Generator().manual_seed(seed)  # data, noise, reference batch (CPU, then moved)
    cfg = MLPConfig(noise_dim=options.noise_dim, data_dim=mixture.dim, g_hidden=options.g_hidden,
                    g_layers=options.g_layers, d_hidden=options.d_hidden, d_layers=options.d_layers,
                    mbd_kernels=options.mbd_kernels, mbd_kernel_dim=options.mbd_kernel_dim)
    G, D = build_models(techniques, cfg)
    G, D = G.to(device), D.to(device)
    objective = GANObjective.build(techniques, G, D, smoothing=options.smoothing, ha_weight=options.ha_weight)
    opt_g = torch.optim.Adam(G.parameters(), lr=options.lr, betas=(options.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=options.lr, betas=(options.beta1, 0.999))
    scheds = []
    if options.lr_decay:
        scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda k: max(0.0, 1.0 - k / options.steps))
                  for o in (opt_g, opt_d)]
    reference = None
    if techniques.virtual_batch_norm:
        reference = make_reference_noise(options.batch_size, options.noise_dim, gen).to(device)
    eval_noise = torch.randn(options.num_samples, options.noise_dim, generator=gen).to(device)
    if reference is not None:
        reference = distributed.broadcast_tensor(reference, ctx)  # rank 0's reference batch everywhere
    G_train, D_train = distributed.wrap_ddp(G, ctx), distributed.wrap_ddp(D, ctx)
    hooks = dops.enable_global_minibatch(D, ctx) if options.dist_mbd == "global" else []
    if ctx.distributed:
        objective = dops.distributed_objective(objective, ctx, options.dist_fm)
    eval_at = {max(1, round(options.steps * (i + 1) / options.evals)) for i in range(options.evals)}

    def sample_g() -> torch.Tensor:
        with torch.no_grad():
            return generate(G, eval_noise, reference).float().cpu()

    history, frames = [], []
    started = time.time()
    bar = progress(range(1, options.steps + 1), total=options.steps, desc=f"{techniques.label} seed {seed}",
                   enabled=show_progress if ctx.is_main else False)
    b = options.batch_size
    for step in bar:
        real = ctx.shard(mixture.sample(b, generator=gen, device=device))  # every rank draws the global
        noise_d = ctx.shard(torch.randn(b, options.noise_dim, generator=gen).to(device))  # batch, keeps
        noise_g = ctx.shard(torch.randn(b, options.noise_dim, generator=gen).to(device))  # its slice
        stats = gan_step(G_train, D_train, opt_g, opt_d, objective, real, noise_d, noise_g,
                         reference_noise=reference)
        stats = distributed.reduce_mean(stats, ctx)
        for s in scheds:
            s.step()
        check_finite(step, d_loss=stats["d_loss"], g_loss=stats["g_loss"])
        if step in eval_at and ctx.is_main:
            with dops.local_only():
                x = sample_g()
            m = mode_metrics(x, mixture) if bool(torch.isfinite(x).all()) else _nonfinite(mixture)
            line = {"step": step, **stats, **{k: m[k] for k in ("modes", "high_quality_pct", "reverse_kl")},
                    "time_s": time.time() - started}
            run.log(**line)
            history.append(line)
            if figures:
                frames.append((step, x[:1000].numpy(), m["captured"]))
    train_time = time.time() - started
    for hook in hooks:
        hook.remove()
    distributed.assert_in_sync(G, ctx, "G")
    distributed.assert_in_sync(D, ctx, "D")
    if not ctx.is_main:
        return {}

    samples = sample_g()
    if not bool(torch.isfinite(samples).all()):
        raise ConfigError("the generator produced non-finite samples; lower --lr")
    final = mode_metrics(samples, mixture)
    target = mixture.sample(options.num_samples, generator=torch.Generator().manual_seed(10_000 + seed))
    summary = {
        "dataset": mixture.name, "technique": techniques.label, "seed": seed, "steps": options.steps,
        "modes": final["modes"], "num_modes": final["num_modes"],
        "high_quality_pct": final["high_quality_pct"], "reverse_kl": final["reverse_kl"],
        "energy_distance": energy_distance(samples, target),
        "sliced_wasserstein": sliced_wasserstein(samples, target,
                                                 generator=torch.Generator().manual_seed(seed)),
        "counts": final["counts"], "captured": final["captured"], "train_time_s": train_time,
    }
    save_run_state(run, options, {
        "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "step": options.steps, "objective": objective.state_dict(), "reference_noise": reference,
        "eval_noise": eval_noise, "technique": techniques.label, "seed": seed,
        "rng": capture_rng_state(gen)})
    if figures:
        _run_figures(run, summary, samples.numpy(), mixture, frames, history)
    summary["wall_time_s"] = time.time() - run.started
    if run.enabled:
        np.save(run.file("samples.npy"), samples.numpy())
    run.write_summary(summary, seed=seed)  # written last: its presence marks the run as finished
    return {**summary, "samples": samples.numpy().tolist(), "path": str(run.path)}


# options that change how a run is executed or listed, not what it computes
NOT_RESULT_KEYS = frozenset({"workers", "threads", "device", "out", "resume", "seeds", "variants", "run_figures",
                             "dist_timeout", "evals"})


def _option_changes(saved: dict, wanted: dict) -> str:
    """'' when the two configs give the same results, else 'key=old there, new now, ...'."""
    saved, wanted = ({k: v for k, v in c.items() if k not in NOT_RESULT_KEYS} for c in (saved, wanted))
    diff = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    return ", ".join(f"{k}={saved.get(k)!r} there, {wanted.get(k)!r} now" for k in diff)


def finished_run(path: Path, options: TrainOptions, techniques: TechniqueSet, seed: int) -> dict | None:
    """The result of the run in ``path`` if it finished (``summary.json`` and ``samples.npy``) with the
    same options, in the form :func:`train_one` returns; None if it did not finish.

    Raises ConfigError when a finished run there was trained with other options."""
    summary_file, samples_file = path / "summary.json", path / "samples.npy"
    if not (summary_file.is_file() and samples_file.is_file() and (path / "config.json").is_file()):
        return None
    changes = _option_changes(json.loads((path / "config.json").read_text()),
                              {**to_dict(options), "technique": techniques.label, "seed": seed})
    if changes:
        raise ConfigError(f"{path} holds a finished run trained with other options ({changes}); use "
                          "another --out, or --resume to continue with the saved options")
    summary = json.loads(summary_file.read_text())
    for k in SUMMARY_KEYS:  # non-finite floats are stored as strings ("nan")
        summary[k] = float(summary[k])
    return {**summary, "samples": np.load(samples_file).tolist(), "path": str(path)}


def check_same_options(out: Path, options: TrainOptions) -> None:
    """Before a command writes ``out/config.json``: an existing one must hold the same options (so that
    continuing a run directory never mixes runs of two settings)."""
    config = out / "config.json"
    if not config.is_file():
        return
    changes = _option_changes(json.loads(config.read_text()), to_dict(options))
    if changes:
        raise ConfigError(f"{out} is a run directory of other options ({changes}); use another --out, or "
                          f"--resume {out} to continue it with its own options")


def resumed_options(options, options_cls):
    """For ``--resume DIR``: the options saved in ``DIR/config.json`` (``out`` = DIR); otherwise
    ``options`` unchanged."""
    if not options.resume:
        return options
    path = Path(options.resume)
    config = path / "config.json"
    if not config.is_file():
        raise CheckpointError(f"--resume {path}: no config.json there, so it is not a run directory of this "
                              "command; give the directory the interrupted command was writing")
    saved = json.loads(config.read_text())
    saved.update(out=str(path), resume="")
    return build_options(options_cls, saved, source=str(config))


def _nonfinite(mixture: Mixture) -> dict:
    return {"modes": 0, "high_quality_pct": 0.0, "reverse_kl": math.nan,
            "captured": [False] * mixture.num_modes}


def describe(summary: dict) -> str:
    return (f"{summary['modes']}/{summary['num_modes']} modes, {summary['high_quality_pct']:.1f}% HQ, "
            f"rev-KL {summary['reverse_kl']:.3f}")


def _run_figures(run: RunDir, summary: dict, samples: np.ndarray, mixture: Mixture, frames, history) -> None:
    from improved_gan.viz import modes as viz

    title = f"{mixture.name} · {summary['technique']} · seed {summary['seed']}"
    viz.scatter_modes(run.file("scatter.png"), samples, mixture, summary["captured"],
                      f"{title}\n{describe(summary)}")
    viz.density_image(run.file("density.png"), samples, mixture, f"{title}\ndensity of generated samples")
    viz.training_gif(run.file("training.gif"), frames, mixture, summary["technique"])
    viz.training_curves(run.file("curves.png"), history, mixture.num_modes, title)
    rows = [{k: summary[k] for k in ("modes", "num_modes", "high_quality_pct", "reverse_kl",
                                     "energy_distance", "sliced_wasserstein", "train_time_s")}]
    write_report(run.file("report.html"), f"Mode collapse: {title}", [
        Section("Final metrics (PacGAN definitions, see docs/modes.md)", rows=rows),
        Section("Samples", "2,500 generated samples; circles are 3σ around each mode.",
                figures=("scatter.png", "density.png")),
        Section("Training", figures=("curves.png", "training.gif")),
    ], config=json_config(run))


def json_config(run: RunDir) -> dict | None:
    import json

    path = run.file("config.json")
    return json.loads(path.read_text()) if path.exists() else None


def aggregate(summaries: list[dict], keys=SUMMARY_KEYS) -> dict:
    """Mean and (population) std over seeds of each metric; NaN reverse KLs are left out and counted."""
    out: dict = {"runs": len(summaries)}
    for k in keys:
        vals = np.array([float(s[k]) for s in summaries], dtype=float)
        finite = vals[np.isfinite(vals)]
        out[k] = {"mean": float(finite.mean()) if finite.size else math.nan,
                  "std": float(finite.std()) if finite.size else math.nan,
                  "values": vals.tolist(), "undefined": int(vals.size - finite.size)}
    return out


def run_jobs(options: TrainOptions, jobs: list[tuple[TechniqueSet, int, Path]], figures: bool,
             desc: str, ctx: distributed.DistContext | None = None) -> list[dict]:
    """Train each (techniques, seed, path) that has not finished already (:func:`finished_run`); in
    ``options.workers`` processes when more than one; one after the other on all ranks under torchrun
    (``ctx``). Returns the results in the order of ``jobs``."""
    ctx = ctx or distributed.DistContext()
    done = [finished_run(Path(p), options, t, s) if ctx.is_main else None for t, s, p in jobs]
    done = distributed.broadcast_object(done, ctx)
    todo = [job for job, d in zip(jobs, done, strict=True) if d is None]
    trained = iter(_train_jobs(options, todo, figures, desc, ctx) if todo else [])
    return [d if d is not None else next(trained) for d in done]


def _train_jobs(options: TrainOptions, jobs: list[tuple[TechniqueSet, int, Path]], figures: bool,
                desc: str, ctx: distributed.DistContext) -> list[dict]:
    if ctx.distributed:
        if options.workers != 1:
            raise ConfigError("under torchrun every seed trains on all processes; use --workers 1")
        torch.set_num_threads(options.threads)
        return [train_one(options, t, s, p, figures, show_progress=None if ctx.is_main else False, ctx=ctx)
                for t, s, p in jobs]
    if options.workers == 1 or len(jobs) == 1:
        single = len(jobs) == 1
        threads = torch.get_num_threads()
        torch.set_num_threads(options.threads)
        try:
            bar = progress(jobs, total=len(jobs), desc=desc, enabled=False if single else None)
            return [train_one(options, t, s, p, figures, show_progress=None if single else False)
                    for t, s, p in bar]
        finally:
            torch.set_num_threads(threads)
    mp = multiprocessing.get_context("spawn")
    results: list[dict | None] = [None] * len(jobs)
    pool = concurrent.futures.ProcessPoolExecutor(options.workers, mp_context=mp, initializer=_worker_init)
    with pool as ex:
        futures = {ex.submit(train_one, options, t, s, p, figures, False): i
                   for i, (t, s, p) in enumerate(jobs)}
        for fut in progress(concurrent.futures.as_completed(futures), total=len(jobs), desc=desc):
            results[futures[fut]] = fut.result()
    return results  # type: ignore[return-value]


def _worker_init() -> None:
    torch.set_num_threads(1)


def run(options: Options) -> Path | None:
    options = resumed_options(options, Options)
    with distributed.session(resolve_device(options.device), options.dist_timeout) as ctx:
        out = Path(distributed.broadcast_object(str(options.out or default_run_path("modes")), ctx))
        _run(options, out, ctx)
        distributed.barrier(ctx)  # every process ends after rank 0 has written the run directory
    return out if ctx.is_main else None  # (the CLI prints the path once)


def _run(options: Options, out: Path, ctx: distributed.DistContext) -> None:
    techniques = parse_techniques(options.technique)
    if ctx.is_main:
        check_same_options(out, options)
    root = RunDir(out, enabled=ctx.is_main)
    root.write_config(to_dict(options))
    mixture = mixture_for(options)
    seeds = [options.seed + i for i in range(options.seeds)]
    jobs = [(techniques, s, out / f"seed-{s}") for s in seeds]
    results = run_jobs(options, jobs, figures=True, desc=f"modes {mixture.name}", ctx=ctx)
    if not ctx.is_main:
        return
    for r in results:
        root.log(**{k: r[k] for k in ("seed", "modes", "num_modes", "high_quality_pct", "reverse_kl",
                                      "energy_distance", "sliced_wasserstein", "wall_time_s")})
    agg = aggregate(results)
    root.write_summary({"dataset": mixture.name, "technique": techniques.label, "seeds": seeds,
                        "num_modes": mixture.num_modes, **agg}, seed=options.seed)
    rows = [{"seed": r["seed"], "modes": f"{r['modes']}/{r['num_modes']}",
             "high_quality_pct": r["high_quality_pct"], "reverse_kl": r["reverse_kl"],
             "energy_distance": r["energy_distance"], "wall_time_s": r["wall_time_s"]} for r in results]
    mean_row = {"seed": "mean ± std", **{k: f"{agg[k]['mean']:.3g} ± {agg[k]['std']:.2g}"
                                         for k in ("modes", "high_quality_pct", "reverse_kl",
                                                   "energy_distance", "wall_time_s")}}
    sections = [Section(f"{techniques.label} on {mixture.name}, {len(seeds)} seed(s)",
                        "Modes captured: modes with at least one sample within 3σ; high quality: within 3σ "
                        "of the nearest mode; reverse KL: KL(high-quality histogram ‖ mixing weights).",
                        rows=rows + [mean_row])]
    for r in results:
        rel = Path(r["path"]).relative_to(out)
        sections.append(Section(f"seed {r['seed']}: {describe(r)}",
                                figures=tuple(str(rel / f) for f in ("scatter.png", "density.png",
                                                                      "curves.png", "training.gif"))))
    write_report(root.file("report.html"), f"Mode collapse: {techniques.label} on {mixture.name}", sections,
                 config=to_dict(options))
