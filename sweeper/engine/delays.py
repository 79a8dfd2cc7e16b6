"""Synaptic delays in whole time steps (docs/method.md §10)."""

from __future__ import annotations

import numpy as np


def delay_steps(dist, dt: float) -> list[int]:
    """Steps for each delay value: ``round(delay / dt)`` half-to-even on the float quotient."""
    return [int(np.round(v / dt)) for v in dist.values]


def delay_kernel(dist, dt: float) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Distinct step counts (ascending) and their summed probabilities."""
    merged: dict[int, float] = {}
    for k, p in zip(delay_steps(dist, dt), dist.probs):
        merged[k] = merged[k] + p if k in merged else p
    ks = tuple(sorted(merged))
    return ks, tuple(merged[k] for k in ks)
