"""Progress bars on a terminal, silence elsewhere (logs, CI, non-zero ranks)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress(iterable=None, total: int | None = None, desc: str | None = None, enabled: bool | None = None,
             initial: int = 0):
    """A tqdm bar shown only when stderr is a terminal (or when ``enabled`` says so)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, initial=initial, leave=False,
                dynamic_ncols=True)
