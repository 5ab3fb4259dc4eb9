"""The paper's sample-quality ablation (Salimans et al. 2016, Table 3) on MNIST / Fashion-MNIST.

``improved-gan ablation-quality --dataset fashion-mnist --seeds 0,1,2 --max-steps 1000`` trains every
variant below with the same budget, seeds and architecture through :mod:`improved_gan.experiments.quality`
(one run directory per variant and seed under ``OUT/``), then writes ``OUT/ablation.json``,
``OUT/ablation.md`` (score mean ± std over seeds, FID, KID, precision, recall, wall time),
``OUT/samples.png`` (a panel of samples per variant, first seed) and ``OUT/report.html``.

Variants (the paper's names; "labels" = the K+1 discriminator trained on the class labels):

=========  ====================================================================
all        minibatch discrimination + virtual batch norm + label smoothing + labels
-VBN+BN    as "all" with batch norm instead of virtual batch norm in G
-L+HA      as "all" without labels, with historical averaging
-LS        as "all" without one-sided label smoothing
-L         as "all" without labels
-MBF       as "all" without minibatch features
DCGAN      no technique, batch norm, no labels (the plain baseline)
=========  ====================================================================
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from improved_gan.config import build_options, option, to_dict
from improved_gan.errors import ConfigError
from improved_gan.experiments import quality
from improved_gan.experiments.classifier import DATASETS
from improved_gan.train.rundir import RunDir, default_run_path, write_json_atomic
from improved_gan.viz.quality import save_variant_panels
from improved_gan.viz.report import Section, markdown_table, write_report

MBD, VBN, LS, HA = ("minibatch-discrimination", "virtual-batch-norm", "label-smoothing",
                    "historical-averaging")
VARIANTS: dict[str, tuple[str, bool]] = {  # name -> (technique spec, labels)
    "all": (f"{MBD},{VBN},{LS}", True),
    "-VBN+BN": (f"{MBD},{LS}", True),
    "-L+HA": (f"{MBD},{VBN},{LS},{HA}", False),
    "-LS": (f"{MBD},{VBN}", True),
    "-L": (f"{MBD},{VBN},{LS}", False),
    "-MBF": (f"{VBN},{LS}", True),
    "DCGAN": ("baseline", False),
}
PAPER_CIFAR10 = {"real": 11.24, "all": 8.09, "-VBN+BN": 7.54, "-L+HA": 6.86, "-LS": 6.83, "-L": 4.36,
                 "-MBF": 3.87}
COLUMNS = ["variant", "seeds", "steps", "score", "fid", "kid", "precision", "recall", "wall_time_s",
           "paper_cifar10_score"]


@dataclasses.dataclass
class Options:
    dataset: str = option("fashion-mnist", "training images", choices=DATASETS)
    variants: tuple[str, ...] = option(tuple(VARIANTS), "variants to train, comma-separated")
    seeds: tuple[int, ...] = option((0,), "seeds, comma-separated (the paper's table: mean ± std over seeds)")
    epochs: int = option(1, "epochs per variant")
    max_steps: int = option(0, "steps per variant (0: epochs × steps per epoch)")
    eval_every: int = option(0, "snapshot every N steps (0: each epoch end)")
    eval_samples: int = option(10000, "generated samples for the final scores")
    threads: int = option(1, "torch CPU threads per run")
    out: str = option("", "output folder (default: runs/<time>-ablation-quality)")
    cache_dir: str = option("", "classifier cache (default: $IMPROVED_GAN_CACHE or runs/classifiers)")
    data_dir: str = option("", "dataset folder (default: $IMPROVED_GAN_DATA)")
    device: str = option("cpu", "torch device")
    extra: str = option("", "further quality options for every run, as JSON (e.g. '{\"train_subset\": 512}')")

    def check(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(f"unknown variants {unknown}; choose from: {', '.join(VARIANTS)}")
        if not self.seeds:
            raise ConfigError("give at least one seed")
        self.extra_options()

    def extra_options(self) -> dict:
        try:
            extra = json.loads(self.extra) if self.extra else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"option 'extra' is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise ConfigError("option 'extra' must be a JSON object of quality options")
        return extra


def _mean_std(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.3f} ± {arr.std():.3f}" if len(arr) > 1 else f"{arr[0]:.3f}"


def aggregate(name: str, summaries: list[dict]) -> dict:
    """One table row: means over seeds (± std over seeds when there are several; with one seed the
    score's ± is the std over its 10 splits)."""
    scores = [s["score_mean"] for s in summaries]
    score = (_mean_std(scores) if len(scores) > 1
             else f"{summaries[0]['score_mean']:.3f} ± {summaries[0]['score_std']:.3f} (splits)")
    return {"variant": name, "seeds": len(summaries), "steps": summaries[0]["steps"], "score": score,
            "score_values": scores, "fid": _mean_std([s["fid"] for s in summaries]),
            "kid": _mean_std([s["kid_mean"] for s in summaries]),
            "precision": _mean_std([s["precision"] for s in summaries]),
            "recall": _mean_std([s["recall"] for s in summaries]),
            "wall_time_s": float(np.mean([s["train_time_s"] for s in summaries])),
            "paper_cifar10_score": PAPER_CIFAR10.get(name, "")}


def run(options: Options) -> Path:
    o = options
    out = RunDir(o.out or default_run_path("ablation-quality"))
    out.write_config(to_dict(o))
    rows, grids, captions, raw = [], {}, {}, {}
    real = None
    start = time.time()
    # seed-major order: after each seed every variant has a run, so a stopped ablation is still a table
    for seed in o.seeds:
        for name in o.variants:
            technique, labels = VARIANTS[name]
            run_path = out.file(f"{name}-seed{seed}")
            values = {"dataset": o.dataset, "technique": technique, "labels": labels, "epochs": o.epochs,
                      "max_steps": o.max_steps, "eval_every": o.eval_every, "eval_samples": o.eval_samples,
                      "seed": seed, "out": str(run_path), "cache_dir": o.cache_dir, "data_dir": o.data_dir,
                      "device": o.device, "threads": o.threads, **o.extra_options()}
            summary_file = run_path / "summary.json"
            if not summary_file.is_file():  # finished runs are kept: rerunning the command continues
                if (run_path / "checkpoint.pt").is_file():  # an interrupted run resumes from its checkpoint
                    values = {"resume": str(run_path)}
                quality.run(build_options(quality.Options, values, source=f"ablation variant {name}"))
            last = json.loads(summary_file.read_text())
            print(f"{name} seed {seed}: score {last['score_mean']:.3f}, FID {last['fid']:.2f}", flush=True)
    for name in o.variants:
        summaries = [json.loads((out.file(f"{name}-seed{seed}") / "summary.json").read_text())
                     for seed in o.seeds]
        raw[name] = summaries
        rows.append(aggregate(name, summaries))
        last = summaries[0]["snapshots"][-1]
        grids[name] = out.file(f"{name}-seed{o.seeds[0]}") / f"samples-step{last:06d}.png"
        captions[name] = f"score {summaries[0]['score_mean']:.2f}, FID {summaries[0]['fid']:.1f}"
        real = (summaries[0]["real_score_mean"], summaries[0]["real_score_std"], summaries[0]["classifier"])
    table = markdown_table(rows, COLUMNS)
    header = (f"{o.dataset}: real test set score {real[0]:.3f} ± {real[1]:.3f} (the ceiling); classifier "
              f"{real[2]['hash']} (test accuracy {real[2]['test_accuracy']:.4f}); "
              f"{raw[o.variants[0]][0]['samples']} samples, 10 splits\n\n")
    out.file("ablation.md").write_text(header + table)
    write_json_atomic(out.file("ablation.json"), {"dataset": o.dataset, "options": to_dict(o), "rows": rows,
                                                  "real_score": real[:2], "classifier": real[2], "runs": raw,
                                                  "wall_time_s": time.time() - start})
    save_variant_panels(grids, out.file("samples.png"),
                        f"{o.dataset}: samples per variant (seed {o.seeds[0]})", captions)
    write_report(out.file("report.html"), f"Sample-quality ablation: {o.dataset}",
                 [Section("Ablation", header.strip(), rows=rows, columns=COLUMNS),
                  Section("Samples", figures=["samples.png"])], config=to_dict(o))
    print(header + table)
    return out.path
