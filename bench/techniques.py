"""Benchmark of the paper's batch-level techniques: minibatch discrimination (Section 3.2), chunked vs
naive, and virtual batch norm (Section 3.5) vs torch's batch norm.

    .venv/bin/python bench/techniques.py            # full run (naive N=1024 needs ~7 GB of RAM)
    .venv/bin/python bench/techniques.py --quick    # N in {64, 256}, fewer repetitions

What is measured, per configuration, forward + backward of the layer on a float32 CPU tensor:

- time: median (and min) wall time over ``--reps`` repetitions after one warm-up, the two
  implementations alternating in the same process so that machine noise hits both alike;
- peak memory, measured: the rise of the process's resident-set high-water mark during one forward +
  backward, each in a fresh subprocess: after the inputs are built and a warm-up, the mark is reset
  (``/proc/self/clear_refs``) and ``VmHWM − VmRSS`` is read afterwards (Linux). It counts every
  allocation torch makes (intermediates, saved tensors, gradients) as the OS sees it, at page
  granularity; it is not the allocator's exact peak (torch has no CPU peak counter);
- saved for backward, exact: bytes of the tensors autograd keeps between forward and backward
  (``torch.autograd.graph.saved_tensors_hooks``);
- largest intermediate, analytic: N·N·B·C floats for the naive form, chunk·N·B·C for the chunked one.

Ratios are naive / chunked (so > 1 means the chunked form is better) and VBN / BatchNorm, always from
the same run. Results go to ``bench/results/techniques.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from improved_gan.techniques.minibatch_discrimination import (
    MinibatchDiscrimination,
    _auto_chunk,
    minibatch_features_naive,
)
from improved_gan.techniques.virtual_batch_norm import VirtualBN, reference_pass

B, C, A = 100, 5, 192  # A = 192: the width of the features before the MBD layer in the authors' CIFAR-10 D
RESULTS = Path(__file__).resolve().parent / "results" / "techniques.json"


class NaiveMBD(MinibatchDiscrimination):
    """Same layer and parameters, o(x) through the full N×N×B×C tensor."""

    def forward(self, x):
        x = x.flatten(1)
        return torch.cat([x, minibatch_features_naive(self.project(x))], dim=1)


def make_layer(impl: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return (NaiveMBD if impl == "naive" else MinibatchDiscrimination)(A, num_kernels=B, kernel_dim=C)


def fwd_bwd(layer, x, grad):
    layer.zero_grad(set_to_none=True)
    x.grad = None
    layer(x).backward(grad)


def _status_mib(key: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) / 1024.0


def reset_peak_rss() -> float:
    """Reset the kernel's resident-set high-water mark to the current RSS; return that RSS (MiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def worker_memory(impl: str, n: int) -> dict:
    """Run in a fresh subprocess: peak RSS rise and saved-for-backward bytes of one forward+backward."""
    layer = make_layer(impl)
    x = torch.randn(n, A, requires_grad=True)
    grad = torch.randn(n, A + B)
    fwd_bwd(make_layer(impl), torch.randn(4, A, requires_grad=True), torch.randn(4, A + B))  # warm kernels
    saved = []
    before = reset_peak_rss()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel() * t.element_size()) or t,
                                                  lambda t: t):
        fwd_bwd(layer, x, grad)
    return {"peak_rss_rise_mib": _status_mib("VmHWM") - before, "saved_for_backward_mib": sum(saved) / 2**20}


