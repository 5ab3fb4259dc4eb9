"""Ablation on a 2-D mode-collapse benchmark: baseline, each technique alone, all together, over K seeds.

Every variant uses the same model, data and seeds.

Writes ``table.md`` and ``table.json`` (mean ± std over seeds of modes captured, high-quality %,
reverse KL, energy distance and wall time per variant), ``panels.png`` (the first seed's samples, one
panel per variant), ``summary.json``, ``metrics.jsonl`` (one line per run) and ``report.html``; each
run's own directory is ``DIR/<variant>/seed-S``. An interrupted ablation continues with the same command
(same ``--out``) or ``--resume DIR``: finished runs are kept (see :mod:`improved_gan.experiments.modes`).

"All together" is every technique at once: minibatch discrimination in D, virtual batch norm in G, one-
sided label smoothing and historical averaging in the losses, and feature matching as G's loss. They
are compatible here because D's ``features`` (what feature matching compares) include the minibatch
features, so minibatch discrimination still reaches G through the feature-matching loss.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

from improved_gan.config import option, to_dict
from improved_gan.errors import ConfigError
from improved_gan.experiments.modes import (
    TrainOptions,
    aggregate,
    check_same_options,
    describe,
    mixture_for,
    resumed_options,
    run_jobs,
)
from improved_gan.techniques.selection import TECHNIQUES, TechniqueSet, parse_techniques, split_variants
from improved_gan.train.rundir import RunDir, default_run_path, write_json_atomic
from improved_gan.viz.report import Section, markdown_table, write_report

METRICS = ("modes", "high_quality_pct", "reverse_kl", "energy_distance", "wall_time_s")
COLUMNS = ("variant", "modes", "high-quality %", "reverse KL", "energy dist.", "wall time (s)")


def default_variants() -> list[TechniqueSet]:
    """baseline; each technique alone; all together."""
    return ([TechniqueSet()] + [parse_techniques(name) for name in TECHNIQUES]
            + [parse_techniques(",".join(TECHNIQUES))])


@dataclasses.dataclass
class Options(TrainOptions):
    seeds: int = option(3, "number of seeds per variant: seed, seed+1, ..., seed+K-1")
    variants: str = option("", "variants separated by ';' (each 'baseline' or a comma-separated list); "
                           "default: baseline, each technique alone, all together")
    run_figures: bool = option(False, "also write every run's own figures, GIF and report (slower)")

    def check(self) -> None:
        super().check()
        variants = self.variant_list()
        labels = [v.label for v in variants]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"option 'variants': a variant is listed twice ({'; '.join(labels)})")

    def variant_list(self) -> list[TechniqueSet]:
        if not self.variants.strip():
            return default_variants()
        variants = split_variants(self.variants)
        if not variants:
            raise ConfigError("option 'variants' lists no variant; leave it empty for the default set")
        return variants


def short_label(t: TechniqueSet) -> str:
    return "all" if t == parse_techniques(",".join(TECHNIQUES)) else t.label


def fmt(stat: dict, digits: int) -> str:
    if math.isnan(stat["mean"]):
        return "n/a"
    text = f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    if stat["undefined"]:
        text += f" ({stat['undefined']} undefined)"
    return text


def table_rows(results: dict[str, dict]) -> list[dict]:
    """Markdown rows: mean ± std over seeds per variant."""
    rows = []
    for label, agg in results.items():
        rows.append({"variant": label, "modes": fmt(agg["modes"], 1),
                     "high-quality %": fmt(agg["high_quality_pct"], 1),
                     "reverse KL": fmt(agg["reverse_kl"], 3),
                     "energy dist.": fmt(agg["energy_distance"], 4),
                     "wall time (s)": fmt(agg["wall_time_s"], 1)})
    return rows


def run(options: Options) -> Path:
    options = resumed_options(options, Options)
    variants = options.variant_list()
    mixture = mixture_for(options)
    out = Path(options.out) if options.out else default_run_path("ablation")
    check_same_options(out, options)
    root = RunDir(out)
    root.write_config(to_dict(options))
    seeds = [options.seed + i for i in range(options.seeds)]
    jobs = [(v, s, out / short_label(v) / f"seed-{s}") for v in variants for s in seeds]
    started = time.time()
    results = run_jobs(options, jobs, figures=options.run_figures, desc=f"ablation {mixture.name}")
    wall = time.time() - started

    by_variant: dict[str, list[dict]] = {}
    for (v, _, _), r in zip(jobs, results, strict=True):
        by_variant.setdefault(short_label(v), []).append(r)
        root.log(variant=short_label(v), **{k: r[k] for k in ("seed", "num_modes", *METRICS,
                                                               "sliced_wasserstein")})
    aggregated = {label: aggregate(rs) for label, rs in by_variant.items()}
    rows = table_rows(aggregated)
    table_md = (f"Ablation on {mixture.name} ({mixture.num_modes} modes), {len(seeds)} seeds, "
                f"{options.steps} steps; mean ± std over seeds.\n\n" + markdown_table(rows, COLUMNS))
    root.file("table.md").write_text(table_md)
    techniques = {short_label(v): v.label for v in variants}
    table = {"dataset": mixture.name, "num_modes": mixture.num_modes, "seeds": seeds, "steps": options.steps,
             "total_wall_time_s": wall, "workers": options.workers,
             "variants": {label: {"techniques": techniques[label], **agg}
                          for label, agg in aggregated.items()}}
    write_json_atomic(root.file("table.json"), table)

    from improved_gan.viz.modes import variant_panels

    panels = [(label, rs[0]["samples"], rs[0]["captured"], f"seed {rs[0]['seed']}: {describe(rs[0])}")
              for label, rs in by_variant.items()]
    import numpy as np

    variant_panels(root.file("panels.png"), [(a, np.asarray(b), c, d) for a, b, c, d in panels], mixture,
                   f"{mixture.name}: final samples per variant (first seed); circles are 3σ")
    root.write_summary({"dataset": mixture.name, "total_wall_time_s": wall, "table": table["variants"]},
                       seed=options.seed)
    sections = [Section(f"Ablation on {mixture.name}", table_md.split("\n\n")[0], rows=rows, columns=COLUMNS),
                Section("Final samples", figures=("panels.png",)),
                Section("table.json", code=json.dumps(table["variants"], indent=1)[:20000])]
    write_report(root.file("report.html"), f"Ablation: {mixture.name}", sections, config=to_dict(options))
    return out
