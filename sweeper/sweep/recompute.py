"""Metrics for a finished store, from its stored traces (``sweeper metrics STORE --add / --recompute``):
one Dask task per chunk, nothing simulated again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import metrics as metric_table
from ..errors import SpecError
from ..store import DONE, FAILED, SweepStore, now, variables
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
    return [(sl.start + int(j), errors[j]) for j in np.flatnonzero(failed)]


def expected_user_metrics(store: SweepStore, rates: np.ndarray, sl: slice, status: np.ndarray) -> dict:
    """The user metrics of the done points of ``sl`` recomputed from ``rates`` (for verify)."""
    import json

    meta = store.meta
    user = meta.get("user_metrics") or {}
    funcs = _user_functions(json.dumps(user, sort_keys=True), tuple(str(f) for f in _recipe(meta).folders))
    errors = [""] * len(status)
    own, _failed = usermetrics.compute(funcs, store.times, rates, store.params(sl), np.flatnonzero(status == DONE),
                                       errors)
    return own


def _parse_added(store: SweepStore, add: dict[str, str], units: dict[str, str]) -> dict[str, dict]:
    taken = set(store.parameters) | {v.name for v in store.variables} | {"replicate"}
    problems = Problems(str(store.path), {})
    spec = {name: {"function": ref, **({"units": units[name]} if name in units else {})}
            for name, ref in add.items()}
    parsed = usermetrics.parse(spec, _recipe(store.meta).folders, taken, problems)
    if problems.items:
        raise SpecError(problems.items)
    return parsed


def add_metrics(store, add: dict[str, str] | None = None, *, recompute: bool = False,
                units: dict[str, str] | None = None, client=None) -> MetricsSummary:
    """Add user metrics (name -> ``module:function``) to a finished store and compute them from
    its traces; ``recompute=True`` computes every metric of the store again (and adds built-in
    metrics a store made by an older sweeper lacks)."""
    add = dict(add or {})
    with writer_lock(store):
        st = SweepStore.open(store, mode="r+")
        parsed = _parse_added(st, add, dict(units or {}))
        have = {v.name for v in st.variables}
        missing = [v for v in variables.VARIABLES if v.metric and v.name not in have] if recompute else []
        user = dict(st.meta.get("user_metrics") or {}, **parsed)
        for var in missing + [v for v in variables.for_store([], parsed)]:
            st.add_variable(var)
        st.set_meta(user_metrics=user, variables=[v.name for v in st.variables] + [v.name for v in missing],
                    metrics_changed=now())
        st.consolidate()
        names = st.metric_names if recompute else list(parsed)
        summary = MetricsSummary(Path(store), names)
        if not names:
            return summary
        with _default_client(client) as cl:
            futures = [cl.submit(recompute_chunk, str(st.path.resolve()), i, names, pure=False)
                       for i in range(st.nchunks)]
            for fut in futures:
                summary.failures += fut.result()
                summary.chunks += 1
        st.consolidate()
    return summary
