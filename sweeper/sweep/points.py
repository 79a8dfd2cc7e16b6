"""Expansion of sweep axes into a table of points (one row per network to simulate).

A point table is a dict ``name -> 1-D numpy array`` (float64, or object for strings), all
of the same length. Grids are built with index arithmetic, so a 10^6-point spec expands
in well under a second.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

from ..config import get as config
from ..ids import BLOCK, id_text

Table = dict[str, np.ndarray]


def max_axis() -> int:
    """Values of one axis (config ``sweep.max-axis``); more is a typo (or a store nobody can fill)."""
    return int(config("sweep.max-axis"))


def values_from(defn: Mapping, where: str, rounded: bool = True) -> list:
    """The explicit values of one axis: ``values``, ``linspace``, ``logspace`` or ``arange``
    (generated ones as round numbers, see :func:`round_values`; ``rounded=False``: as numpy makes
    them, which is how stores made before sweeper rounded them hold them)."""
    vals = _values_from(defn, where)
    if rounded and "values" not in defn:
        return round_values(np.asarray(vals, dtype=float))
    return vals


def _values_from(defn: Mapping, where: str) -> list:
    if "values" in defn:
        vals = defn["values"]
        return list(vals) if isinstance(vals, (list, tuple)) else [vals]
    if "linspace" in defn:
        a, b, n = _triple(defn["linspace"], ("start", "stop", "num"), where + ".linspace")
        return np.linspace(a, b, _num(n, where + ".linspace")).tolist()
    if "logspace" in defn:  # start and stop are the values themselves, not exponents
        a, b, n = _triple(defn["logspace"], ("start", "stop", "num"), where + ".logspace")
        if a <= 0 or b <= 0:
            raise ValueError(f"{where}.logspace: start and stop must be > 0, got {a!r}, {b!r}")
        return np.geomspace(a, b, _num(n, where + ".logspace")).tolist()
    if "arange" in defn:
        a, b, step = _triple(defn["arange"], ("start", "stop", "step"), where + ".arange")
        if step == 0 or not np.isfinite([a, b, step]).all():
            raise ValueError(f"{where}.arange: needs finite numbers and a step other than 0")
        if (b - a) / step > max_axis():
            raise ValueError(f"{where}.arange: makes {(b - a) / step:.3g} values, more than {max_axis():.0e}")
        # round to kill float noise such as 0.30000000000000004 in arange(0, 1, 0.1)
        return [float(np.round(x, 12)) for x in np.arange(a, b, step)]
    raise ValueError(f"{where}: needs one of values, linspace, logspace, arange (or range for sampling)")


def round_values(values: np.ndarray) -> list[float]:
    """Generated values as the round numbers the user wrote: float noise such as
    19.999999999999996 (geomspace) or 0.30000000000000004 (arange) is cut at 12 significant
    digits, so ``logspace: [5, 40, 4]`` gives exactly 5, 10, 20, 40 and ``ds.sel(drive=20)`` works."""
    return [float(f"{x:.12g}") for x in np.asarray(values, dtype=float)]


def _triple(obj, names, where):
    if isinstance(obj, Mapping):
        missing = [n for n in names if n not in obj]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        obj = [obj[n] for n in names]
    if not isinstance(obj, (list, tuple)) or len(obj) != 3:
        raise ValueError(f"{where}: expected [{', '.join(names)}], got {obj!r}")
    for x in obj:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"{where}: expected numbers, got {obj!r}")
    return float(obj[0]), float(obj[1]), obj[2]


def _num(n, where) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or not 1 <= n <= max_axis():
        raise ValueError(f"{where}: num must be an integer from 1 to {max_axis():.0e}, got {n!r}")
    return n


def as_column(values: list) -> np.ndarray:
    """Python ints become int64, booleans bool, other numbers float64; anything else (strings,
    None, mixtures) stays as objects. (Each axis's type is settled by :mod:`.valuetypes` first.)"""
    if values and all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=bool)
    if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values) and \
            all(-2**63 <= v < 2**63 for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float)
    return np.asarray(values, dtype=object)


