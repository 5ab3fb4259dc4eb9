"""The toy command under torchrun (2 gloo ranks), failures that must end every process with an error
instead of hanging (a killed rank, a rendezvous that never completes), and the environment detection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _dist  # noqa: E402

from improved_gan.train import distributed as dd  # noqa: E402

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TOY = ["-m", "improved_gan", "toy", "--frames", "2", "--eval-samples", "200", "--batch-size", "32"]


def _start_torchrun_toy(out: Path):
    launcher_vars = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher_vars}
    env["OMP_NUM_THREADS"] = "1"
    techniques = "minibatch-discrimination,feature-matching,historical-averaging"
    cmd = [TORCHRUN, "--nproc_per_node", "2", "--master_port", str(_dist.free_port()), *TOY, "--steps", "20",
           "--log-every", "5", "--technique", techniques, "--out", str(out)]
    log = open(out.with_suffix(".log"), "w+")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True), log


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Four jobs at once (to keep the wall time down): the toy command under torchrun; two 2-rank toy
    runs in which rank 1 and rank 0 respectively are killed with SIGKILL once training has started; and
    a lone rank 1 whose rank 0 never comes (3 s timeout)."""
    root = tmp_path_factory.mktemp("jobs")
    torchrun = _start_torchrun_toy(root / "torchrun")
    lone = _dist.start([*TOY, "--steps", "5", "--dist-timeout", "3"], ranks=[1])
    kills = {}
    for victim in (1, 0):
        out = root / f"kill{victim}"
        args = [*TOY, "--steps", "1000000", "--log-every", "1", "--dist-timeout", "60", "--out", str(out)]
        kills[victim] = (out, _dist.start(args))
    deadline = time.monotonic() + 120
    killed_at = {}
    while len(killed_at) < len(kills):
        assert time.monotonic() < deadline, "training did not start"
        for victim, (out, procs) in kills.items():
            if victim in killed_at:
                continue
            assert all(p.poll() is None for p, _ in procs), "a rank exited before training started"
            metrics = out / "metrics.jsonl"
            if metrics.is_file() and metrics.stat().st_size > 0:
                procs[victim][0].send_signal(signal.SIGKILL)
                killed_at[victim] = time.monotonic()
        time.sleep(0.2)
    finished = {victim: _dist.wait(procs, timeout=45) for victim, (_, procs) in kills.items()}  # fail on hang
    seconds = {victim: time.monotonic() - t for victim, t in killed_at.items()}
    (lone_result,) = _dist.wait(lone, timeout=60)
    proc, log = torchrun
    proc.wait(timeout=150)
    log.seek(0)
    return {"kills": finished, "seconds": seconds, "lone": lone_result,
            "torchrun": (proc.returncode, log.read(), root / "torchrun")}


def test_toy_under_torchrun(jobs):
    returncode, output, out = jobs["torchrun"]
    assert returncode == 0, output[-4000:]
    assert output.count("run directory:") == 1  # printed by rank 0 only
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [5, 10, 15, 20]  # written once, by rank 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert (out / "report.html").is_file() and (out / "config.json").is_file()
    assert not list(out.glob(".*tmp*"))


@pytest.mark.parametrize("victim", [1, 0])
def test_killed_rank_ends_the_other_with_an_error(jobs, victim):
    finished, seconds = jobs["kills"], jobs["seconds"]
    survivor = finished[victim][1 - victim]
    assert finished[victim][victim].returncode == -signal.SIGKILL
    assert survivor.returncode == 2, survivor.output[-3000:]
    assert f"rank {1 - victim} of 2 lost contact" in survivor.output
    assert seconds[victim] < 45


def test_rendezvous_that_never_completes_is_an_error(jobs):
    lone = jobs["lone"]
    assert lone.returncode == 2, lone.output[-3000:]
    assert "error: rank 1 of 2 could not join the process group" in lone.output


def test_detect_env():
    assert dd.detect_env({}) is None
    assert dd.detect_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    env = dd.detect_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h",
                         "MASTER_PORT": "9"})
    assert env == dd.DistEnv(2, 4, 0, "h", 9)
    with pytest.raises(dd.DistributedError, match="MASTER_ADDR"):
        dd.detect_env({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "1"})
    with pytest.raises(dd.DistributedError, match="outside"):
        dd.detect_env({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})


def test_single_process_context_is_a_no_op():
    ctx = dd.init("cpu", environ={})
    assert not ctx.distributed and ctx.is_main
    m = torch.nn.Linear(2, 2)
    assert dd.wrap_ddp(m, ctx) is m and dd.unwrap(m) is m
    x = torch.arange(6.0).view(3, 2)
    assert ctx.shard(x) is x
    assert dd.reduce_mean({"a": 1.5}, ctx) == {"a": 1.5}
    from improved_gan.train import distributed_ops as ops

    g, sl = ops.all_gather_with_grad(x, ctx)
    assert g is x and sl == slice(0, 3)
    assert ops.enable_global_minibatch(m, ctx) == []


def test_local_slices_and_batch_checks():
    ctx = dd.DistContext(rank=1, world_size=2)
    assert ctx.local_slice(8) == slice(4, 8)
    with pytest.raises(dd.DistributedError, match="divisible"):
        ctx.local_slice(7)
    with pytest.raises(dd.DistributedError, match="fewer than 2"):
        ctx.check_batch("batch_size", 2)
