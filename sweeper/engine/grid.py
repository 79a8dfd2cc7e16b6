"""Voltage grids (docs/method.md §4): edges built with numpy-arange arithmetic, reset bins, initial density.

The exact float values of the edges matter: whether the edge nearest 0 V snaps to
exactly 0.0 decides whether reset mass goes to one bin or two (docs/method.md §4.1-4.2).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import ModelError

SNAP = 2.220446049250313e-16  # edges closer to 0 than this become exactly 0.0
DEGENERATE = 1e-6             # a last bin narrower than DEGENERATE * dv is refused
MAX_BINS = 1_000_000


def n_bins(v_min: float, v_max: float, dv: float) -> int:
    """Number of bins, ``ceil((v_max - v_min) / dv)`` as numpy's arange counts them."""
    x = (v_max - v_min) / dv
    return int(math.ceil(x)) if math.isfinite(x) else 2**63  # overflow: check_grid says "too many bins"


def edges(v_min: float, v_max: float, dv: float) -> np.ndarray:
    """Bin edges ``arange(v_min, v_max, dv)`` + ``[v_max]``, with |edge| < eps snapped to 0."""
    v_min, v_max, dv = float(v_min), float(v_max), float(dv)
    m = n_bins(v_min, v_max, dv)
    e = np.empty(m + 1)
    e[0] = v_min
    if m >= 2:
        step = (v_min + dv) - v_min  # numpy's arange steps by this rounded value, not dv
        e[1] = v_min + dv
        e[2:m] = v_min + np.arange(2, m) * step
    e[m] = v_max
    e[np.abs(e) < SNAP] = 0.0
    return e


def zero_bins(e: np.ndarray) -> tuple[int, ...]:
    """Bins that receive reset mass: the two touching an exact 0 edge, else the one holding 0."""
    zeros = np.flatnonzero(e == 0.0)
    if len(zeros) == 1:
        k = int(zeros[0])
        return (0,) if k == 0 else (k - 1, k)
    return (int(np.count_nonzero(e <= 0.0)) - 1,)


def check_grid(v_min: float, v_max: float, dv: float, where: str = "grid") -> None:
    """Refuse grids the engine cannot simulate; above all a degenerate last bin (docs/method.md §4.1).

    When ``(v_max - v_min)/dv`` lands just above an integer, arange adds an extra edge a
    few 1e-15 V below v_max, leaving a last bin of (nearly) zero or negative width that
    silently turns rates into NaN. Returns None for a usable grid.
    """
    try:
        v_min, v_max, dv = float(v_min), float(v_max), float(dv)
    except (TypeError, ValueError):
        raise ModelError(f"v_min, v_max and dv must be numbers, got {v_min!r}, {v_max!r}, {dv!r}", where) from None
    problem = _grid_problem(v_min, v_max, dv)
    if problem:
        raise ModelError(problem, where)


@lru_cache(maxsize=1024)
def _grid_problem(v_min: float, v_max: float, dv: float) -> str:
    """What is wrong with a grid ("" when it is usable); cached, as sweeps repeat grids."""
    if not all(math.isfinite(x) for x in (v_min, v_max, dv)):
        return f"v_min={v_min!r}, v_max={v_max!r}, dv={dv!r} must be finite"
    if not dv > 0:
        return f"dv must be > 0, got {dv!r}"
    if not v_min < v_max:
        return f"v_min ({v_min!r}) must be less than v_max ({v_max!r})"
    m = n_bins(v_min, v_max, dv)
    if m > MAX_BINS:
        return f"v_min={v_min!r}, v_max={v_max!r}, dv={dv!r} gives {m} bins (more than {MAX_BINS})"
    e = edges(v_min, v_max, dv)
    last = e[-1] - e[-2]
    if last <= DEGENERATE * dv:
        return (f"degenerate grid: v_min={v_min!r}, v_max={v_max!r}, dv={dv!r} makes the last bin "
                f"{last:.3g} V wide ((v_max - v_min)/dv = {(v_max - v_min) / dv!r} is just above an "
                f"integer); change dv or v_min slightly")
    widths = np.diff(e)
    if np.any(widths <= 0):  # cannot happen after the test above, but never simulate it
        return f"v_min={v_min!r}, v_max={v_max!r}, dv={dv!r} gives a bin of width {widths.min():.3g}"
    return ""


def initial_density(e: np.ndarray, values, probs, where: str = "p0") -> np.ndarray:
    """Probability per bin of a discrete initial distribution (docs/method.md §4.3, right-closed bins)."""
    x = np.asarray(values, dtype=float)
    q = np.asarray(probs, dtype=float)
    cdf = np.cumsum(q)
    # F(v): 0 below the support, exactly 1 at or above its top, else cumsum up to the last x <= v
    idx = np.searchsorted(x, e, side="right") - 1
    F = np.where(idx >= 0, cdf[np.clip(idx, 0, None)], 0.0)
    F[e >= x[-1]] = 1.0
    p = F[1:] - F[:-1]
    p[0] += F[0]
    p[-1] += 1.0 - F[-1]
    total = float(np.sum(p))
    if abs(total - 1.0) >= 1e-15:
        raise ModelError(f"initial distribution p0 puts total mass {total!r} on the grid, not 1", where)
    return p
