"""Speed of one semi-supervised training iteration (D step + G step) against torch.matmul.

    .venv/bin/python bench/ssl_speed.py [--threads 1 2] [--iters 30] [--device cpu] [--profile]

FLOPs of one iteration are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products,
forward and backward, as executed) for the default recipe (batch 100 labeled + 100 unlabeled + 100
generated; D 784-1000-500-250-250-250-10, G 100-500-500-784). Achieved GFLOP/s = the FLOPs of the
optimised iteration / its median wall time, printed next to the GFLOP/s of ``torch.matmul`` on 2048x2048
float32 matrices measured in the same run with the same thread count.

"before" is a plain port: three separate D forward passes in the D step, D's parameters keeping
``requires_grad`` (so D's weight gradients are computed and thrown away) in the G step, D's weight
normalisation recomputed for each pass, per-parameter (for-loop) Adam. "after" is the trainer of
``improved_gan.experiments.ssl_train``: one batched D pass, D frozen in the G step with its
weights computed once, foreach Adam and EMA. "after + compiled update" is the same trainer with
``compile_update`` (Adam and the EMA fused into one pass per parameter by ``torch.compile``; the
compilation happens in the warm-up iterations, outside the timing). All compute the same losses.

"its matrix products alone" replays the optimised iteration's matrix products (same shapes and strides,
forward and backward, recorded with a dispatch mode) without anything else: the ceiling of any iteration
of this recipe at these batch sizes, whatever is fused.

``--profile`` also prints where the optimised iteration's time goes (``torch.profiler``, self CPU time
of each operator, grouped: matrix products, Gaussian noise, optimizer and EMA updates, weight norm,
the rest).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from improved_gan.config import build_options
from improved_gan.experiments.ssl import Options
from improved_gan.experiments.ssl_train import SSLTrainer
from improved_gan.techniques import semi_supervised as sl
from improved_gan.techniques.feature_matching import feature_matching_loss


def make_trainer(device: torch.device, **options) -> SSLTrainer:
    o = build_options(Options, {"iters_per_epoch": 10_000, **options})
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6000, 784), dtype=torch.uint8, generator=g).to(device)
    y = (torch.arange(6000) % 10).to(device)
    tr = SSLTrainer(o, x, x[:100], y[:100], x[:500], device)
    tr.plan_epoch()
    return tr


def naive_step(tr: SSLTrainer, opt_d, opt_g) -> None:
    """The plain port: same losses, computed the straightforward way."""
    D, G, b = tr.D, tr.G, tr.o.batch_size
    x_lab = tr._float(tr._batch("lab", tr.x_lab))
    y_lab = tr._batch("lab", tr.y_lab)
    x_unl = tr._float(tr._batch("unl", tr.x_train))
    with torch.no_grad():
        fake = G(tr.sample_z(b))
    losses = sl.discriminator_loss(D(x_lab).logits, y_lab, D(x_unl).logits, D(fake).logits)
    opt_d.zero_grad()
    losses["loss"].backward()
    opt_d.step()
    tr.ema.update(tr.d_params)
    fake = G(tr.sample_z(b))
    real = tr._float(tr._batch("unl2", tr.x_train))
    loss_g = feature_matching_loss(D(real).features.detach(), D(fake).features)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    tr.pos = (tr.pos + 1) % tr.iters


def timed(fn, iters: int, sync) -> float:
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_gflops(device: torch.device, sync, repeats: int = 10) -> float:
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    dt = timed(lambda: a @ b, repeats, sync)
    return 2 * 2048 ** 3 / dt / 1e9


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


MATMUL_OPS = ("mm", "addmm", "bmm")
CEILING = "its matrix products alone (ceiling)"


def record_matmuls(fn) -> list[tuple]:
    """The matrix products one call of ``fn`` executes: (aten op, [(shape, stride) of each tensor
    argument], other arguments), in order, forward and backward."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls: list[tuple] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in MATMUL_OPS:
                calls.append((func, [(tuple(x.shape), tuple(x.stride())) if isinstance(x, torch.Tensor)
                                     else x for x in args], dict(kwargs or {})))
            return func(*args, **(kwargs or {}))

    with Recorder():
        fn()
    return calls


