"""Mode-collapse benchmark: the ablation (baseline, each technique alone, all together) on ring8 and
grid25 over 10 seeds, printed next to the published numbers it can be compared with.

    .venv/bin/python bench/modes.py                       # 10 seeds, both datasets, 2 worker processes
    .venv/bin/python bench/modes.py --seeds 3 --datasets ring8 --set steps=1000 --set d_hidden=256

Writes bench/results/modes-<dataset>[-<tag>].json (the ablation's table.json plus the command and the
wall time) and keeps every run directory under bench/results/runs/. Published numbers (not rerun here):
PacGAN Table 1 (Lin et al. 2018; 10 runs, mean ± std) and VEEGAN Table 1 (Srivastava et al. 2017; 5 runs).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from improved_gan.config import build_options
from improved_gan.experiments import ablation
from improved_gan.viz.report import markdown_table

ROOT = Path(__file__).resolve().parent
PUBLISHED = {  # as quoted in issue 5; "—" where that source's figure is not quoted there
    "ring8": [
        {"source": "PacGAN Table 1: GAN", "modes": "6.3 ± 0.5", "high-quality %": "98.2",
         "reverse KL": "0.45"},
        {"source": "PacGAN Table 1: PacGAN4", "modes": "7.8", "high-quality %": "95.9", "reverse KL": "0.07"},
        {"source": "VEEGAN Table 1: GAN", "modes": "1", "high-quality %": "—", "reverse KL": "—"},
    ],
    "grid25": [
        {"source": "PacGAN Table 1: GAN", "modes": "17.3 ± 0.8", "high-quality %": "94.8",
         "reverse KL": "0.70"},
        {"source": "PacGAN Table 1: PacGAN4", "modes": "24.8", "high-quality %": "93.6",
         "reverse KL": "0.04"},
        {"source": "VEEGAN Table 1: GAN", "modes": "3.3", "high-quality %": "—", "reverse KL": "—"},
    ],
}


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (the worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="ring8,grid25")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an ablation option (e.g. steps=2000, d_hidden=256, variants=...)")
    p.add_argument("--tag", default="", help="suffix of the result files (for non-default settings)")
    args = p.parse_args(argv)
    overrides = parse_set(args.set)
    results_dir = ROOT / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    command = "python bench/modes.py " + " ".join(sys.argv[1:] if argv is None else argv)
    total_start, total_cpu = time.time(), cpu_seconds()
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        suffix = f"-{args.tag}" if args.tag else ""
        out = results_dir / "runs" / f"modes-{dataset}{suffix}"
        values = {"dataset": dataset, "seeds": args.seeds, "workers": args.workers, "out": str(out),
                  **overrides}
        options = build_options(ablation.Options, values, source="bench/modes.py")
        started, cpu = time.time(), cpu_seconds()
        ablation.run(options)
        wall, cpu = time.time() - started, cpu_seconds() - cpu
        table = json.loads((out / "table.json").read_text())
        table.update({"command": command, "bench_wall_time_s": wall, "bench_cpu_time_s": cpu, "options": values})
        (results_dir / f"modes-{dataset}{suffix}.json").write_text(json.dumps(table, indent=1) + "\n")
        print(f"\n## {dataset}: {args.seeds} seeds, {options.steps} steps, wall time {wall:.0f} s "
              f"({args.workers} workers), CPU time {cpu:.0f} s\n")
        print((out / "table.md").read_text().split("\n\n", 1)[1])
        print("Published (other architectures and training budgets; same metric definitions):\n")
        print(markdown_table(PUBLISHED.get(dataset, []), ("source", "modes", "high-quality %", "reverse KL")))
        sys.stdout.flush()
    print(f"total wall time: {time.time() - total_start:.0f} s, CPU time {cpu_seconds() - total_cpu:.0f} s; "
          f"command: {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
