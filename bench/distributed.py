"""Throughput of a trainer with 1 process × 2 threads against 2 processes × 1 thread (torchrun, gloo), and
the communication time per step, on this machine (1 process × 1 thread is measured too, for reference).

    .venv/bin/python bench/distributed.py                       # toy trainer, defaults below
    .venv/bin/python bench/distributed.py --trainer ssl         # semi-supervised MNIST trainer
    .venv/bin/python bench/distributed.py --steps 400 --repeats 3

For each layout the trainer's own command runs (``improved-gan toy`` / ``improved-gan ssl``, the second
under ``torchrun --nproc_per_node 2``) and the training-loop time is read from its summary.json; the
median over ``--repeats`` is reported as steps/s (and samples/s of the global batch). Communication per
step is measured inside one 2-process run (``--comm-worker``): each rank times the same trainer once on
its local half batch with no communication at all (a single-process context) and once distributed
(DDP gradient all-reduce, global minibatch discrimination / feature matching / synchronised batch norm,
metric reduction) on the global batch; the difference per step, the slower rank's, is the cost of
communicating. Prints a Markdown table and writes bench/results/distributed.json.

The numbers depend on the machine's load; compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TOY_TECHNIQUE = "minibatch-discrimination,feature-matching"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trainer_args(args, out: Path, threads: int) -> list[str]:
    if args.trainer == "toy":
        return ["toy", "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--technique",
                args.technique, "--frames", "2", "--eval-samples", "1000", "--log-every", "50",
                "--threads", str(threads), "--out", str(out)]
    return ["ssl", "--epochs", "1", "--max-steps", str(args.steps), "--iters-per-epoch", str(args.steps),
            "--batch-size", str(args.batch_size), "--test-subset", "1000", "--threads", str(threads),
            "--no-samples", "--no-progress", "--out", str(out)]


def train_seconds(summary: dict, trainer: str) -> float:
    if trainer == "toy":
        (variant,) = summary["variants"].values()
        return float(variant["wall_time_s"])
    return float(summary.get("train_time_s", summary["wall_time_s"]))


def run_layout(args, processes: int, threads: int, tmp: Path, tag: str) -> dict:
    out = tmp / tag
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "improved_gan"] if processes == 1 else [
        TORCHRUN, "--nproc_per_node", str(processes), "--master_port", str(_port()), "-m", "improved_gan"]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *trainer_args(args, out, threads)], env=env, capture_output=True, text=True,
                          cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{tag} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"train_s": train_seconds(summary, args.trainer), "command_s": wall}


def comm_worker(args) -> None:
    """One rank of the communication measurement (started by torchrun)."""
    import torch

    torch.set_num_threads(1)
    from improved_gan.train import distributed

    with distributed.session("cpu", 300) as ctx:
        times = {}
        for phase in ("local", "distributed", "local2", "distributed2"):
            distributed.barrier(ctx)
            phase_fn = _toy_phase if args.trainer == "toy" else _ssl_phase
            times[phase] = phase_fn(args, ctx if phase.startswith("distributed") else None, ctx)
        per_rank = [None] * ctx.world_size
        torch.distributed.all_gather_object(per_rank, times)
        if ctx.is_main:
            Path(args.comm_out).write_text(json.dumps(per_rank))


def _toy_phase(args, ctx, world) -> float:
    from improved_gan.data.toy import parse_target
    from improved_gan.experiments import toy
    from improved_gan.techniques.selection import parse_techniques
    from improved_gan.train.rundir import RunDir

    batch = args.batch_size if ctx is not None else args.batch_size // world.world_size
    opts = toy.Options(steps=args.steps, batch_size=batch, technique=args.technique, frames=2,
                       eval_samples=200, log_every=10 ** 9)
    t0 = time.perf_counter()
    toy.train_variant(opts, parse_target(opts.target), parse_techniques(opts.technique),
                      RunDir("/nonexistent", enabled=False), ctx)  # ctx None: this rank alone, no collectives
    return time.perf_counter() - t0


def _ssl_phase(args, ctx, world) -> float:
    """The semi-supervised trainer's iterations alone (construction and evaluation excluded)."""
    import torch

    from improved_gan.config import build_options
    from improved_gan.experiments import ssl
    from improved_gan.experiments.ssl_train import SSLTrainer

    batch = args.batch_size if ctx is not None else args.batch_size // world.world_size
    o = build_options(ssl.Options, {"batch_size": batch, "iters_per_epoch": args.steps, "epochs": 1,
                                    "threads": 1, "progress": False})
    device = torch.device("cpu")
    x_unl, x_lab, y_lab, x_init, _, _ = ssl._load(o, device)
    tr = SSLTrainer(o, x_unl, x_lab, y_lab, x_init, device, ctx)
    tr.plan_epoch()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        tr.train_step()
    return time.perf_counter() - t0


