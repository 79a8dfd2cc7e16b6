"""Caches of what members of a sweep share: grids, leak and jump operators, initial
densities, a population's diagonals, delay kernels. Bounded by bytes (``engine.cache-bytes``
in sweeper.yaml) so that a worker's memory does not grow with the sweep."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache, wraps

import numpy as np

from .. import config
from ..model import Dist
from .delays import delay_kernel
from .grid import edges, initial_density, zero_bins
from .operators import jump_operator, leak_dest, leak_rates

CACHE_BYTES = None  # bytes per cache; None: the engine.cache-bytes setting
_setting: list = []  # that setting, read once (config.get reads the environment: ~0.2 ms)


def cache_bytes() -> int:
    """The byte limit of each operator cache (the setting is read once per process)."""
    if CACHE_BYTES is not None:
        return int(CACHE_BYTES)
    if not _setting:
        _setting.append(int(config.get("engine.cache-bytes")))
    return _setting[0]


def _nbytes(obj) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(x) for x in obj)
    return sum(_nbytes(x) for x in vars(obj).values()) if hasattr(obj, "__dict__") else 0


def _bytes_cache(fn):
    """Like ``lru_cache``, but holding at most :func:`cache_bytes` of arrays (operators can be
    large: a 200-point weight distribution on 2000 bins is megabytes). Thread-safe: local
    workers are threads."""
    entries: OrderedDict = OrderedDict()
    size = 0
    lock = threading.Lock()

    @wraps(fn)
    def cached(*key):
        nonlocal size
        with lock:
            if key in entries:
                entries.move_to_end(key)
                return entries[key][0]
        value = fn(*key)
        nbytes = _nbytes(value)
        limit = cache_bytes()
        with lock:
            if key not in entries:
                entries[key] = (value, nbytes)
                size += nbytes
                while size > limit and len(entries) > 1:
                    _, (_, dropped) = entries.popitem(last=False)
                    size -= dropped
        return value

    def cache_clear():
        nonlocal size
        with lock:
            entries.clear()
            size = 0

    cached.cache_bytes = lambda: size
    cached.cache_clear = cache_clear
    return cached


@lru_cache(maxsize=512)
def grid(v_min: float, v_max: float, dv: float):
    """(edges, reset bins, leak destination of every bin) of a grid, read-only."""
    e = edges(v_min, v_max, dv)
    zb = zero_bins(e)
    n = len(e) - 1
    dest = leak_dest(n, zb)
    for arr in (e, dest):
        arr.setflags(write=False)
    return e, zb, dest


@_bytes_cache
def jump(v_min: float, v_max: float, dv: float, values: tuple, probs: tuple):
    J = jump_operator(grid(v_min, v_max, dv)[0], values, probs)
    for arr in (J.offsets, J.values, J.diag, J.theta, J.floor):
        arr.setflags(write=False)
    return J


@_bytes_cache
def leak(v_min: float, v_max: float, dv: float, values: tuple, probs: tuple) -> np.ndarray:
    e, zb, _ = grid(v_min, v_max, dv)
    lk = leak_rates(e, zb, values, probs)
    lk.setflags(write=False)
    return lk


@_bytes_cache
def p0(v_min: float, v_max: float, dv: float, values: tuple, probs: tuple) -> np.ndarray:
    p = initial_density(grid(v_min, v_max, dv)[0], values, probs, "p0")
    p.setflags(write=False)
    return p


def _diagonals(dest: np.ndarray, lk: np.ndarray, jumps: list):
    """The off-diagonal part of one population's J as diagonals (DIA), for the kernel.

    Returns (offsets, tags, merged index, values): ``offsets`` are the distinct
    row - column offsets, +-1 (the leak) last; each contribution c is a length-n vector
    ``values[c]`` tagged 0 for the leak and 1 + g for input group g, added into diagonal
    ``merged index[c]``.
    """
    n = len(lk)
    keys, vecs = [], []
    for g, J in enumerate(jumps):
        for off, vec in zip(J.offsets.tolist(), J.values):
            keys.append((g + 1, off))
            vecs.append(vec)
    up = np.zeros(n)    # bins below the reset bins leak up: entry (k+1, k), offset +1
    down = np.zeros(n)  # bins above leak down: entry (k-1, k), offset -1
    src = np.flatnonzero(dest >= 0)
    rising = dest[src] > src
    up[dest[src[rising]]] = lk[src[rising]]
    down[dest[src[~rising]]] = lk[src[~rising]]
    for off, vec in ((1, up), (-1, down)):
        if rising.any() if off == 1 else (~rising).any():
            keys.append((0, off))
            vecs.append(vec)
    offsets = sorted({o for _, o in keys}, key=lambda o: (abs(o) == 1, o))
    index = {o: m for m, o in enumerate(offsets)}
    order = sorted(range(len(keys)), key=lambda c: (index[keys[c][1]], keys[c][0]))
    tags = np.array([keys[c][0] for c in order], dtype=np.int64)
    merged = np.array([index[keys[c][1]] for c in order], dtype=np.int64)
    values = np.array([vecs[c] for c in order]).reshape(len(order), n)
    return np.array(offsets, dtype=np.int64), tags, merged, values


@_bytes_cache
def pop_diagonals(grid_key: tuple, tau: tuple, jump_keys: tuple):
    """:func:`_diagonals` of a population with grid (v_min, v_max, dv), tau_m (values, probs)
    and one (values, probs) weight key per input group, and whether no input moves mass
    down (cached: members of a sweep often share them)."""
    jumps = [jump(*grid_key, *key) for key in jump_keys]
    offsets, tags, merged, values = _diagonals(grid(*grid_key)[2], leak(*grid_key, *tau), jumps)
    up_only = not any((J.offsets < 0).any() or J.floor.any() for J in jumps)
    values = values.ravel()
    for arr in (offsets, tags, merged, values):
        arr.setflags(write=False)
    return offsets, tags, merged, values, up_only


@lru_cache(maxsize=1024)
def delays(values: tuple, probs: tuple, dt: float):
    """:func:`delay_kernel` of a delay distribution, cached (called per member and connection)."""
    return delay_kernel(Dist(values, probs), dt)


# the names the tests and older callers use
_grid, _jump, _leak, _p0, _pop_diagonals, _delay_kernel = grid, jump, leak, p0, pop_diagonals, delays


def clear_caches() -> None:
    """Forget every cached grid, operator and delay kernel, and which model objects passed
    their checks (benchmarks time cold starts)."""
    from ..model import forget_checks
    from .grid import _grid_problem
    for fn in (grid, jump, leak, p0, pop_diagonals, delays, _grid_problem):
        fn.cache_clear()
    forget_checks()
