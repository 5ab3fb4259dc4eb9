"""End to end: ``improved-gan toy --compare`` with few steps, determinism, and the report's figures."""

import json
import math
import re
from pathlib import Path

import pytest

from improved_gan import cli

QUICK = ["--steps", "60", "--log-every", "20", "--frames", "3", "--eval-samples", "500", "--batch-size", "32"]
VARIANTS = ("baseline", "feature-matching", "minibatch-discrimination")


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    assert cli.main(["toy", "--compare", "--out", str(out), "--seed", "3", *QUICK]) == 0
    return out


def test_compare_writes_every_artifact(compare_run):
    out = compare_run
    for name in ("config.json", "metrics.jsonl", "summary.json", "report.html", "comparison.png",
                 "metrics_table.md", "metrics_table.json"):
        assert (out / name).is_file(), name
    for v in VARIANTS:
        for suffix in ("distribution.png", "training.gif", "losses.png", "metrics.json", "metrics.md"):
            assert (out / f"{v}-{suffix}").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == set(VARIANTS)
    assert summary["seed"] == 3 and "torch" in summary["versions"]
    for metrics in summary["variants"].values():
        for key in ("w1", "ks", "js", "mean", "std", "d_flatness", "wall_time_s"):
            assert math.isfinite(metrics[key]), key
        assert 0 <= metrics["ks"] <= 1 and 0 <= metrics["js"] <= math.log(2) + 1e-9
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {line["variant"] for line in lines} == set(VARIANTS)
    assert all(line["step"] in (20, 40, 60) for line in lines)
    table = (out / "metrics_table.md").read_text().splitlines()
    assert table[0].startswith("| variant | w1 | ks |") and len(table) == 2 + len(VARIANTS)


def test_gif_has_fixed_size_frames(compare_run):
    from PIL import Image

    with Image.open(compare_run / "baseline-training.gif") as im:
        assert im.n_frames == 3
        sizes = set()
        for i in range(im.n_frames):
            im.seek(i)
            sizes.add(im.size)
        assert len(sizes) == 1


def test_report_references_every_figure(compare_run):
    html = (compare_run / "report.html").read_text()
    referenced = set(re.findall(r"<img src='([^']+)'", html))
    figures = {p.name for p in compare_run.iterdir() if p.suffix in (".png", ".gif")}
    assert figures and referenced == figures
    assert "<script" not in html and "http" not in html  # self-contained


def test_same_seed_same_numbers(compare_run, tmp_path):
    out = tmp_path / "again"
    assert cli.main(["toy", "--compare", "--out", str(out), "--seed", "3", *QUICK]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
    first = json.loads((compare_run / "metrics_table.json").read_text())
    second = json.loads((out / "metrics_table.json").read_text())
    assert strip(first) == strip(second)
    assert (compare_run / "metrics.jsonl").read_text() == (out / "metrics.jsonl").read_text()


def test_other_seed_other_numbers(compare_run, tmp_path):
    out = tmp_path / "other"
    assert cli.main(["toy", "--out", str(out), "--seed", "4", *QUICK]) == 0
    first = json.loads((compare_run / "metrics_table.json").read_text())[0]
    second = json.loads((Path(out) / "metrics_table.json").read_text())[0]
    assert first["variant"] == second["variant"] == "baseline"
    assert first["w1"] != second["w1"]


@pytest.mark.parametrize("technique", ["historical-averaging", "label-smoothing", "virtual-batch-norm",
                                       "feature-matching,minibatch-discrimination,label-smoothing"])
def test_every_technique_plugs_in(technique, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["toy", "--technique", technique, "--out", str(out), *QUICK, "--frames", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    (name,) = summary["variants"]
    assert name == technique.replace(",", "+")
    assert math.isfinite(summary["variants"][name]["w1"])


def test_pretraining_runs(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["toy", "--pretrain-steps", "50", "--out", str(out), *QUICK, "--frames", "2"]) == 0