def matmul_replay(calls: list[tuple], device: torch.device):
    """A function that runs the recorded matrix products alone, on random tensors of the same shapes
    and strides: the time the iteration would take if everything but its matrix products were free."""
    def make(arg):
        if isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[0], tuple):
            shape, stride = arg
            return torch.empty_strided(shape, stride, device=device).normal_()
        return arg
    prepared = [(func, [make(x) for x in args], kwargs) for func, args, kwargs in calls]

    def run():
        for func, args, kwargs in prepared:
            func(*args, **kwargs)
    return run


GROUPS = {  # group -> operators (self CPU time), for --profile
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"),
    "Gaussian noise (normal_)": ("aten::normal_",),
    "weight norm": ("aten::_weight_norm_interface", "aten::_weight_norm_interface_backward"),
}


def profile_shares(fn, iters: int) -> list[tuple[str, float]]:
    """(group, share of the CPU time) over ``iters`` calls of ``fn``: the operators of GROUPS by self time,
    the optimizers' ``step`` by their total time (every elementwise op inside them), the rest."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            fn()
    events = prof.key_averages()
    whole = sum(ev.self_cpu_time_total for ev in events) or 1.0
    totals = {g: sum(ev.self_cpu_time_total for ev in events if ev.key in names) for g, names in GROUPS.items()}
    totals["optimizer steps (Adam, elementwise)"] = sum(ev.cpu_time_total for ev in events
                                                        if ev.key.startswith("Optimizer.step#"))
    totals["everything else (EMA, ReLU, losses, copies...)"] = whole - sum(totals.values())
    return [(g, t / whole) for g, t in totals.items()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--device", default="cpu")
    p.add_argument("--profile", action="store_true", help="also print where the iteration's time goes")
    a = p.parse_args()
    device = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    rows: list[dict] = []
    print("| threads | variant | FLOPs/iter (counted) | ms/iter | GFLOP/s | matmul 2048² GFLOP/s "
          "| % of matmul |")
    print("|---|---|---|---|---|---|---|")
    for threads in a.threads:
        torch.set_num_threads(threads)
        tr = make_trainer(device)
        opt_d = torch.optim.Adam(tr.d_params, lr=3e-3, betas=(0.5, 0.999), foreach=False)
        opt_g = torch.optim.Adam(tr.G.parameters(), lr=3e-3, betas=(0.5, 0.999), foreach=False)
        useful = count_flops(lambda: tr.train_step())  # noqa: B023
        tr_c = make_trainer(device, compile_update=True)
        variants = {"before": (lambda: naive_step(tr, opt_d, opt_g)),  # noqa: B023
                    "after": (lambda: tr.train_step()),  # noqa: B023
                    "after + compiled update": (lambda: tr_c.train_step()),  # noqa: B023
                    CEILING: matmul_replay(record_matmuls(lambda: tr.train_step()), device)}  # noqa: B023
        # the last two do the matrix products of "after" (counting them under FlopCounterMode would
        # compile the update inside that mode and leave a slower graph behind)
        flops = {"before": count_flops(variants["before"]), "after": useful, "after + compiled update": useful,
                 CEILING: useful}
        mm = matmul_gflops(device, sync)
        for name, fn in variants.items():
            dt = timed(fn, a.iters, sync)
            rate = useful / dt / 1e9
            print(f"| {threads} | {name} | {flops[name] / 1e9:.2f} G | {dt * 1e3:.1f} | {rate:.1f} "
                  f"| {mm:.1f} | {100 * rate / mm:.0f}% |", flush=True)
            rows.append({"threads": threads, "variant": name, "flops": flops[name], "ms_per_iter": dt * 1e3,
                         "gflops": rate, "matmul_gflops": mm, "fraction_of_matmul": rate / mm})
        mm_after = matmul_gflops(device, sync)
        print(f"  (matmul re-measured after the iterations: {mm_after:.1f} GFLOP/s; "
              "machine load shifts these)")
        if a.profile:
            shares = profile_shares(variants["after"], a.iters)
            print(f"  where the 'after' iteration's CPU time goes ({threads} thread(s)): "
                  + ", ".join(f"{g} {100 * share:.0f}%" for g, share in shares), flush=True)
            rows.append({"threads": threads, "variant": "after", "profile": dict(shares)})
    print("\nGFLOP/s of every variant use the FLOPs of the optimised iteration (the useful work).")
    out = Path(__file__).resolve().parent / "results" / "ssl_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": a.device, "iters": a.iters, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