def comm_per_step(args, tmp: Path) -> dict:
    out = tmp / "comm.json"
    cmd = [TORCHRUN, "--nproc_per_node", "2", "--master_port", str(_port()), __file__, "--comm-worker",
           "--comm-out", str(out), "--trainer", args.trainer, "--steps", str(args.steps), "--batch-size",
           str(args.batch_size), "--technique", args.technique]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"communication run failed:\n{proc.stderr[-3000:]}")
    ranks = json.loads(out.read_text())
    local = [min(r["local"], r["local2"]) / args.steps for r in ranks]
    dist = [min(r["distributed"], r["distributed2"]) / args.steps for r in ranks]
    return {"per_rank": ranks, "local_step_ms": 1e3 * max(local), "distributed_step_ms": 1e3 * max(dist),
            "comm_ms_per_step": 1e3 * max(d - lo for d, lo in zip(dist, local, strict=True))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", choices=("toy", "ssl"), default="toy")
    parser.add_argument("--steps", type=int, default=None, help="iterations (default: toy 300, ssl 100)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="global batch (default: toy 128, ssl 100)")
    parser.add_argument("--technique", default=TOY_TECHNIQUE, help="toy trainer: techniques")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "distributed.json"))
    parser.add_argument("--comm-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--comm-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (300 if args.trainer == "toy" else 100)
    args.batch_size = args.batch_size or (128 if args.trainer == "toy" else 100)
    if args.comm_worker:
        comm_worker(args)
        return 0

    layouts = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1),
               "1 process x 1 thread (reference)": (1, 1)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        samples = {name: [] for name in layouts}
        for rep in range(args.repeats):  # interleaved, so that load changes hit both layouts
            for name, (p, t) in layouts.items():
                samples[name].append(run_layout(args, p, t, tmp, f"{p}x{t}-{rep}"))
        comm = comm_per_step(args, tmp)
    for name, runs in samples.items():
        train = statistics.median(r["train_s"] for r in runs)
        rows.append({"layout": name, "train_s": train, "steps_per_s": args.steps / train,
                     "samples_per_s": args.steps * args.batch_size / train,
                     "command_s": statistics.median(r["command_s"] for r in runs)})
    ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
    load = os.getloadavg()
    result = {"trainer": args.trainer, "steps": args.steps, "global_batch": args.batch_size,
              "technique": args.technique if args.trainer == "toy" else None, "repeats": args.repeats,
              "layouts": rows, "speedup_2proc_vs_1proc": ratio, "communication": comm,
              "loadavg": load, "cpus": os.cpu_count()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")

    print(f"trainer {args.trainer}, {args.steps} steps, global batch {args.batch_size}, "
          f"median of {args.repeats}; load average {load[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| layout | training loop (s) | steps/s | samples/s | whole command (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layout']} | {r['train_s']:.2f} | {r['steps_per_s']:.1f} | {r['samples_per_s']:.0f} | "
              f"{r['command_s']:.1f} |")
    print(f"\n2 processes / 1 process throughput: {ratio:.2f}x")
    print(f"per step on 2 ranks: local compute only {comm['local_step_ms']:.2f} ms, distributed "
          f"{comm['distributed_step_ms']:.2f} ms, communication {comm['comm_ms_per_step']:.2f} ms")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
