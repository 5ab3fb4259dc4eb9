"""End-to-end `improved-gan ssl` on tiny options: outputs, resume (also after kill -9), NaN guard."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from improved_gan.errors import NonFiniteLossError
from improved_gan.experiments import ssl, ssl_train
from improved_gan.experiments.ssl import Options
from improved_gan.train.checkpoint import load_checkpoint

TINY = {"d_widths": (48, 24), "g_widths": (32,), "batch_size": 20, "labels": 20, "iters_per_epoch": 6,
        "epochs": 3, "test_subset": 200, "train_subset": 400, "init_size": 100, "checkpoint_every": 4,
        "threads": 1, "progress": False}
TIME_KEYS = {"epoch_time_s", "elapsed_s"}


@pytest.fixture
def fake_data(monkeypatch):
    """Synthetic 28x28 'digits' (class c: a bright horizontal band at row 2c+4), so no files are needed."""
    def load(name, split, data_dir=None):
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        n = 1000 if split == "train" else 300
        y = torch.arange(n) % 10
        x = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
        for c in range(10):
            x[y == c, 2 * c + 4] = 250
        return x, y
    monkeypatch.setattr(ssl, "load_dataset", load)


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in rows]


def test_outputs(tmp_path, fake_data):
    out = ssl.run(Options(**TINY, out=str(tmp_path / "run")))
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoint.pt", "learning_curve.png",
                 "confusion.png", "samples.gif", "samples/epoch_003.png", "report.html"):
        assert (out / name).is_file(), name
    rows = _metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["step"] == 18
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_test_errors_ema"] == rows[-1]["test_errors_ema"]
    assert summary["best_test_errors_ema"] == min(r["test_errors_ema"] for r in rows)
    assert summary["test_size"] == 200
    assert rows[-1]["test_errors"] < 180  # learns something on the easy synthetic classes (chance: 180)


def test_resume_after_interrupt_equals_uninterrupted(tmp_path, fake_data, monkeypatch):
    ref = ssl.run(Options(**TINY, out=str(tmp_path / "ref")))
    real_step = ssl_train.SSLTrainer.train_step

    def dying_step(self, *a, **k):
        if self.step == 9:  # after the checkpoint at step 8 (mid-epoch 2)
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(ssl_train.SSLTrainer, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        ssl.run(Options(**TINY, out=str(tmp_path / "cut")))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["trainer"]["step"] == 8
    monkeypatch.setattr(ssl_train.SSLTrainer, "train_step", real_step)
    out = ssl.run(Options(resume=str(tmp_path / "cut")))
    assert _metrics(out) == _metrics(ref)
    a = load_checkpoint(ref / "checkpoint.pt")["trainer"]
    b = load_checkpoint(out / "checkpoint.pt")["trainer"]
    for key in ("D", "G"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, fake_data, monkeypatch):
    real_loss = ssl_train.discriminator_loss
    calls = {"n": 0}

    def bad_loss(*a, **k):
        calls["n"] += 1
        out = real_loss(*a, **k)
        if calls["n"] == 10:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(ssl_train, "discriminator_loss", bad_loss)
    with pytest.raises(NonFiniteLossError, match=r"d_loss.*nan.*step 10.*checkpoint.*intact"):
        ssl.run(Options(**TINY, out=str(tmp_path / "nan")))
    state = load_checkpoint(tmp_path / "nan" / "checkpoint.pt")
    assert state["trainer"]["step"] == 8
    assert all(torch.isfinite(v).all() for v in state["trainer"]["D"].values() if v.is_floating_point())


@pytest.mark.skipif(not os.environ.get("IMPROVED_GAN_DATA"), reason="IMPROVED_GAN_DATA is not set")
def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    """The real MNIST files; the killed run is a CLI subprocess, reference and resume run in-process."""
    opts = {**TINY, "epochs": 8}
    ref = ssl.run(Options(**opts, out=str(tmp_path / "ref")))
    args = [f"--{k.replace('_', '-')}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
            for k, v in opts.items() if k != "progress"] + ["--no-progress"]
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "improved_gan", "ssl", *args, "--out", str(cut)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # kill -9 in the middle of epoch 2
        if (cut / "metrics.jsonl").exists() and (cut / "metrics.jsonl").read_text().count("\n") >= 1:
            time.sleep(0.02)
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists()
    out = ssl.run(Options(resume=str(cut)))
    assert _metrics(out) == _metrics(ref)
