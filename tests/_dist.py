"""Launch a few local processes the way torchrun does (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), each
bounded by a timeout, for the distributed tests."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world_size: int, port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
               LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


@dataclasses.dataclass
class Finished:
    returncode: int
    output: str
    seconds: float


def start(args: list[str], world_size: int = 2, port: int | None = None, ranks=None, cwd=ROOT, **extra):
    """Popen one process per rank in ``ranks`` (default all), output to a temporary file each."""
    port = port or free_port()
    procs = []
    for rank in (range(world_size) if ranks is None else ranks):
        log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"dist-{port}-{rank}.log", "w+")
        env = rank_env(rank, world_size, port, **extra)
        proc = subprocess.Popen([PYTHON, *args], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
    return procs


def wait(procs, timeout: float) -> list[Finished]:
    """Wait for every process; kill all of them (and fail) if any is still running after ``timeout``."""
    t0 = time.monotonic()
    results = []
    for proc, log in procs:
        left = max(0.1, timeout - (time.monotonic() - t0))
        try:
            proc.wait(timeout=left)
        except subprocess.TimeoutExpired as exc:
            for p, _ in procs:
                p.kill()
            outputs = []
            for p, lg in procs:
                p.wait()
                lg.seek(0)
                outputs.append(lg.read()[-3000:])
            raise AssertionError(f"processes still running after {timeout} s (hang):\n"
                                 + "\n----\n".join(outputs)) from exc
        log.seek(0)
        results.append(Finished(proc.returncode, log.read(), time.monotonic() - t0))
        log.close()
    return results


def run(args: list[str], world_size: int = 2, timeout: float = 120, **extra) -> list[Finished]:
    return wait(start(args, world_size, **extra), timeout)
