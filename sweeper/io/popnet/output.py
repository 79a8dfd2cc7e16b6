"""bmtk PopNet's rates file (docs/formats.md (c))."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..sonata import py_scalar


def write_rates_file(path: str | Path, keys: Sequence[Any], t_steps: int | Sequence[int], dt: float,
                     rates: Any) -> Path:
    """Write bmtk PopNet's rates file: ``<key> <t> <rate>`` per line, no header, grouped by key.

    ``t`` is ``str(ti * dt)`` for each step index ti (float noise included, as bmtk prints
    it); rates use Python's repr. ``rates`` is [len(keys), len(t_steps)].
    """
    steps = range(t_steps) if isinstance(t_steps, (int, np.integer)) else [int(i) for i in t_steps]
    times = [str(int(i) * float(dt)) for i in steps]
    rates = np.asarray(rates, dtype=float)
    if not len(keys):
        rates = rates.reshape(0, len(times))
    if rates.shape != (len(keys), len(times)):
        raise ValueError(f"rates has shape {rates.shape}, expected ({len(keys)}, {len(times)})")
    path = Path(path)
    with open(path, "w", newline="\n") as fh:
        for key, row in zip(keys, rates):
            k = str(py_scalar(key))
            fh.writelines(f"{k} {t} {r!r}\n" for t, r in zip(times, row.tolist()))
    return path
