"""Limits checked before anything runs: time steps per point and memory per chunk task.

A typo such as ``tf: 19999`` (2e8 steps) or a delay of 1e6 s is accepted by the model but would
make every task ask for tens of GiB, or never end. The estimate counts what a chunk task holds at
once: the traces of its points (computed and written), and per network the probability arrays of
each population and the history each delayed connection keeps. Knobs: ``sweep.max-steps`` and
``sweep.max-task-bytes`` (sweeper.yaml).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..config import get as config
from ..model import Network


def steps(net: Network) -> float:
    """Time steps of one point (a float: may be huge or infinite)."""
    sim = net.simulation
    span = float(sim.tf) - float(sim.t0)
    dt = float(sim.dt)
    if not math.isfinite(span) or not math.isfinite(dt) or dt <= 0:
        return math.inf
    return max(0.0, span / dt)


def task_bytes(net: Network, chunk_points: int) -> float:
    """Estimated bytes one chunk task of ``chunk_points`` such networks holds at once."""
    n = steps(net) + 1
    dt = float(net.simulation.dt)
    traces = 2.0 * chunk_points * len(net.recorded) * n * 8  # the engine's result and the chunk's array
    bins = {p.name: max(1.0, (float(p.v_max) - float(p.v_min)) / float(p.dv)) for p in net.internal}
    state = 8.0 * sum(bins.values()) * 8  # densities, fluxes and work arrays per population
    history = 0.0
    for c in net.connections:
        d = max((abs(float(v)) for v in c.delays.values), default=0.0)
        history += 8.0 * (d / dt + 1 if math.isfinite(d / dt) else math.inf)
    return traces + chunk_points * (state + history)


def _size(nbytes: float) -> str:
    if not math.isfinite(nbytes):
        return "unbounded memory"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def problems(net: Network, chunk_points: int, where: str) -> list[str]:
    """Why ``net`` (one point) is over a limit, as messages; empty when it is within them."""
    out = []
    max_steps = float(config("sweep.max-steps"))
    s = steps(net)
    sim = net.simulation
    if s > max_steps:
        out.append(f"{where}: simulation t0={sim.t0!r} .. tf={sim.tf!r} with dt={sim.dt!r} makes "
                   f"{s:.3g} time steps per point, more than sweep.max-steps={max_steps:.3g} "
                   "(a typo? tf and dt are in seconds)")
        return out
    limit = float(config("sweep.max-task-bytes"))
    need = task_bytes(net, chunk_points)
    if need > limit:
        out.append(f"{where}: one chunk task of {chunk_points} point(s) would need about {_size(need)} "
                   f"(traces of {s:.3g} steps, delays up to "
                   f"{max((max(map(abs, c.delays.values), default=0) for c in net.connections), default=0):g} s), "
                   f"more than a worker's sweep.max-task-bytes={_size(limit)}: shorten tf or the delays, "
                   "use fewer chunk_points, or raise the limit")
    return out


def max_of(values: Iterable) -> float | None:
    nums = [float(v) for v in values if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)]
    return max(nums) if nums else None


def check_sweep(sweep, base: Network, P) -> None:
    """Add to ``P`` every limit a point of ``sweep`` would pass: the base network, each swept
    value on its own (at most a few hundred per axis, the largest first) and the longest tf."""
    chunk = int(sweep.output["chunk_points"]) if isinstance(sweep.output.get("chunk_points"), int) else 1
    nets = [(("simulation",), base, "the network")]
    for name, values in sweep.values.items():
        path = sweep.paths.get(name)
        if path is None:
            continue
        numeric = sorted({float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)},
                         key=abs, reverse=True)[:200]
        for v in numeric:
            try:
                nets.append((("parameters", name), path.apply(base, v), f"{path.text}={v!r}"))
            except Exception:  # the value checks report it
                pass
    for name, (low, high, _log) in sweep.ranges.items():
        path = sweep.paths.get(name)
        for v in (low, high) if path is not None else ():
            try:
                nets.append((("parameters", name, "range"), path.apply(base, v), f"{path.text}={v!r}"))
            except Exception:
                pass
    tf_names = [n for n, (_e, p) in sweep.derived.items() if p is not None and p.area == "simulation"
                and p.field == "tf"]
    if tf_names and not P.items:
        table = sweep.points()
        for name in tf_names:
            col = np.asarray(table[name], dtype=float)
            if len(col):
                worst = float(np.max(col)) if np.isfinite(col).all() else math.inf
                path = sweep.derived[name][1]
                try:
                    nets.append((("derived", name), path.apply(base, worst) if math.isfinite(worst) else
                                 _with_tf(base, worst), f"{path.text}={worst!r}"))
                except Exception as exc:
                    P.add(("derived", name), f"{path.text}={worst!r}: {exc}")
    for key, net, where in nets:
        for message in problems(net, chunk, where):
            P.add(key, message)
            return


def _with_tf(net: Network, tf: float) -> Network:
    from dataclasses import replace
    return replace(net, simulation=replace(net.simulation, tf=tf))