def measure_memory(impl: str, n: int, threads: int) -> dict:
    code = (f"import json, sys, torch; torch.set_num_threads({threads}); "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import techniques as t; "
            f"print(json.dumps(t.worker_memory({impl!r}, {n})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_pair(fns: dict, reps: int) -> dict:
    """Run the callables in turn ``reps`` times after one warm-up, rotating which goes first (the
    position in a round measurably biases CPU timings); median and min seconds of each."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    items = list(fns.items())
    for rep in range(reps):
        for k, fn in items[rep % len(items):] + items[:rep % len(items)]:
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: {"median_s": statistics.median(v), "min_s": min(v)} for k, v in times.items()}


def bench_mbd(sizes, reps, threads) -> list[dict]:
    rows = []
    for n in sizes:
        layers = {impl: make_layer(impl) for impl in ("chunked", "naive")}
        x = torch.randn(n, A, requires_grad=True)
        grad = torch.randn(n, A + B)
        r = max(1, reps if n < 1024 else reps // 2)
        fns = {k: (lambda lay=lay, x=x, grad=grad: fwd_bwd(lay, x, grad)) for k, lay in layers.items()}
        t = time_pair(fns, r)
        mem = {impl: measure_memory(impl, n, threads) for impl in ("chunked", "naive")}
        chunk = _auto_chunk(n, B, C)
        row = {"N": n, "B": B, "C": C, "A": A, "reps": r, "chunk_rows": chunk,
               "largest_intermediate_mib": {"naive": n * n * B * C * 4 / 2**20,
                                            "chunked": chunk * n * B * C * 4 / 2**20},
               "time": t, "memory": mem,
               "speedup_naive_over_chunked": t["naive"]["median_s"] / t["chunked"]["median_s"],
               "rss_ratio_naive_over_chunked": mem["naive"]["peak_rss_rise_mib"]
               / max(mem["chunked"]["peak_rss_rise_mib"], 1e-9)}
        rows.append(row)
        print(f"  MBD N={n}: chunked {t['chunked']['median_s']:.3f}s naive {t['naive']['median_s']:.3f}s; "
              f"RSS rise chunked {mem['chunked']['peak_rss_rise_mib']:.0f} MiB naive "
              f"{mem['naive']['peak_rss_rise_mib']:.0f} MiB", flush=True)
    return rows


def bench_vbn(reps) -> list[dict]:
    rows = []
    for name, shape, bn_cls in (("1d", (256, 512), nn.BatchNorm1d), ("2d", (64, 64, 16, 16), nn.BatchNorm2d)):
        torch.manual_seed(0)
        feat = shape[1]
        vbn, bn = VirtualBN(feat), bn_cls(feat)
        ref = torch.randn(shape, requires_grad=True)  # reference activations (recomputed each step)
        x = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape)

        def clear(*tensors):
            for t in tensors:
                t.grad = None

        def run_bn(bn=bn, x=x, grad=grad):
            clear(x, *bn.parameters())
            bn(x).backward(grad)

        def run_vbn_step(vbn=vbn, ref=ref, x=x, grad=grad):  # a training step: reference pass + forward,
            clear(x, ref, *vbn.parameters())  # backward through both
            reference_pass(vbn, ref)
            vbn(x).backward(grad)

        def run_vbn_cached(vbn=vbn, ref=ref, x=x, grad=grad):  # reference statistics without a graph
            clear(x, ref, *vbn.parameters())
            with torch.no_grad():
                reference_pass(vbn, ref)
            vbn(x).backward(grad)

        t = time_pair({"batchnorm": run_bn, "vbn_step": run_vbn_step, "vbn_cached_ref": run_vbn_cached}, reps)
        base = t["batchnorm"]["median_s"]
        rows.append({"layer": name, "shape": list(shape), "reference_size": shape[0], "time": t,
                     "ratio_vbn_step_over_bn": t["vbn_step"]["median_s"] / base,
                     "ratio_vbn_cached_over_bn": t["vbn_cached_ref"]["median_s"] / base})
    return rows


def mnist_generator(norm) -> nn.Sequential:
    """The paper's MNIST generator size (100 → 500 → 500 → 784), ``norm`` after each hidden layer."""
    return nn.Sequential(nn.Linear(100, 500), norm(500), nn.Softplus(), nn.Linear(500, 500), norm(500),
                         nn.Softplus(), nn.Linear(500, 784), nn.Sigmoid())


def bench_vbn_network(reps) -> dict:
    """One generator forward + backward at batch 100; with VBN the step includes the reference pass of a
    fixed 100-example reference noise batch (Section 3.5), as :func:`gan_step.generate` does."""
    torch.manual_seed(0)
    g_bn, g_vbn = mnist_generator(nn.BatchNorm1d), mnist_generator(VirtualBN)
    z, z_ref = torch.randn(100, 100), torch.randn(100, 100)
    grad = torch.randn(100, 784)

    def run_bn():
        g_bn.zero_grad(set_to_none=True)
        g_bn(z).backward(grad)

    def run_vbn():
        g_vbn.zero_grad(set_to_none=True)
        reference_pass(g_vbn, z_ref)
        g_vbn(z).backward(grad)

    t = time_pair({"batchnorm": run_bn, "vbn": run_vbn}, reps)
    return {"network": "MNIST-size generator 100-500-500-784, batch 100, reference batch 100", "time": t,
            "ratio_vbn_over_bn": t["vbn"]["median_s"] / t["batchnorm"]["median_s"]}


def table(mbd, vbn, net) -> str:
    lines = ["| N | chunked time (s) | naive time (s) | naive/chunked time | chunked peak RSS rise (MiB) | "
             "naive peak RSS rise (MiB) | naive/chunked RSS | saved for backward chunked / naive (MiB) | "
             "largest intermediate chunked / naive (MiB) |", "|" + "---|" * 9]
    for r in mbd:
        t, m, li = r["time"], r["memory"], r["largest_intermediate_mib"]
        lines.append(f"| {r['N']} | {t['chunked']['median_s']:.3f} | {t['naive']['median_s']:.3f} | "
                     f"{r['speedup_naive_over_chunked']:.2f}x | {m['chunked']['peak_rss_rise_mib']:.0f} | "
                     f"{m['naive']['peak_rss_rise_mib']:.0f} | {r['rss_ratio_naive_over_chunked']:.1f}x | "
                     f"{m['chunked']['saved_for_backward_mib']:.2f} / "
                     f"{m['naive']['saved_for_backward_mib']:.0f} | "
                     f"{li['chunked']:.0f} / {li['naive']:.0f} |")
    lines += ["", "| VBN layer | input | BatchNorm (ms) | VBN step incl. reference pass (ms) | ratio | "
              "VBN with cached reference (ms) | ratio |", "|" + "---|" * 7]
    for r in vbn:
        t = r["time"]
        lines.append(f"| {r['layer']} | {tuple(r['shape'])} | {1e3 * t['batchnorm']['median_s']:.2f} | "
                     f"{1e3 * t['vbn_step']['median_s']:.2f} | {r['ratio_vbn_step_over_bn']:.2f}x | "
                     f"{1e3 * t['vbn_cached_ref']['median_s']:.2f} | {r['ratio_vbn_cached_over_bn']:.2f}x |")
    t = net["time"]
    lines += ["", "| generator step | BatchNorm1d (ms) | VirtualBN incl. reference pass (ms) | ratio |",
              "|---|---|---|---|",
              f"| {net['network']} | {1e3 * t['batchnorm']['median_s']:.2f} | "
              f"{1e3 * t['vbn']['median_s']:.2f} | {net['ratio_vbn_over_bn']:.2f}x |"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N in {64, 256} and fewer repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 7, quick 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier when shared)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reps = args.reps or (3 if args.quick else 7)
    sizes = (64, 256) if args.quick else (64, 256, 1024)
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}")
    mbd = bench_mbd(sizes, reps, args.threads)
    vbn = bench_vbn(max(reps, 5) * 4)
    net = bench_vbn_network(max(reps, 5) * 4)
    print(table(mbd, vbn, net))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python bench/techniques.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.write_text(json.dumps({"command": command.strip(), "torch": torch.__version__,
                                    "threads": torch.get_num_threads(), "cpu": cpu,
                                    "minibatch_discrimination": mbd, "virtual_batch_norm": vbn,
                                    "virtual_batch_norm_network": net}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
