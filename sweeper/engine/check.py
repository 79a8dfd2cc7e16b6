"""The one place that decides whether the engine can run a network.

:func:`check_network` runs the model-level checks (``Network.validate``) and then what only
the engine knows: update-method names (``METHODS``), voltage grids (a degenerate last bin,
docs/method.md §4.1), delay-queue lengths (§10), external rates sampled on the simulation's
time grid and the times before t0 that delays read (§2.2), and initial densities on the grid
(§4.3). Errors are :class:`ModelError` naming the key at fault.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..model import ConstantRate, ExternalPopulation, InternalPopulation, Network
from . import caches
from .delays import delay_steps
from .grid import check_grid
from .methods import METHODS, method_names
from .timeaxis import sample_times


def check_network(net: Network, where: str = "network", sample: bool = True,
                  max_delay_steps: int | None = None) -> Network:
    """Raise ModelError naming the first problem; return ``net`` when the engine can run it.

    ``sample=False`` leaves out sampling the rates and initial densities (the engine does
    that while building its arrays, with the same checks). ``max_delay_steps``: the
    engine.max-delay-steps setting, read once by a caller checking many networks.
    """
    net.validate(where)
    for pop in net.internal:
        pw = f"{where}: populations[{pop.name!r}]"
        if not isinstance(pop.update_method, str) or pop.update_method not in METHODS:
            raise ModelError(f"unknown update_method {pop.update_method!r} (use {method_names()})",
                             f"{pw}.update_method")
        check_grid(pop.v_min, pop.v_max, pop.dv, pw)
    dt = float(net.simulation.dt)
    _check_delay_lengths(net, dt, where, max_delay_steps)
    for i, c in enumerate(net.connections):
        if c.delay_queue is not None:
            need = max(delay_steps(c.delays, dt)) + 1
            if len(c.delay_queue) != need:
                raise ModelError(f"has {len(c.delay_queue)} entries, the delays {list(c.delays.values)} need "
                                 f"{need} (max delay steps + 1, oldest first)",
                                 f"{where}: connections[{i}] ({c.source}->{c.target}).delay_queue_initial")
    if sample:
        _check_samples(net, where)
    return net


def max_delay_steps() -> int:
    from ..config import get as config
    return int(config("engine.max-delay-steps"))


def _check_delay_lengths(net: Network, dt: float, where: str, limit: int | None) -> None:
    """A delay of many steps is a history the engine must hold: refused above
    ``engine.max-delay-steps`` before any array is made (a delay of 1e6 s is a typo)."""
    limit = max_delay_steps() if limit is None else limit
    for i, c in enumerate(net.connections):
        d = max((abs(float(v)) for v in c.delays.values), default=0.0)
        if not np.isfinite(d / dt) or d / dt > limit:
            raise ModelError(f"a delay of {d!r} s is {d / dt:.3g} steps of dt={dt!r}, more than "
                             f"engine.max-delay-steps={limit:.3g} (a typo? delays are in seconds)",
                             f"{where}: connections[{i}] ({c.source}->{c.target}).delays")


def _check_samples(net: Network, where: str) -> None:
    sim = net.simulation
    t0, dt = float(sim.t0), float(sim.dt)
    t = None
    for pop in net.populations:
        if isinstance(pop, ExternalPopulation):
            if not _constant_ok(pop.rate):
                t = sample_times(sim) if t is None else t
                rate_values(pop.rate, t, f"{where}: populations[{pop.name!r}].rate")
        elif isinstance(pop, InternalPopulation):
            initial_density(pop, f"{where}: populations[{pop.name!r}]")
    for c in net.connections:
        src = net.population(c.source)
        if (c.nsyn != 0 and c.delay_queue is None and isinstance(src, ExternalPopulation)
                and not _constant_ok(src.rate)):
            rate_values(src.rate, queue_times(c, t0, dt), f"{where}: populations[{c.source!r}].rate")


def _constant_ok(rate) -> bool:
    """A constant rate that :func:`rate_values` passes at every time, without sampling it."""
    return isinstance(rate, ConstantRate) and rate.value >= 0


def queue_times(c, t0: float, dt: float) -> np.ndarray:
    """The times before t0 that an external source's initial delay queue holds, oldest first."""
    D = max(caches.delays(c.delays.values, c.delays.probs, dt)[0])
    return t0 - np.arange(D, -1, -1, dtype=float) * dt


def rate_values(rate, t: np.ndarray, where: str) -> np.ndarray:
    """An external rate at times t, refused unless finite and >= 0 (up to -1e-14, DiPDE's
    rule; such values count as their absolute value), docs/method.md §2.2."""
    if _constant_ok(rate):
        return np.full(t.shape, float(rate.value))
    try:
        v = np.asarray(rate(t), dtype=float)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's callable may raise anything
        raise ModelError(f"rate could not be evaluated: {exc}", where) from None
    v = np.broadcast_to(v, t.shape).astype(float)
    bad = ~np.isfinite(v) | (v <= -1e-14)
    if bad.any():
        i = int(np.argmax(bad))
        raise ModelError(f"rate is {v[i]!r} Hz at t={t[i]!r} (rates must be finite and >= 0)", where)
    return np.abs(v)


def initial_density(pop: InternalPopulation, where: str) -> np.ndarray:
    """A population's initial density on its grid (cached); ModelError at ``where.p0`` when
    the distribution does not put mass 1 on the grid."""
    try:
        return caches.p0(float(pop.v_min), float(pop.v_max), float(pop.dv), pop.p0.values, pop.p0.probs)
    except ModelError as exc:
        raise ModelError(exc.message, f"{where}.p0") from None
