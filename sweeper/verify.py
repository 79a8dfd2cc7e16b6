"""Integrity checks of a sweep store (``sweeper verify``)."""

from __future__ import annotations

import numpy as np

from . import metrics as metric_table
from .errors import SweeperError
from .store import DONE, FAILED, PENDING, SweepStore


def verify_store(path, *, check_spec: bool = True) -> list[str]:
    """Return a list of problems (empty when the store is sound).

    Checks: every array readable with the point count of ``status``; done points have finite
    traces (full length unless tf is swept) and metrics equal to those recomputed from the traces;
    failed points have a reason; the parameter coordinates and point ids match the spec kept in
    the store.
    """
    problems: list[str] = []
    st = SweepStore.open(path)
    g = st.group
    n = st.npoints
    metric_names = st.metric_names
    for name in [v.name for v in st.variables if v.name != "status"] + st.parameters:
        try:
            if name not in g:
                problems.append(f"array {name!r} is missing")
            elif g[name].shape[0] != n:
                problems.append(f"array {name!r} has {g[name].shape[0]} points, status has {n} (an "
                                "interrupted extension: `sweeper run` with the spec repairs it)")
        except Exception as exc:  # damaged array metadata
            problems.append(f"array {name!r} unreadable ({type(exc).__name__}: {exc})")
    if problems:
        return problems
    try:
        status = st.status()
        errors = st.errors()
        times = st.times
    except Exception as exc:  # a damaged status/error/time chunk
        return [f"status, error or time unreadable ({type(exc).__name__}: {exc})"]
    window = st.meta.get("metric_window")
    full = check_spec and _full_length_traces(st)
    bad_status = np.flatnonzero(~np.isin(status, [PENDING, DONE, FAILED]))
    for i in bad_status[:10]:
        problems.append(f"point {i}: unknown status {status[i]}")
    for i0 in range(0, n, st.chunk_points):
        sl = slice(i0, min(i0 + st.chunk_points, n))
        try:
            rates = g["rates"][sl].astype(float)
            stored = {name: g[name][sl] for name in metric_names}
        except Exception as exc:  # an unreadable chunk
            problems.append(f"points {sl.start}-{sl.stop - 1}: chunk unreadable ({type(exc).__name__}: {exc})")
            continue
        try:
            want = _expected_metrics(st, rates, times, window, metric_names, sl, status[sl])
        except SweeperError as exc:  # a user metric that cannot be imported here
            problems.append(f"points {sl.start}-{sl.stop - 1}: metrics cannot be recomputed: {exc}")
            continue
        for j in range(sl.stop - sl.start):
            i = sl.start + j
            if status[i] == DONE:
                if not np.isfinite(rates[j]).any():
                    problems.append(f"point {i}: marked done but its trace is empty")
                    continue
                finite = np.isfinite(rates[j]).all(axis=0)
                length = int(np.argmin(finite)) if not finite.all() else len(finite)
                if length == 0 or not np.isnan(rates[j][:, length:]).all():  # only NaN padding may follow
                    problems.append(f"point {i}: marked done but its trace has non-finite values")
                elif full and length < len(times):
                    problems.append(f"point {i}: marked done but its trace ends at sample {length} of "
                                    f"{len(times)} (NaN after t={times[length]:g} s)")
                for name in metric_names:
                    if not np.allclose(stored[name][j], want[name][j], rtol=1e-6, atol=1e-9, equal_nan=True):
                        problems.append(f"point {i}: {name} {stored[name][j].tolist()} does not match its "
                                        f"trace ({want[name][j].tolist()})")
            elif status[i] == FAILED and not errors[i]:
                problems.append(f"point {i}: marked failed without a reason")
            # a pending point may hold a trace: a run stopped between writing a chunk's traces and
            # its status (killed, disk full); the next run recomputes and overwrites it
    if check_spec:
        problems += _check_against_spec(st)
    return problems


def _expected_metrics(st: SweepStore, rates, times, window, names, sl, status) -> dict:
    """Every metric recomputed from the traces: built-ins here, the user's own by importing them."""
    user = st.meta.get("user_metrics") or {}
    want = metric_table.compute(rates, times, window, [n for n in names if n not in user])
    if user:
        from .sweep.recompute import expected_user_metrics
        want.update(expected_user_metrics(st, rates, sl, status))
    return want


def _full_length_traces(st: SweepStore) -> bool:
    """True when every point shares the store's time axis (no swept tf, no builder): NaN padding
    at the end of a done trace is then damage, not a shorter simulation."""
    from .sweep import Sweep

    meta = st.meta
    try:
        sweep = Sweep.from_text(meta["spec"], base_dir=meta["base_dir"], source=meta["spec_source"],
                                round_values="coordinates" in meta)  # older stores: values as numpy made them
    except SweeperError:
        return False
    swept = list(sweep.paths.values()) + [d[1] for d in sweep.derived.values()]
    return "network" in sweep.spec and not any(
        p is not None and p.area == "simulation" and p.field == "tf" for p in swept)


def _check_against_spec(st: SweepStore) -> list[str]:
    from .sweep import Sweep
    from .sweep import points as pts

    meta = st.meta
    try:
        sweep = Sweep.from_text(meta["spec"], base_dir=meta["base_dir"], source=meta["spec_source"],
                                round_values="coordinates" in meta)  # older stores: values as numpy made them
        table = sweep.points()
    except SweeperError as exc:
        return [f"the spec kept in the store cannot be expanded: {exc}"]
    try:
        ids, have = st.point_ids(), st.params()
    except Exception as exc:  # a damaged coordinate chunk
        return [f"point ids or coordinates unreadable ({type(exc).__name__}: {exc})"]
    want = pts.point_ids(table, sweep.parameter_names)
    problems = []
    if set(ids) != set(want) or len(ids) != len(want):
        problems.append(f"point ids do not match the spec: store has {len(ids)}, spec has {len(want)}, "
                        f"{len(set(ids) ^ set(want))} differ")
    position = {pid: k for k, pid in enumerate(want)}
    order = np.array([position.get(pid, -1) for pid in ids])
    ok = order >= 0
    for name in sweep.parameter_names:
        if name not in have:
            problems.append(f"parameter {name!r} missing from the store")
            continue
        a, b = np.asarray(have[name])[ok], np.asarray(table[name])[order[ok]]
        same = (a == b) if a.dtype == object or b.dtype == object else np.isclose(a, b, rtol=1e-15, atol=0)
        if not np.all(same):
            k = int(np.flatnonzero(~np.asarray(same))[0])
            problems.append(f"coordinate {name!r} of point {np.flatnonzero(ok)[k]} is {a[k]}, the spec says {b[k]}")
    again = pts.point_ids({k: np.asarray(v) for k, v in have.items()}, sweep.parameter_names)
    bad = np.flatnonzero(again != ids)
    for i in bad[:10]:
        problems.append(f"point {i}: id {ids[i]} does not match its coordinates")
    return problems
