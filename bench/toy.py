"""Benchmark of the 1D study: ``improved-gan toy --compare`` over several seeds, median of each metric.

    .venv/bin/python bench/toy.py --seeds 5            # defaults of `improved-gan toy`
    .venv/bin/python bench/toy.py --seeds 5 -- --steps 3000 --lr 1e-3   # extra toy options after --

Prints a Markdown table (median over seeds per variant, and how many seeds reach W1 <= 0.1) and writes
bench/results/toy.json. Expected with the defaults: feature matching and minibatch discrimination reach
W1 <= 0.1 to N(4, 0.5); a generator collapsed onto the mean scores 0.399.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from improved_gan import cli
from improved_gan.viz.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("w1", "ks", "js", "mean", "std", "d_flatness", "wall_time_s")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "toy.json"))
    args = parser.parse_args(argv)

    per_variant: dict[str, list[dict]] = {}
    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            out = Path(tmp) / f"seed{seed}"
            start, start_cpu = time.time(), time.process_time()
            code = cli.main(["toy", "--compare", "--seed", str(seed), "--out", str(out), *extra])
            if code != 0:
                return code
            wall.append(time.time() - start)
            cpu.append(time.process_time() - start_cpu)
            summary = json.loads((out / "summary.json").read_text())
            for name, metrics in summary["variants"].items():
                per_variant.setdefault(name, []).append(metrics)
            print(f"seed {seed}: " + ", ".join(f"{n} W1={m['w1']:.3f}" for n, m in summary["variants"].items())
                  + f"  (whole --compare: {wall[-1]:.1f} s wall, {cpu[-1]:.1f} s CPU)", flush=True)

    rows = []
    for name, runs in per_variant.items():
        row = {"variant": name}
        for key in METRICS:
            row[key] = statistics.median(r[key] for r in runs)
        row["seeds_w1<=0.1"] = f"{sum(r['w1'] <= 0.1 for r in runs)}/{len(runs)}"
        rows.append(row)
    print()
    print(f"median over {args.seeds} seeds (toy options: {' '.join(extra) or 'defaults'}); "
          f"--compare per seed: wall median {statistics.median(wall):.1f} s (max {max(wall):.1f} s), CPU time "
          f"median {statistics.median(cpu):.1f} s (max {max(cpu):.1f} s; one torch thread, so CPU time is the "
          "wall time on an idle machine)")
    print(markdown_table(rows, ("variant", *METRICS, "seeds_w1<=0.1"), digits=3))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"options": extra, "seeds": args.seeds, "median": rows,
                                           "per_seed": per_variant, "compare_wall_s": wall,
                                           "compare_cpu_s": cpu}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
