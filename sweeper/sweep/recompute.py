"""Metrics for a finished store, from its stored traces (``sweeper metrics STORE --add / --recompute``):
one Dask task per chunk, nothing simulated again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import metrics as metric_table
from ..errors import SpecError
from ..store import DONE, FAILED, SweepStore, crash, now, variables
from . import usermetrics
from .problems import Problems
from .runner import _default_client, _recipe, _user_functions, writer_lock


@dataclass
class MetricsSummary:
    store: Path
    computed: list[str]
    chunks: int = 0
    failures: list = field(default_factory=list)  # (point index, reason)


def recompute_chunk(store_path: str, chunk: int, names: list[str]) -> list:
    """Compute ``names`` for the done points of one chunk from their traces and write them
    (runs on a worker); a user metric that raises marks its point failed. Returns the failures."""
    import json

    store = SweepStore.open(store_path, mode="r+", consolidated=True)
    meta = store.meta
    sl = store.chunk_slice(chunk)
    status = store.status(sl)
    done = status == DONE
    if not done.any():
        return []
    rates = store.group["rates"][sl].astype(float)
    user = {k: v for k, v in (meta.get("user_metrics") or {}).items() if k in names}
    builtin = [n for n in names if n not in user]
    values = metric_table.compute(rates, store.times, meta.get("metric_window"), builtin) if builtin else {}
    errors = [str(e) for e in store.errors(sl)]
    failed = np.zeros(len(status), dtype=bool)
    if user:
        folders = tuple(str(f) for f in _recipe(meta).folders)
        funcs = _user_functions(json.dumps(user, sort_keys=True), folders)
        own, failed = usermetrics.compute(funcs, store.times, rates, store.params(sl), np.flatnonzero(done), errors)
        values.update(own)
    new_status = np.where(failed, FAILED, status)
    store.write_metrics(chunk, values, done & ~failed, status=new_status if failed.any() else None,
                        errors=errors if failed.any() else None)
    crash.step("metric.chunk")
    return [(sl.start + int(j), errors[j]) for j in np.flatnonzero(failed)]


def _users_metrics(st: SweepStore, spec) -> None:
    """Before recomputing a store's own user metrics, make them the ones the user's spec names."""
    stored = st.meta.get("user_metrics") or {}
    if not stored:
        return
    if spec is None:
        raise SpecError(f"{st.path} has metric(s) of its own ({', '.join(stored)}); pass the spec that names "
                        "them (--spec SPEC) to compute them again: code a store names is never run")
    from .runner import use_users_recipe
    from .spec import Sweep
    sweep = spec if isinstance(spec, Sweep) else Sweep.from_file(spec)
    lacking = sorted(set(stored) - set(sweep.user_metrics or {}))
    if lacking:
        raise SpecError(f"the spec {sweep.source} does not name the store's metric(s) {', '.join(lacking)}")
    use_users_recipe(st, sweep)


def _parse_added(store: SweepStore, add: dict[str, str], units: dict[str, str]) -> dict[str, dict]:
    meta = store.meta
    unfinished = {k for k in meta.get("metrics_pending") or [] if
                  (meta.get("user_metrics") or {}).get(k, {}).get("function") == add.get(k)}
    # the same metric again after an interrupted add: computed again, not refused
    taken = (set(store.parameters) | {v.name for v in store.variables} | {"replicate"}) - unfinished
    problems = Problems(str(store.path), {})
    spec = {name: {"function": ref, **({"units": units[name]} if name in units else {})}
            for name, ref in add.items()}
    parsed = usermetrics.parse(spec, _recipe(store.meta).folders, taken, problems)
    if problems.items:
        raise SpecError(problems.items)
    return parsed


def add_metrics(store, add: dict[str, str] | None = None, *, recompute: bool = False,
                units: dict[str, str] | None = None, client=None, spec=None) -> MetricsSummary:
    """Add user metrics (name -> ``module:function``) to a finished store and compute them from
    its traces; ``recompute=True`` computes every metric of the store again (and adds built-in
    metrics a store made by an older sweeper lacks).  The store's own user metrics are computed
    again only from ``spec`` (the user's spec naming them): code a store names is never run."""
    add = dict(add or {})
    with writer_lock(store):
        st = SweepStore.open(store, mode="r+")
        if recompute:
            _users_metrics(st, spec)
        parsed = _parse_added(st, add, dict(units or {}))
        have = {v.name for v in st.variables}
        missing = [v for v in variables.VARIABLES if v.metric and v.name not in have] if recompute else []
        user = dict(st.meta.get("user_metrics") or {}, **parsed)
        for var in missing + [v for v in variables.for_store([], parsed) if v.name not in have]:
            st.add_variable(var)
        crash.step("metric.array")
        new_vars = [v.name for v in st.variables] + [v.name for v in missing]
        names = [v.name for v in variables.for_store(new_vars, user) if v.metric] if recompute else list(parsed)
        # one atomic attrs write commits the new arrays; metrics_pending says they are being computed
        st.set_meta(user_metrics=user, variables=new_vars, metrics_changed=now(), metrics_pending=names)
        crash.step("metric.committed")
        st.consolidate()
        summary = MetricsSummary(Path(store), names)
        if not names:
            return summary
        with _default_client(client) as cl:
            futures = [cl.submit(recompute_chunk, str(st.path.resolve()), i, names, pure=False)
                       for i in range(st.nchunks)]
            for fut in futures:
                summary.failures += fut.result()
                summary.chunks += 1
        st.set_meta(metrics_pending=[])
        crash.step("metric.done")
        st.consolidate()
    return summary
