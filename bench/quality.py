"""Sample-quality ablation benchmark (the paper's Table 3 at 28×28 scale) for MNIST / Fashion-MNIST.

    .venv/bin/python bench/quality.py --dataset fashion-mnist --seeds 0 --max-steps 800
    .venv/bin/python bench/quality.py --dataset mnist --seeds 0,1,2 --epochs 5      # the issue's target

Trains the classifier first when it is not cached (``improved-gan classifier``), then runs
``improved-gan ablation-quality`` with the given budget into bench/results/runs/quality-<dataset>-<tag>
(finished variants are kept, so rerunning the same command continues), prints the table and copies it
to bench/results/quality_<dataset>_<tag>.json and .md (git-ignored). Extra arguments after ``--`` go to
ablation-quality unchanged (e.g. ``-- --variants all,DCGAN``). Sets IMPROVED_GAN_DATA to ../shared/data
(relative to the repository) when it is unset, and OMP_NUM_THREADS=1.

    .venv/bin/python bench/quality.py --dataset mnist --seeds 0,1,2 --max-steps 500 --summarize

prints the table of the runs finished so far (while the benchmark is still running, or after it
was stopped), each variant over the seeds it has completed.

    .venv/bin/python bench/quality.py --dataset mnist --reference

prints the real-data reference numbers instead: the test set's score (the ceiling) and FID, KID,
precision and recall of the first 10,000 training images against the test set (the floor of a
perfect generator).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def summarize(out: Path) -> int:
    import json

    from improved_gan.experiments.ablation_quality import COLUMNS, VARIANTS, aggregate
    from improved_gan.viz.report import markdown_table

    rows = []
    for name in VARIANTS:
        done = sorted(out.glob(f"{name}-seed*/summary.json"))
        if done:
            rows.append(aggregate(name, [json.loads(p.read_text()) for p in done]))
    if not rows:
        print(f"no finished runs under {out}")
        return 1
    print(f"{out}: finished runs only (each variant over the seeds it has completed)\n")
    print(markdown_table(rows, COLUMNS))
    return 0


def reference(dataset: str) -> int:
    import json

    from improved_gan.experiments.classifier import load_images
    from improved_gan.metrics.classifier_cache import classifier_outputs, load_classifier
    from improved_gan.metrics.image_scores import inception_score, score_samples

    model, info = load_classifier(dataset)
    x_test, _ = load_images(dataset, "test")
    x_train, _ = load_images(dataset, "train")
    probs_test, feats_test = classifier_outputs(model, x_test)
    probs_train, feats_train = classifier_outputs(model, x_train[:10000])
    result = {"dataset": dataset, "classifier": info["hash"], "test_accuracy": info["test_accuracy"],
              "test_score": inception_score(probs_test),
              "train10k_vs_test": score_samples(probs_train, feats_train, feats_test)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"quality_{dataset}_reference.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--tag", default="", help="results name (default: derived from the budget)")
    p.add_argument("--reference", action="store_true", help="only the real-vs-real reference numbers")
    p.add_argument("--summarize", action="store_true", help="table of the finished runs; trains nothing")
    args = p.parse_args(argv)
    os.environ.setdefault("IMPROVED_GAN_DATA", str(ROOT.parent / "shared" / "data"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from improved_gan.cli import main as cli

    tag = args.tag or (f"s{args.max_steps}" if args.max_steps else f"e{args.epochs}") + \
        f"-seeds{args.seeds.replace(',', '_')}"
    out = RESULTS / "runs" / f"quality-{args.dataset}-{tag}"
    if args.summarize:
        return summarize(out)
    if cli(["classifier", "--dataset", args.dataset]) != 0:
        return 1
    if args.reference:
        return reference(args.dataset)
    code = cli(["ablation-quality", "--dataset", args.dataset, "--seeds", args.seeds, "--epochs",
                str(args.epochs), "--max-steps", str(args.max_steps), "--eval-every", str(args.eval_every),
                "--out", str(out), *extra])
    if code == 0:
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "ablation.json", RESULTS / f"quality_{args.dataset}_{tag}.json")
        shutil.copy(out / "ablation.md", RESULTS / f"quality_{args.dataset}_{tag}.md")
        print(f"results: {RESULTS / f'quality_{args.dataset}_{tag}.json'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
