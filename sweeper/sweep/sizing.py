"""How many points one task (one store shard) holds, and how big a stored chunk is.

A task should cost about ``sweep.task-seconds`` of compute: much less and Dask's per-task
cost and one file per task dominate (the tiny networks swept by the hundred thousand); much
more and the last tasks keep one worker busy while the others wait.  The cost of a point is
estimated from what the engine does per time step (docs/method.md §8): every voltage bin of
every internal population is updated, and every connection adds its input to its target's bins.
A spec's ``output.chunk_points`` (or ``sweep.chunk-points`` set to a number) overrides it.

Stored chunks aim at ``store.chunk-bytes`` (about 1 MB): a task's rates form one shard of
inner chunks of about that size, so one task writes one file per array while reads decode
only the inner chunks they need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import get as config
from ..engine.grid import n_bins


@dataclass(frozen=True)
class Layout:
    """Points per task (= per shard, the unit one writer owns) and per stored rates chunk."""

    task_points: int
    rates_chunk_points: int
    seconds_per_point: float
    from_cost: bool


# engine cost per voltage bin per time step, relative to the "approx" method
METHOD_FACTOR = {"approx": 1.0, "taylor": 1.0, "gmres": 3.0}


def point_seconds(net, steps: int | None = None) -> float:
    """Estimated engine seconds of one point of ``net`` (``steps``: time steps, default its own)."""
    sim = net.simulation
    if steps is None:
        steps = max(1, math.ceil((sim.tf - sim.t0) / sim.dt))
    bins_of = {}
    work = 0.0
    for pop in net.populations:
        if hasattr(pop, "v_min"):
            bins = n_bins(pop.v_min, pop.v_max, pop.dv)
            bins_of[pop.name] = bins
            work += bins * METHOD_FACTOR.get(str(pop.update_method), 1.0)
    for conn in net.connections:
        work += bins_of.get(conn.target, 0) * float(config("sweep.cost.per-connection-bin"))
    ns = steps * (work * float(config("sweep.cost.ns-per-bin-step")) + float(config("sweep.cost.ns-per-step")))
    return ns * 1e-9 + float(config("sweep.cost.seconds-per-point"))


def explicit_chunk_points(spec: dict) -> int | None:
    """The task size the user fixed: the spec's ``output.chunk_points``, else a numeric config."""
    given = (spec.get("output") or {}) if isinstance(spec.get("output"), dict) else {}
    if "chunk_points" in given:
        return int(given["chunk_points"])
    fixed = config("sweep.chunk-points")
    return None if fixed in (None, "auto") else int(fixed)


def layout(net, npoints: int, row_bytes: int, steps: int | None = None,
           fixed: int | None = None) -> Layout:
    """The layout of a sweep of ``npoints`` points of (about) ``net``, whose rates take
    ``row_bytes`` per point; ``fixed``: points per task given by the user."""
    per_point = point_seconds(net, steps)
    inner = max(1, int(config("store.chunk-bytes")) // max(1, row_bytes))
    if fixed is not None:
        task = max(1, min(fixed, npoints))
        return Layout(task, _divisor_at_most(task, inner), per_point, False)
    by_cost = max(1, int(float(config("sweep.task-seconds")) / per_point))
    split = -(-npoints // max(1, int(config("sweep.min-tasks"))))
    floor = min(by_cost, max(1, int(float(config("sweep.min-task-seconds")) / per_point)))
    task = max(min(by_cost, split), floor)
    task = max(1, min(task, npoints, int(config("sweep.max-task-points"))))
    if task > inner:  # whole inner chunks per shard
        task -= task % inner
    return Layout(task, min(task, inner), per_point, True)


def _divisor_at_most(n: int, k: int) -> int:
    """The largest divisor of ``n`` not above ``k`` (a shard holds whole inner chunks)."""
    if k >= n:
        return n
    for d in range(k, 0, -1):
        if n % d == 0:
            return d
    return 1


def for_sweep(sweep, probe, npoints: int, nsamples: int) -> Layout:
    """The layout of a new store for ``sweep`` (``probe``: the network of its first point;
    ``nsamples``: samples per trace on the store's time axis)."""
    every = int(sweep.output.get("record_every", 1))
    row = len(probe.recorded) * nsamples * 8
    return layout(probe, npoints, row, steps=max(1, (nsamples - 1) * every),
                  fixed=explicit_chunk_points(sweep.spec))


def local_processes(sweep, workers: int) -> tuple[bool, str]:
    """Whether a local cluster of ``workers`` should be processes rather than threads, and why.

    Threads share one interpreter: the compiled time loop runs in parallel, but building and
    checking each point's network is Python under the GIL. For a sweep of many cheap points
    that Python work is most of the time, so processes (a few seconds to start) run it in
    parallel; otherwise threads (about a second to start) are as fast. Builders already run
    in processes of their own (sweep/isolate.py), and adaptive sweeps are driven point by point:
    both stay on threads. Settings: ``cluster.local.auto-processes.*``."""
    if workers < 2 or sweep.recipe.is_builder or getattr(sweep, "adaptive", None) is not None:
        return False, ""
    cheap = float(config("cluster.local.auto-processes.max-point-seconds"))
    many = int(config("cluster.local.auto-processes.min-points"))
    per_point = point_seconds(sweep.base_network())
    if per_point < cheap and sweep.size >= many:
        return True, f"{sweep.size} points of about {per_point * 1e3:.2g} ms: their Python work runs in parallel"
    return False, ""
