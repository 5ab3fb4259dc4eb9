"""Semi-supervised MNIST / Fashion-MNIST benchmark in the format of the paper's Table 1.

    .venv/bin/python bench/ssl_mnist.py --labels 100 --seeds 3 --epochs 300 [--dataset fashion-mnist]
        [--supervised] [--parallel 2] [--threads 1] [-- extra ssl options]
    .venv/bin/python bench/ssl_mnist.py --summarize bench/results/runs/ssl-mnist-100-s1 ... [--at 1 50 100]

Runs ``improved-gan ssl`` once per seed (seed s uses --seed s --data-seed s, so both the labeled subset
and the initialisation vary), ``--parallel`` at a time, prints each epoch's test errors as they come,
then a table: test errors out of 10,000 (current D and EMA of D; mean ± std and median over seeds),
epochs, wall time, and the time to reach 200 / 150 / 100 errors. ``--supervised`` also runs the
supervised-only baseline (same D, same labeled images, no G), ``--only-supervised`` runs it alone, for
``--supervised-epochs`` epochs if given. Partial runs can be summarised at any
time with ``--summarize``. Writes bench/results/ssl_<dataset>_<labels>.json (git-ignored).
Sets IMPROVED_GAN_DATA to ../shared/data (relative to the repository) when it is unset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAPER = {20: "1677 ± 452", 50: "221 ± 136", 100: "93 ± 6.5", 200: "90 ± 4.2"}


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def first_reach(rows: list[dict], key: str, threshold: int) -> str:
    for r in rows:
        if r[key] <= threshold:
            return f"ep {r['epoch']:g} / {r['elapsed_s'] / 60:.0f} min"
    return "—"


def mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def summarize(runs: list[Path], title: str) -> dict:
    per_run = []
    for run in runs:
        rows = read_metrics(run)
        if not rows:
            continue
        last = rows[-1]
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
        per_run.append({
            "run": str(run), "seed": config.get("seed"), "supervised_only": config.get("supervised_only"),
            "epochs": last["epoch"], "errors": last["test_errors"], "errors_ema": last["test_errors_ema"],
            "best_ema": min(r["test_errors_ema"] for r in rows), "best": min(r["test_errors"] for r in rows),
            "wall_s": last["elapsed_s"],
            "s_per_epoch": last["elapsed_s"] / max(last["epoch"], 1e-9),
            "reach": {str(t): {"current": first_reach(rows, "test_errors", t),
                               "ema": first_reach(rows, "test_errors_ema", t)} for t in (200, 150, 100)},
            "finished": (run / "summary.json").exists(),
        })
    print(f"\n## {title}\n")
    print("| run | seed | epochs | test errors (current D) | test errors (EMA) | best D | best EMA "
          "| wall time | s/epoch | reach 200 (EMA) | reach 150 (EMA) | reach 100 (EMA) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in per_run:
        state = "" if r["finished"] else " (unfinished)"
        print(f"| {Path(r['run']).name}{state} | {r['seed']} | {r['epochs']:g} | "
              f"{r['errors']} | {r['errors_ema']} | {r['best']} | {r['best_ema']} | "
              f"{r['wall_s'] / 60:.1f} min | "
              f"{r['s_per_epoch']:.0f} | {r['reach']['200']['ema']} | {r['reach']['150']['ema']} | "
              f"{r['reach']['100']['ema']} |")
    cur = [r["errors"] for r in per_run]
    ema = [r["errors_ema"] for r in per_run]
    if per_run:
        print(f"\nover {len(per_run)} run(s): current D {mean_std(cur)} (median {statistics.median(cur):g}), "
              f"EMA {mean_std(ema)} (median {statistics.median(ema):g})")
    return {"title": title, "runs": per_run,
            "current": {"mean_std": mean_std(cur), "median": statistics.median(cur) if cur else None},
            "ema": {"mean_std": mean_std(ema), "median": statistics.median(ema) if ema else None}}


def at_epochs(runs: list[Path], epochs: list[int]) -> None:
    """A table of test errors (current D / EMA) at the given epochs, one column per run, plus the last."""
    curves = {run.name: {r["epoch"]: r for r in read_metrics(run)} for run in runs}

    def line(label: str, rows: list[dict | None]) -> None:
        cells = (f"{r['test_errors']} / {r['test_errors_ema']}" if r else "" for r in rows)
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("\n| epoch | " + " | ".join(f"{name} D / EMA" for name in curves) + " |")
    print("|---" * (len(curves) + 1) + "|")
    for e in epochs:
        line(str(e), [c.get(e) for c in curves.values()])
    lasts = [c[max(c)] if c else None for c in curves.values()]
    line("last (" + " / ".join(f"{r['epoch']:g}" for r in lasts if r) + ")", lasts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--supervised", action="store_true", help="also run the supervised-only baseline")
    p.add_argument("--only-supervised", action="store_true", help="run the supervised-only baseline alone")
    p.add_argument("--supervised-epochs", type=int, default=0,
                   help="epochs of the baseline (default: --epochs; it converges in ~10)")
    p.add_argument("--parallel", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between progress lines")
    p.add_argument("--tag", default="", help="suffix of the run-directory names")
    p.add_argument("--summarize", nargs="+", metavar="RUN_DIR", help="only print the table of these runs")
    p.add_argument("--at", nargs="+", type=int, metavar="EPOCH",
                   help="with --summarize: also print each run's test errors (D / EMA) at these epochs")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `improved-gan ssl` options")
    a = p.parse_args()
    if a.summarize:
        summarize([Path(r) for r in a.summarize], "runs")
        if a.at:
            at_epochs([Path(r) for r in a.summarize], a.at)
        return 0
    env = dict(os.environ)
    env.setdefault("IMPROVED_GAN_DATA", str((ROOT / ".." / "shared" / "data").resolve()))
    extra = [x for x in a.extra if x != "--"]
    jobs = []
    kinds = [True] if a.only_supervised else [False, True] if a.supervised else [False]
    for supervised in kinds:
        for s in range(a.first_seed, a.first_seed + a.seeds):
            name = f"ssl-{a.dataset}-{a.labels}-s{s}{'-sup' if supervised else ''}{a.tag}"
            out = RESULTS / "runs" / name
            epochs = (a.supervised_epochs or a.epochs) if supervised else a.epochs
            cmd = [sys.executable, "-m", "improved_gan", "ssl", "--dataset", a.dataset,
                   "--labels", str(a.labels), "--seed", str(s), "--data-seed", str(s),
                   "--epochs", str(epochs), "--threads", str(a.threads), "--out", str(out), "--no-progress"]
            if supervised:
                cmd.append("--supervised-only")
            if (out / "checkpoint.pt").exists():  # continue an interrupted benchmark
                cmd = [sys.executable, "-m", "improved_gan", "ssl", "--resume", str(out)]
            jobs.append((name, out, cmd + extra if "--resume" not in cmd else cmd, supervised))
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} run(s), {a.parallel} at a time, {a.threads} thread(s) each; "
          f"IMPROVED_GAN_DATA={env['IMPROVED_GAN_DATA']}", flush=True)
    pending, running, seen = list(jobs), [], {}
    started = time.time()
    while pending or running:
        while pending and len(running) < a.parallel:
            name, out, cmd, sup = pending.pop(0)
            out.parent.mkdir(parents=True, exist_ok=True)
            log = open(out.parent / f"{name}.log", "a")
            print(f"start {name}: {' '.join(cmd)}", flush=True)
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
            running.append((name, out, proc, log))
        time.sleep(a.poll)
        for name, out, proc, log in list(running):
            for r in read_metrics(out)[seen.get(name, 0):]:
                print(f"[{(time.time() - started) / 60:6.1f} min] {name} epoch {r['epoch']:g}: test errors "
                      f"{r['test_errors']} (EMA {r['test_errors_ema']}), loss_lab {r['loss_lab']:.3f} "
                      f"loss_unl {r['loss_unl']:.3f} loss_gen {r['loss_gen']:.3f}, {r['epoch_time_s']:.0f} s",
                      flush=True)
                seen[name] = seen.get(name, 0) + 1
            if proc.poll() is not None:
                print(f"done {name}: exit {proc.returncode}", flush=True)
                running.remove((name, out, proc, log))
                log.close()
    result = {"dataset": a.dataset, "labels": a.labels, "epochs": a.epochs, "paper": PAPER.get(a.labels),
              "wall_s": time.time() - started}
    title = f"{a.dataset}, {a.labels} labels, semi-supervised (paper: {PAPER.get(a.labels)})"
    if not a.only_supervised:
        result["ssl"] = summarize([o for _, o, _, s in jobs if not s], title)
    if a.supervised or a.only_supervised:
        result["supervised_only"] = summarize([o for _, o, _, s in jobs if s],
                                              f"{a.dataset}, {a.labels} labels, supervised only")
    path = RESULTS / f"ssl_{a.dataset}_{a.labels}{a.tag}{'_supervised' if a.only_supervised else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
