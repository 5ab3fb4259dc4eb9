"""End-to-end: a short ``modes`` run and a short ``ablation`` (few steps, 2 seeds), plus bad inputs."""

import json
import math

import pytest
import torch

from improved_gan.cli import main
from improved_gan.config import build_options
from improved_gan.errors import ConfigError
from improved_gan.experiments import ablation, modes
from improved_gan.models.mlp2d import MLPConfig, build_models
from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination
from improved_gan.techniques.selection import parse_techniques
from improved_gan.techniques.virtual_batch_norm import VirtualBN

FAST = dict(steps=30, g_hidden=16, d_hidden=16, mbd_kernels=4, mbd_kernel_dim=3, num_samples=300, evals=3,
            device="cpu")


def test_models_switch_layers_on_by_configuration():
    G, D = build_models(parse_techniques("baseline"), MLPConfig())
    assert not any(isinstance(m, (VirtualBN, MinibatchDiscrimination)) for m in [*G.modules(), *D.modules()])
    both = parse_techniques("minibatch-discrimination,virtual-batch-norm")
    G, D = build_models(both, MLPConfig(mbd_kernels=20))
    assert sum(isinstance(m, VirtualBN) for m in G.modules()) == 4
    assert isinstance(D.mbd, MinibatchDiscrimination)
    out = D(torch.randn(7, 2))
    assert out.logits.shape == (7,) and out.features.shape == (7, 128 + 20)


def test_modes_end_to_end(tmp_path):
    out = tmp_path / "run"
    rc = main(["modes", "--dataset", "ring8", "--technique", "minibatch-discrimination,label-smoothing",
               "--seeds", "2", "--out", str(out), *sum(([f"--{k.replace('_', '-')}", str(v)]
                                                       for k, v in FAST.items()), [])])
    assert rc == 0
    for name in ("config.json", "summary.json", "metrics.jsonl", "report.html"):
        assert (out / name).is_file(), name
    for seed in (0, 1):
        d = out / f"seed-{seed}"
        for name in ("scatter.png", "density.png", "training.gif", "curves.png", "summary.json",
                     "metrics.jsonl", "report.html", "checkpoint.pt"):
            assert (d / name).is_file() and (d / name).stat().st_size > 0, (seed, name)
        lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines] == [10, 20, 30]
        s = json.loads((d / "summary.json").read_text())
        assert 0 <= s["modes"] <= 8 and 0 <= s["high_quality_pct"] <= 100 and s["energy_distance"] >= 0
        assert s["technique"] == "minibatch-discrimination+label-smoothing"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 2 and len(summary["modes"]["values"]) == 2
    assert 0 <= summary["modes"]["mean"] <= 8
    html = (out / "report.html").read_text()
    assert "seed-1/scatter.png" in html


def test_vbn_reference_batch_is_stored(tmp_path):
    opts = build_options(modes.Options, {**FAST, "technique": "virtual-batch-norm", "steps": 5, "evals": 1})
    r = modes.train_one(opts, parse_techniques("virtual-batch-norm"), 3, tmp_path / "s", figures=False)
    ckpt = torch.load(tmp_path / "s" / "checkpoint.pt", weights_only=False)
    assert ckpt["reference_noise"].shape == (100, 2)
    assert ckpt["options"]["technique"] == "virtual-batch-norm" and r["seed"] == 3


def test_ablation_end_to_end(tmp_path):
    out = tmp_path / "abl"
    opts = build_options(ablation.Options, {**FAST, "dataset": "grid25", "seeds": 2, "out": str(out),
                                            "variants": "baseline;minibatch-discrimination"})
    assert ablation.run(opts) == out
    md = (out / "table.md").read_text().strip().splitlines()
    header = [c.strip() for c in md[2].strip("|").split("|")]
    assert header == list(ablation.COLUMNS)
    assert len(md) == 2 + 2 + 2  # caption, blank line, header, rule, 2 variants
    table = json.loads((out / "table.json").read_text())
    assert set(table["variants"]) == {"baseline", "minibatch-discrimination"}
    for v in table["variants"].values():
        assert len(v["modes"]["values"]) == 2
        assert 0 <= v["modes"]["mean"] <= 25 and 0 <= v["high_quality_pct"]["mean"] <= 100
        assert math.isnan(v["reverse_kl"]["mean"]) or 0 <= v["reverse_kl"]["mean"] <= math.log(25) + 1e-9
    assert (out / "panels.png").is_file() and (out / "report.html").is_file()
    assert (out / "minibatch-discrimination" / "seed-1" / "summary.json").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4


