"""The time axis of a simulation (docs/method.md §11)."""

from __future__ import annotations

import numpy as np


def n_steps(sim) -> int:
    """Steps taken by ``while t0 + n*dt < tf`` (§11)."""
    t0, tf, dt = float(sim.t0), float(sim.tf), float(sim.dt)
    n = max(0, int((tf - t0) / dt))
    while n > 0 and t0 + (n - 1) * dt >= tf:
        n -= 1
    while t0 + n * dt < tf:
        n += 1
    return n


def sample_times(sim) -> np.ndarray:
    """The sample times ``t0 + n*dt``, n = 0..steps (product, then add)."""
    return float(sim.t0) + np.arange(n_steps(sim) + 1, dtype=float) * float(sim.dt)
