"""A run directory: resolved options, one JSON line of metrics per logged step, a final summary.

Layout (every command)::

    DIR/config.json     the resolved options
    DIR/metrics.jsonl   one JSON object per logged step
    DIR/summary.json    final metrics, wall time, versions, seed
    DIR/report.html     figures and tables for a browser
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def default_run_path(command: str, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{command}"


def _clean(obj: Any) -> Any:
    """Make values JSON-safe: non-finite floats become strings, tensors and arrays become lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to a temporary file, then move it into place, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    import numpy
    import torch

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


class RunDir:
    """The folder a command writes into. ``enabled=False`` (non-zero ranks) makes every write a no-op."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.started = time.time()
        if enabled:
            self.path.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, config: dict[str, Any]) -> None:
        if self.enabled:
            write_json_atomic(self.file("config.json"), config)

    def log(self, **metrics: Any) -> None:
        """Append one JSON line to metrics.jsonl."""
        if not self.enabled:
            return
        with open(self.file("metrics.jsonl"), "a") as fh:
            fh.write(json.dumps(_clean(metrics)) + "\n")

    def truncate_metrics(self, keep_step: int, key: str = "step") -> None:
        """On resume, drop lines logged after the checkpoint so metrics.jsonl matches a clean run."""
        path = self.file("metrics.jsonl")
        if not self.enabled or not path.exists():
            return
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get(key, -1) <= keep_step]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, path)

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.file("metrics.jsonl")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_summary(self, summary: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
        full = dict(summary)
        full.setdefault("wall_time_s", time.time() - self.started)
        full["seed"] = seed
        full["versions"] = versions()
        if self.enabled:
            write_json_atomic(self.file("summary.json"), full)
        return full
