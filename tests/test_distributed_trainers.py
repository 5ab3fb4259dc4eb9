"""The 2-D, semi-supervised and image trainers on 2 gloo ranks for a few steps: they complete, rank 0 alone
writes, both ranks end with identical parameters (each trainer checks it before finishing), 2 ranks train
the same model as 1 process with the same command line, and ``--resume`` under 2 ranks continues exactly.

The 2-rank jobs of all three trainers start together (one fixture) to keep the wall time down."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _dist  # noqa: E402

from improved_gan import cli  # noqa: E402

HAVE_DATA = bool(os.environ.get("IMPROVED_GAN_DATA"))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="IMPROVED_GAN_DATA is not set (the Makefile points "
                                                      "it at the data)")

MODES = ["modes", "--steps", "5", "--evals", "1", "--batch-size", "32", "--num-samples", "200",
         "--device", "cpu", "--technique", "minibatch-discrimination,feature-matching,historical-averaging,"
         "label-smoothing"]
SSL = ["ssl", "--d-widths", "48,24", "--g-widths", "32", "--batch-size", "20", "--labels", "20",
       "--iters-per-epoch", "4", "--epochs", "2", "--test-subset", "200", "--train-subset", "400",
       "--init-size", "100", "--threads", "1", "--no-progress", "--no-samples",
       "--input-noise", "0", "--hidden-noise", "0"]  # D's Gaussian noise off: the run is deterministic
QUALITY = ["quality", "--dataset", "mnist", "--train-subset", "256", "--batch-size", "32", "--eval-every",
           "3", "--log-every", "2", "--checkpoint-every", "2", "--eval-samples", "200", "--curve-samples",
           "100", "--real-samples", "300", "--kid-subsets", "3", "--g-width", "8", "--d-width", "8",
           "--feature-dim", "32", "--minibatch-kernels", "8", "--vbn-reference", "16", "--threads", "1",
           "--labels", "--technique",
           "minibatch-discrimination,virtual-batch-norm,label-smoothing,historical-averaging,feature-matching"]


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_models_close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=atol), k


def _check(finished: list[_dist.Finished]) -> None:
    for f in finished:
        assert f.returncode == 0, f.output[-4000:]
    assert sum(f.output.count("run directory:") for f in finished) == 1  # rank 0 only


def _classifier_cache(root: Path) -> Path:
    from improved_gan.metrics.classifier_cache import FILE_NAME, classifier_dir, save_classifier
    from improved_gan.models.classifier28 import Classifier28

    torch.manual_seed(0)
    save_classifier(classifier_dir("mnist", root) / FILE_NAME, Classifier28(width=4, feature_dim=16).eval(),
                    "mnist", test_accuracy=0.1)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainers")
    quality = [*QUALITY, "--cache-dir", str(_classifier_cache(root / "cache"))]
    commands = {"modes": [*MODES, "--out", str(root / "modes2")]}
    if HAVE_DATA:
        commands["ssl"] = [*SSL, "--out", str(root / "ssl2")]
        commands["quality-full"] = [*quality, "--max-steps", "6", "--out", str(root / "quality-full")]
        commands["quality-part"] = [*quality, "--max-steps", "4", "--out", str(root / "quality-part")]
    started = {k: _dist.start(["-m", "improved_gan", *args]) for k, args in commands.items()}
    # the single-process references meanwhile, in this process
    assert cli.main([*MODES, "--out", str(root / "modes1")]) == 0
    if HAVE_DATA:
        assert cli.main([*SSL, "--out", str(root / "ssl1")]) == 0
    finished = {k: _dist.wait(procs, timeout=240) for k, procs in started.items()}
    return root, finished


def test_modes_two_ranks_equal_one_process(runs):
    root, finished = runs
    _check(finished["modes"])
    two, one = _state(root / "modes2/seed-0/checkpoint.pt"), _state(root / "modes1/seed-0/checkpoint.pt")
    for k in ("G", "D"):
        _assert_models_close(two[k], one[k], 2e-5)
    assert len((root / "modes2/seed-0/metrics.jsonl").read_text().splitlines()) == 1  # logged once
    assert json.loads((root / "modes2/summary.json").read_text())["runs"] == 1


@needs_data
def test_ssl_two_ranks_equal_one_process(runs):
    """Feature matching on global means and G's synchronised batch norm: 2 ranks × 10 rows per batch
    train the same D and G as 1 process × 20 rows."""
    root, finished = runs
    _check(finished["ssl"])
    two, one = _state(root / "ssl2/checkpoint.pt"), _state(root / "ssl1/checkpoint.pt")
    assert len(two["rank_rng"]) == 2 and two["trainer"]["step"] == one["trainer"]["step"] == 8
    for k in ("D", "G"):
        _assert_models_close(two["trainer"][k], one["trainer"][k], 2e-5)
    rows2 = [json.loads(x) for x in (root / "ssl2/metrics.jsonl").read_text().splitlines()]
    rows1 = [json.loads(x) for x in (root / "ssl1/metrics.jsonl").read_text().splitlines()]
    assert [r["test_errors"] for r in rows2] == [r["test_errors"] for r in rows1]  # one line per epoch
    assert rows2[-1]["loss_gen"] == pytest.approx(rows1[-1]["loss_gen"], rel=1e-4)  # reduced over ranks


@needs_data
def test_quality_two_ranks_and_resume(runs):
    root, finished = runs
    full, part = root / "quality-full", root / "quality-part"
    _check(finished["quality-full"])
    _check(finished["quality-part"])
    summary = json.loads((full / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6 and summary["snapshots"] == [0, 3, 6]
    rows = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "losses"] == [2, 4, 6]  # written once
    # continue the 4-step run to 6 steps under 2 ranks: the same models as the uninterrupted run
    state = _state(part / "checkpoint.pt")
    assert state["trainer"]["step"] == 4 and len(state["rank_rng"]) == 2
    state["options"]["max_steps"] = 6
    torch.save(state, part / "checkpoint.pt")
    _check(_dist.run(["-m", "improved_gan", "quality", "--resume", str(part)], timeout=180))
    a, b = _state(full / "checkpoint.pt")["trainer"], _state(part / "checkpoint.pt")["trainer"]
    assert b["step"] == 6
    for k in ("G", "D"):
        _assert_models_close(a[k], b[k], 1e-6)
