"""Metrics: numbers per point and population computed from its rate traces.

One table, :data:`METRICS`, that the sweep workers, ``sweeper verify`` and the store's variable
table (:mod:`sweeper.store.variables`) all iterate.  Definitions: docs/metrics.md.

How to add a metric: write ``f(rates, times, window) -> array [point, population]`` (``rates``
is ``[point, population, time]`` with NaN after a shorter trace's end, ``times`` the store's
time axis, ``window`` the spec's ``metric_window`` in seconds or None) and add one
:class:`Metric` entry to :data:`METRICS`.  New stores then hold it; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Metric:
    """One built-in metric: how it is computed and how the store describes it."""

    name: str
    function: Callable[[np.ndarray, np.ndarray, float | None], np.ndarray]
    units: str
    long_name: str
    dtype: str = "float64"
    fill: float | int = np.nan
    attrs: dict = field(default_factory=dict)  # further CF attributes (flag_values, ...)


def last_finite(rates: np.ndarray) -> np.ndarray:
    """Index of the last finite sample of each trace [point, population] (0 for an empty one)."""
    nt = rates.shape[2]
    finite = np.isfinite(rates)
    return np.where(finite.any(axis=2), nt - 1 - np.argmax(finite[:, :, ::-1], axis=2), 0)


def final_window(rates: np.ndarray, times: np.ndarray, window: float | None) -> np.ndarray:
    """Mask [point, population, time] of the final ``window`` seconds of each trace (default:
    its second half), finite samples only."""
    finite = np.isfinite(rates)
    t_end = times[last_finite(rates)]
    span = (t_end - times[0]) / 2 if window is None else np.full_like(t_end, float(window))
    return finite & (times[None, None, :] >= (t_end - span)[:, :, None] - 1e-12)


def mean_rate(rates, times, window):
    inside = final_window(rates, times, window)
    with np.errstate(invalid="ignore"):
        return np.where(inside, rates, 0.0).sum(axis=2) / inside.sum(axis=2)


def final_rate(rates, times, window):
    return np.take_along_axis(rates, last_finite(rates)[:, :, None], axis=2)[:, :, 0]


METRICS: tuple[Metric, ...] = (
    Metric("mean_rate", mean_rate, "Hz", "mean firing rate over the final metric window"),
    Metric("final_rate", final_rate, "Hz", "firing rate at the last finite sample"),
)
BY_NAME = {m.name: m for m in METRICS}


def compute(rates: np.ndarray, times: np.ndarray, window: float | None,
            names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every metric in ``names`` (default: all built-ins) for a block of traces."""
    rates = np.asarray(rates, dtype=float)
    return {name: BY_NAME[name].function(rates, times, window) for name in (names or BY_NAME)}
