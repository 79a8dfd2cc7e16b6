"""Metrics: numbers per point and population computed from its rate traces.

One table, :data:`METRICS`, that the sweep workers, ``sweeper verify`` and the store's variable
table (:mod:`sweeper.store.variables`) all iterate.  Definitions: docs/metrics.md.

How to add a metric: write ``f(rates, times, window) -> array [point, population]`` (``rates``
is ``[point, population, time]`` with NaN after a shorter trace's end, ``times`` the store's
time axis, ``window`` the spec's ``metric_window`` in seconds or None) and add one
:class:`Metric` entry to :data:`METRICS`.  New stores then hold it; nothing else changes.
"""

from __future__ import annotations

import contextvars
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import get as config


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


def peak_rate(rates, times, window):
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN traces of points not computed
        return np.nanmax(rates, axis=2)


def trough_rate(rates, times, window):
    inside = final_window(rates, times, window)
    with np.errstate(invalid="ignore"):
        low = np.where(inside, rates, np.inf).min(axis=2)
    return np.where(inside.any(axis=2), low, np.nan)


def peak_time(rates, times, window):
    finite = np.isfinite(rates).any(axis=2)
    k = np.argmax(np.where(np.isfinite(rates), rates, -np.inf), axis=2)
    return np.where(finite, times[k], np.nan)


def _band(mean: np.ndarray) -> np.ndarray:
    """Half-width of the band around the final-window mean that counts as 'at that level'."""
    return np.maximum(float(threshold("settle-rel")) * np.abs(mean), float(threshold("settle-abs")))


def settle_time(rates, times, window):
    mean = _memo(mean_rate, rates, times, window)
    outside = np.abs(rates - mean[:, :, None]) > _band(mean)[:, :, None]  # NaN compares False
    inside_window = final_window(rates, times, window)
    never = (outside & inside_window).any(axis=2) | ~np.isfinite(mean)
    nt = rates.shape[2]
    last_out = np.where(outside.any(axis=2), nt - 1 - np.argmax(outside[:, :, ::-1], axis=2), -1)
    first_in = np.minimum(last_out + 1, nt - 1)
    return np.where(never, np.nan, times[first_in])


def _oscillation(rates, times, window) -> tuple[np.ndarray, np.ndarray]:
    """(frequency, amplitude) of the final window's dominant oscillation; (0, 0) when none."""
    from scipy.signal import welch

    n, npop, _ = rates.shape
    freq, amp = np.zeros((n, npop)), np.zeros((n, npop))
    inside = final_window(rates, times, window)
    mean = _memo(mean_rate, rates, times, window)
    band = _band(mean)
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    min_cycles = float(threshold("osc-min-cycles"))
    # traces with the same window (all of them, unless tf is swept) go through welch together
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i in range(n):
        for j in range(npop):
            idx = np.flatnonzero(inside[i, j])
            if len(idx) >= 8:
                groups.setdefault((int(idx[0]), int(idx[-1]) + 1), []).append((i, j))
    for (a, b), members in groups.items():
        rows, cols = np.array([m[0] for m in members]), np.array([m[1] for m in members])
        x = rates[rows, cols, a:b]
        t = np.arange(b - a) * dt
        trend = np.polynomial.polynomial.polyfit(t, x.T, 1)
        resid = x - (trend[0][:, None] + trend[1][:, None] * t[None, :])
        half_ptp = (resid.max(axis=1) - resid.min(axis=1)) / 2
        nper = max(8, (b - a) // 2)
        f, p = welch(x, fs=1.0 / dt, nperseg=nper, nfft=8 * nper, detrend="linear", axis=-1)
        p[:, 0] = 0.0
        k = np.argmax(p, axis=1)
        f_peak = _refine(f, p, k)
        real = (half_ptp > band[rows, cols]) & (f_peak * (b - a) * dt >= min_cycles)
        freq[rows, cols] = np.where(real, f_peak, 0.0)
        amp[rows, cols] = np.where(real, half_ptp, 0.0)
    blank = ~np.isfinite(mean)
    freq[blank], amp[blank] = np.nan, np.nan
    return freq, amp


def _refine(f: np.ndarray, p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Peak frequency between bins: parabola through the log power of the peak and its neighbours."""
    km = np.clip(k, 1, len(f) - 2)
    rows = np.arange(len(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        y0, y1, y2 = (np.log(p[rows, km + d]) for d in (-1, 0, 1))
        shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    shift = np.where(np.isfinite(shift) & (np.abs(shift) <= 1) & (k == km), shift, 0.0)
    return f[km] + shift * (f[1] - f[0])


def osc_freq(rates, times, window):
    return _memo(_oscillation, rates, times, window)[0]


def osc_amp(rates, times, window):
    return _memo(_oscillation, rates, times, window)[1]


SILENT, STEADY, OSCILLATING, UNSETTLED = 0, 1, 2, 3
REGIMES = {SILENT: "silent", STEADY: "steady", OSCILLATING: "oscillating", UNSETTLED: "unsettled"}


def regime(rates, times, window):
    mean = _memo(mean_rate, rates, times, window)
    freq = osc_freq(rates, times, window)
    settled = np.isfinite(_memo(settle_time, rates, times, window))
    out = np.full(mean.shape, UNSETTLED, dtype=np.int8)
    out[settled] = STEADY
    with np.errstate(invalid="ignore"):
        out[freq > 0] = OSCILLATING
        out[(freq == 0) & (mean < float(threshold("silent-rate")))] = SILENT
    out[~np.isfinite(mean)] = -1  # not computed
    return out


def threshold(name: str):
    """A metric threshold from the config (``sweep.metrics.NAME``)."""
    return config(f"sweep.metrics.{name}")


METRICS: tuple[Metric, ...] = (
    Metric("mean_rate", mean_rate, "Hz", "mean firing rate over the final metric window"),
    Metric("final_rate", final_rate, "Hz", "firing rate at the last finite sample"),
    Metric("peak_rate", peak_rate, "Hz", "highest firing rate of the run"),
    Metric("peak_time", peak_time, "s", "time of the highest firing rate"),
    Metric("trough_rate", trough_rate, "Hz", "lowest firing rate in the final metric window"),
    Metric("settle_time", settle_time, "s",
           "time after which the rate stays within the settle band of its final-window mean"),
    Metric("osc_freq", osc_freq, "Hz", "dominant oscillation frequency in the final window (0: none)"),
    Metric("osc_amp", osc_amp, "Hz", "oscillation amplitude (half peak-to-peak) in the final window"),
    Metric("regime", regime, None, "dynamical regime in the final window", dtype="int8", fill=-1,
           attrs={"flag_values": list(REGIMES), "flag_meanings": " ".join(REGIMES.values())}),
)
BY_NAME = {m.name: m for m in METRICS}


_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("sweeper_metrics_memo", default=None)


def _memo(function, rates, times, window):
    """``function(rates, times, window)``, computed once per :func:`compute` call (metrics share parts)."""
    memo = _MEMO.get()
    if memo is None:
        return function(rates, times, window)
    key = function.__name__
    if key not in memo:
        memo[key] = function(rates, times, window)
    return memo[key]


def compute(rates: np.ndarray, times: np.ndarray, window: float | None,
            names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every metric in ``names`` (default: all built-ins) for a block of traces."""
    rates = np.asarray(rates, dtype=float)
    token = _MEMO.set({})
    try:
        return {name: _memo(BY_NAME[name].function, rates, times, window) for name in (names or BY_NAME)}
    finally:
        _MEMO.reset(token)
