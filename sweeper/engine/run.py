"""Public entry points: simulate one network, or many at once grouped by structure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .. import config
from ..errors import ModelError, SimulationError
from ..model import Network
from .check import check_network, max_delay_steps
from .methods import METHODS
from .plan import active_connections, build_plan, n_steps, structure_key
from .propagate import run_members


@dataclass
class Result:
    """Firing rates of the recorded internal populations: ``rates[i]`` is the trace of ``names[i]``."""

    t: np.ndarray          # (T,) sample times t0 + n*dt, the first one holds initial_firing_rate
    rates: np.ndarray      # (P_recorded, T) float64, Hz
    names: list[str]       # recorded internal population names, network order
    name: str = "network"
    info: dict = field(default_factory=dict, repr=False, compare=False)

    def rate(self, population: str) -> np.ndarray:
        return self.rates[self.names.index(population)]


def simulate(net: Network) -> Result:
    """Simulate one network; raise SimulationError (with the reason) if it fails numerically."""
    check_network(net, net.name, sample=False)  # rates and p0 are checked while building the plan
    out = _run_group([net])[0]
    if isinstance(out, SimulationError):
        raise out
    return out


def simulate_batch(nets: Sequence[Network], max_batch: int | None = None, *, checked: bool = False) -> list:
    """Simulate many networks; same-structure ones are stepped together.

    Returns one entry per network, in order: a :class:`Result`, or the SimulationError that
    network ran into (a failing member never affects the others). ``max_batch`` (default:
    the engine.max-batch setting) bounds the members per compiled call. ``checked``: every
    network has passed :func:`check_network` already (the sweep runner checks each point).
    """
    out: list = [None] * len(nets)
    groups: dict = {}
    limit = None if checked else max_delay_steps()
    for k, net in enumerate(nets):
        try:
            if not checked:
                check_network(net, net.name, sample=False, max_delay_steps=limit)
        except ModelError as exc:
            out[k] = _as_simulation_error(exc)
            continue
        groups.setdefault(structure_key(net), []).append(k)
    limits = (int(config.get("engine.max-batch", max_batch)), int(config.get("engine.batch-bytes")))
    for members in groups.values():
        size = batch_size(nets[members[0]], *limits)
        for s in range(0, len(members), size):
            chunk = members[s:s + size]
            for k, res in zip(chunk, _run_group([nets[k] for k in chunk])):
                out[k] = res
    return out


def batch_size(net: Network, max_batch: int | None = None, batch_bytes: int | None = None) -> int:
    """Members per compiled call so that the batch's arrays stay within ``batch_bytes``
    (defaults: the engine.max-batch and engine.batch-bytes settings)."""
    from .grid import n_bins
    steps = n_steps(net.simulation)
    bins = sum(n_bins(p.v_min, p.v_max, p.dv) for p in net.internal)
    series = len(net.populations) + len(active_connections(net))  # rates, inputs, delay histories
    weights = sum(len(c.weights.values) for c in active_connections(net))
    per_member = 8 * (series * (steps + 1) + bins * (8 + min(weights, 64)))
    max_batch = int(config.get("engine.max-batch", max_batch))
    batch_bytes = int(config.get("engine.batch-bytes", batch_bytes))
    return max(1, min(max_batch, batch_bytes // max(per_member, 1)))


def _as_simulation_error(exc: ModelError) -> SimulationError:
    err = SimulationError(exc.message, exc.where)
    err.__cause__ = exc
    return err


def _run_group(nets: list[Network]) -> list:
    """Run networks that share a structure key; per-member setup errors are isolated."""
    try:
        plan = build_plan(nets)
    except ModelError as exc:
        if len(nets) == 1:
            return [_as_simulation_error(exc)]
        return [r for net in nets for r in _run_group([net])]
    B, P = len(nets), len(plan.internal)
    rates = np.full((B, P, plan.steps + 1), np.nan)
    status = np.zeros(B, dtype=np.int64)
    fail_step = np.zeros(B, dtype=np.int64)
    fail_pop = np.zeros(B, dtype=np.int64)
    sweeps = np.zeros((B, P), dtype=np.int64)
    run_members(**plan.kernel_args(), rates=rates, status=status, fail_step=fail_step, fail_pop=fail_pop,
                work_out=sweeps)
    names = [plan.internal[i] for i in plan.recorded]
    results = []
    for b, net in enumerate(nets):
        if status[b]:
            pop = net.population(plan.internal[fail_pop[b]])
            step = int(fail_step[b])
            results.append(SimulationError(
                METHODS[pop.update_method].fail_reason(int(status[b])),
                f"{net.name}: populations[{pop.name!r}] at t={float(plan.t[step])!r} s (step {step})"))
        else:
            results.append(Result(plan.t.copy(), rates[b, plan.recorded].copy(), list(names), net.name,
                                  {"iterations": dict(zip(plan.internal, sweeps[b].tolist()))}))
    return results