def grid(columns: Mapping[str, list]) -> Table:
    """Cartesian product, last axis fastest (like nested loops in the order given)."""
    names = list(columns)
    sizes = [len(columns[n]) for n in names]
    total = int(np.prod(sizes, dtype=np.int64)) if names else 1
    index = np.arange(total)
    out: Table = {}
    stride = total
    for name, size in zip(names, sizes):
        stride //= size
        col = as_column(list(columns[name]))
        out[name] = col[(index // stride) % size]
    return out


def zipped(columns: Mapping[str, list], where: str) -> Table:
    lengths = {n: len(v) for n, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: zipped parameters need equal lengths, got {lengths}")
    return {n: as_column(list(v)) for n, v in columns.items()}


def _random(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d))


def _lhs(n: int, d: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc
    return qmc.LatinHypercube(d=d, seed=seed).random(n)


def _sobol(n: int, d: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc
    return qmc.Sobol(d=d, scramble=True, seed=seed).random(n)


# How to add a sampler: write ``f(n, d, seed) -> array [n, d]`` of numbers in [0, 1) and add it
# here under the name specs use in ``axes: - sample: {method: NAME}``; validation and expansion
# take the names from this table.
SAMPLERS = {"random": _random, "lhs": _lhs, "sobol": _sobol}
#: samplers whose first n points stay the same when n grows, so a store of theirs can be extended;
#: a Latin hypercube of n + k points is a new design, not the old one plus k points
GROWABLE = {"random", "sobol"}


def sample(ranges: Mapping[str, tuple[float, float, bool]], n: int, method: str, seed: int) -> Table:
    """``n`` points in the box given by ``ranges`` (name -> (low, high, log)) by a :data:`SAMPLERS` method."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampling method {method!r} (use {', '.join(SAMPLERS)})")
    u = SAMPLERS[method](n, len(ranges), seed)
    out: Table = {}
    for j, (name, (low, high, log)) in enumerate(ranges.items()):
        if log:
            out[name] = np.exp(np.log(low) + u[:, j] * (np.log(high) - np.log(low)))
        else:
            out[name] = low + u[:, j] * (high - low)
    return out


def product(tables: list[Table]) -> Table:
    """Combine independent tables by Cartesian product of their rows (first table slowest)."""
    result: Table = {}
    count = 1
    for table in tables:
        m = len(next(iter(table.values()))) if table else 1
        result = {k: np.repeat(v, m) for k, v in result.items()}
        for k, v in table.items():
            result[k] = np.tile(v, count)
        count *= m
    return result


def product_length(tables: list[Table]) -> int:
    return int(np.prod([length(t) for t in tables], dtype=np.int64))


def product_rows(tables: list[Table], start: int, stop: int) -> Table:
    """Rows ``start:stop`` of :func:`product` (``tables``), by index arithmetic."""
    index = np.arange(start, stop, dtype=np.int64)
    stride = product_length(tables)
    out: Table = {}
    for table in tables:
        m = length(table)
        stride //= m
        pos = (index // stride) % m
        for k, v in table.items():
            out[k] = v[pos]
    return out


def length(table: Table) -> int:
    return len(next(iter(table.values()))) if table else 1


def point_codes(table: Table, names: list[str]) -> np.ndarray:
    """A stable id code per row derived from its parameter values (same values -> same id, any
    run); :func:`id_text` gives the ids as text."""
    n = length(table)
    prefix = hashlib.sha1("\x1f".join(names).encode())
    out = np.empty(n, dtype=np.uint64)

    def code(data: bytes) -> int:
        h = prefix.copy()
        h.update(data)
        return int.from_bytes(h.digest()[:8], "big") >> 4

    if names and all(np.asarray(table[k]).dtype.kind in "fiu" for k in names):
        # all numeric: hash each row's float64 bytes (+0.0 turns -0.0 into 0.0)
        cols = [np.asarray(table[k]) for k in names]
        for a in range(0, n, BLOCK):
            rows = np.ascontiguousarray(np.column_stack([np.asarray(c[a:a + BLOCK], dtype=float) + 0.0
                                                         for c in cols]))
            raw = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
            out[a:a + len(raw)] = [code(row) for row in raw.tolist()]
        return out
    cols = [np.asarray(table[name]) for name in names]
    for a in range(0, n, BLOCK):
        texts = [[_canon(v) for v in c[a:a + BLOCK].tolist()] for c in cols]
        out[a:a + min(BLOCK, n - a)] = [code("\x1f".join(row).encode()) for row in zip(*texts)] \
            if texts else [code(b"")] * min(BLOCK, n - a)
    return out


def point_ids(table: Table, names: list[str]) -> np.ndarray:
    """The ids of :func:`point_codes` as text (an object array of str)."""
    return id_text(point_codes(table, names))


def _canon(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return repr(float(v))
    return repr(v)
