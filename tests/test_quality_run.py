"""End-to-end `quality` runs on a tiny budget: files, metrics, classifier hash, resume == uninterrupted."""

import json
import os

import pytest
import torch

from improved_gan.cli import main
from improved_gan.config import build_options
from improved_gan.errors import CheckpointError
from improved_gan.experiments import ablation_quality, classifier, quality
from improved_gan.metrics.classifier_cache import FILE_NAME, classifier_dir, load_classifier, save_classifier
from improved_gan.models.classifier28 import Classifier28

pytestmark = pytest.mark.skipif(not os.environ.get("IMPROVED_GAN_DATA"),
                                reason="IMPROVED_GAN_DATA is not set (the Makefile points it at the data)")

TINY = {"dataset": "mnist", "train_subset": 256, "batch_size": 32, "max_steps": 6, "eval_every": 3,
        "log_every": 2, "checkpoint_every": 2, "eval_samples": 200, "curve_samples": 100, "real_samples": 300,
        "kid_subsets": 3, "g_width": 8, "d_width": 8, "feature_dim": 32, "minibatch_kernels": 8,
        "vbn_reference": 16, "threads": 1}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An untrained (but deterministic) classifier in a temporary cache: the scores are meaningless,
    the plumbing is what is tested."""
    root = tmp_path_factory.mktemp("cache")
    torch.manual_seed(0)
    model = Classifier28(width=4, feature_dim=16).eval()
    save_classifier(classifier_dir("mnist", root) / FILE_NAME, model, "mnist", test_accuracy=0.1)
    return root


def _options(cache, out, **kw):
    return build_options(quality.Options, {**TINY, "cache_dir": str(cache), "out": str(out), **kw})


def test_quality_run_writes_everything(cache, tmp_path):
    out = quality.run(_options(cache, tmp_path / "run", technique=quality.DEFAULT_TECHNIQUE
                               + ",historical-averaging,feature-matching", labels=True))
    for name in ("config.json", "metrics.jsonl", "summary.json", "report.html", "checkpoint.pt",
                 "samples.gif",
                 "scores.png", "samples-step000000.png", "samples-step000003.png", "samples-step000006.png"):
        assert (out / name).is_file(), name
    s = json.loads((out / "summary.json").read_text())
    _, info = load_classifier("mnist", cache)
    assert s["classifier"]["hash"] == info["hash"] and s["samples"] == 200 and s["splits"] == 10
    assert s["steps"] == 6 and s["snapshots"] == [0, 3, 6]
    assert 1.0 <= s["score_mean"] <= 10.0 and s["fid"] >= 0 and 0 <= s["precision"] <= 1
    assert 1.0 <= s["real_score_mean"] <= 10.0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if r["kind"] == "losses"]
    assert [r["step"] for r in losses] == [2, 4, 6]
    assert {"d_labeled_loss", "d_ha_penalty", "g_loss"} <= set(losses[0])


def test_resume_matches_uninterrupted_run(cache, tmp_path, monkeypatch):
    kw = {"technique": "minibatch-discrimination,virtual-batch-norm,label-smoothing,historical-averaging",
          "labels": False}
    full = quality.run(_options(cache, tmp_path / "full", **kw))

    step = quality.Trainer.train_step

    def interrupted(self, real, labels):
        if self.step == 5:  # killed during step 6; the last checkpoint is the one of step 4
            raise KeyboardInterrupt
        return step(self, real, labels)

    monkeypatch.setattr(quality.Trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        quality.run(_options(cache, tmp_path / "part", **kw))
    monkeypatch.setattr(quality.Trainer, "train_step", step)
    part = tmp_path / "part"
    assert torch.load(part / "checkpoint.pt", weights_only=False)["trainer"]["step"] == 4
    assert not (part / "summary.json").exists()
    assert main(["quality", "--resume", str(part)]) == 0
    a = json.loads((full / "summary.json").read_text())
    b = json.loads((part / "summary.json").read_text())
    for key in ("score_mean", "fid", "kid_mean", "precision", "recall", "steps", "snapshots"):
        assert a[key] == b[key], key

    def lines(run):
        return [{k: v for k, v in json.loads(line).items() if k != "train_time_s"}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert lines(full) == lines(part)
    assert torch.equal(torch.load(full / "checkpoint.pt", weights_only=False)["trainer"]["G"]["fc.weight"],
                       torch.load(part / "checkpoint.pt", weights_only=False)["trainer"]["G"]["fc.weight"])


def test_missing_classifier_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="improved-gan classifier --dataset mnist"):
        quality.run(_options(tmp_path / "empty-cache", tmp_path / "run"))


def test_tiny_ablation_table_and_figure(cache, tmp_path):
    extra = {k: v for k, v in TINY.items() if k not in ("dataset", "max_steps", "eval_every", "eval_samples",
                                                       "threads")}
    o = build_options(ablation_quality.Options, {
        "dataset": "mnist", "variants": ("all", "DCGAN"), "seeds": (0,), "max_steps": 2, "eval_samples": 100,

        "cache_dir": str(cache), "out": str(tmp_path / "abl"), "extra": json.dumps(extra)})
    out = ablation_quality.run(o)
    table = json.loads((out / "ablation.json").read_text())
    assert [r["variant"] for r in table["rows"]] == ["all", "DCGAN"]
    assert all(r["seeds"] == 1 and r["steps"] == 2 for r in table["rows"])
    assert (out / "samples.png").is_file() and (out / "report.html").is_file()
    assert "| all |" in (out / "ablation.md").read_text()
    assert (out / "DCGAN-seed0" / "summary.json").is_file()
    row = ablation_quality.aggregate("x", [dict(table["runs"]["all"][0], score_mean=m) for m in (2.0, 4.0)])
    assert row["score"] == "3.000 ± 1.000" and row["seeds"] == 2


def test_classifier_command_caches_and_reuses(tmp_path, capsys):
    args = ["classifier", "--dataset", "mnist", "--cache-dir", str(tmp_path), "--epochs", "1",
            "--train-subset", "256", "--width", "4"]
    assert main(args) == 0
    model, info = load_classifier("mnist", tmp_path)
    summary = json.loads((classifier_dir("mnist", tmp_path) / "summary.json").read_text())
    assert summary["hash"] == info["hash"] and summary["meets_target"] is False  # 256 images, 1 epoch
    assert 0.0 <= info["test_accuracy"] <= 1.0 and summary["target_accuracy"] == classifier.TARGETS["mnist"]
    assert main(args) == 0
    assert "reusing" in capsys.readouterr().out
    assert load_classifier("mnist", tmp_path)[1]["hash"] == info["hash"]