def test_default_variants_are_baseline_each_alone_and_all():
    labels = [ablation.short_label(v) for v in ablation.default_variants()]
    assert labels[0] == "baseline" and labels[-1] == "all" and len(labels) == 7


@pytest.mark.parametrize("values", [
    {"dataset": "ring9"}, {"technique": "dropout"}, {"technique": "baseline,label-smoothing"},
    {"steps": 0}, {"std": -1.0}, {"lr": 0.0}, {"batch_size": 1}, {"device": "cuda:7"} if not
    torch.cuda.is_available() else {"device": "warp-drive"}, {"dataset": "mixture:1,0"},
])
def test_bad_options(values):
    with pytest.raises(ConfigError):
        build_options(modes.Options, values)


def test_bad_ablation_variants():
    with pytest.raises(ConfigError):
        build_options(ablation.Options, {"variants": "baseline;baseline"})
    with pytest.raises(ConfigError):
        build_options(ablation.Options, {"variants": "baseline;nonsense"})


def test_cli_reports_bad_input_without_traceback(capsys):
    assert main(["modes", "--dataset", "ring9", "--steps", "1"]) == 2
    assert "unknown dataset 'ring9'" in capsys.readouterr().err


def test_one_dimensional_mixture(tmp_path):
    opts = build_options(modes.Options, {**FAST, "dataset": "mixture:0.5,-2,0.2;0.5,2,0.2", "seeds": 1,
                                         "out": str(tmp_path / "m1")})
    out = modes.run(opts)
    s = json.loads((out / "seed-0" / "summary.json").read_text())
    assert s["num_modes"] == 2 and 0 <= s["modes"] <= 2
    assert (out / "seed-0" / "scatter.png").is_file()


def _metric_values(table: dict) -> dict:
    return {name: {k: v[k]["values"] for k in ("modes", "high_quality_pct", "reverse_kl", "energy_distance")}
            for name, v in table["variants"].items()}


def _cli_args(values: dict) -> list[str]:
    return sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in values.items()), [])


def test_ablation_resume_keeps_finished_runs_and_retrains_the_rest(tmp_path):
    values = {**FAST, "dataset": "ring8", "seeds": 2, "variants": "baseline;minibatch-discrimination"}
    clean, cut = tmp_path / "clean", tmp_path / "cut"
    assert main(["ablation", *_cli_args({**values, "out": clean})]) == 0
    assert main(["ablation", *_cli_args({**values, "out": cut})]) == 0
    # the state a kill leaves behind: one run without its summary (not finished), one never started
    (cut / "minibatch-discrimination" / "seed-0" / "summary.json").unlink()
    for name in ("summary.json", "samples.npy", "config.json"):
        (cut / "minibatch-discrimination" / "seed-1" / name).unlink()
    (cut / "table.json").unlink()
    kept = cut / "baseline" / "seed-1" / "summary.json"
    stamp = kept.stat().st_mtime_ns
    assert main(["ablation", "--resume", str(cut)]) == 0
    assert kept.stat().st_mtime_ns == stamp  # a finished run is not trained again
    a, b = (json.loads((d / "table.json").read_text()) for d in (clean, cut))
    assert _metric_values(a) == _metric_values(b)


def test_ablation_resume_after_kill_9(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    values = {**FAST, "dataset": "ring8", "seeds": 2, "steps": 400, "variants": "baseline;label-smoothing"}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    cmd = [sys.executable, "-m", "improved_gan", "ablation", *_cli_args({**values, "out": killed})]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(killed.glob("*/seed-*/summary.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    interrupted = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert interrupted, "the ablation finished before it could be killed"
    assert not (killed / "table.json").exists()
    assert main(["ablation", "--resume", str(killed)]) == 0
    assert main(["ablation", *_cli_args({**values, "out": clean})]) == 0
    a, b = (json.loads((d / "table.json").read_text()) for d in (clean, killed))
    assert _metric_values(a) == _metric_values(b)


def test_continuing_a_run_directory_with_other_options_is_refused(tmp_path, capsys):
    values = {**FAST, "dataset": "ring8", "seeds": 1, "technique": "baseline"}
    out = tmp_path / "m"
    assert main(["modes", *_cli_args({**values, "out": out})]) == 0
    before = (out / "seed-0" / "summary.json").read_text()
    assert main(["modes", *_cli_args({**values, "steps": 31, "out": out})]) == 2
    err = capsys.readouterr().err
    assert "steps=30 there, 31 now" in err and "--resume" in err
    assert (out / "seed-0" / "summary.json").read_text() == before
    assert json.loads((out / "config.json").read_text())["steps"] == 30
    assert main(["modes", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "no config.json" in capsys.readouterr().err
