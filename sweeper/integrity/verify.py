"""``sweeper verify``: decode every chunk of a store and check what it holds.

Checks, each reported per point where it concerns one: every array present with the committed
point count; every chunk decodes (its CRC-32C matches, see :func:`sweeper.store.sweepstore.checksummed`);
done points have finite traces (full length unless tf is swept or a builder makes the network)
and built-in metrics equal to what their traces give (:data:`sweeper.metrics.METRICS`); failed
points have a reason; point ids equal what the coordinates give; the coordinates equal the
spec's (the user's spec with ``spec=``, else the store's own spec, expanded without running
anything); with ``spec=`` also the time axis and the populations; with ``recompute=`` traces of
done points simulated again must be bit-identical (:mod:`.recompute`).
"""

from __future__ import annotations

import numpy as np

from .. import metrics as metric_table
from ..store import DONE, FAILED, PENDING, SweepStore
from ..ids import NO_ID
from ..sweep.resume import damaged_axis, positions, readable, rebuilt_ids, stored_columns
from . import specs
from .report import Report


def verify_store(path, *, check_spec: bool = True, spec=None, recompute=None, client=None, seed=None) -> list[str]:
    """Every problem of the store at ``path`` as a line (empty when it is sound)."""
    return verify(path, check_spec=check_spec, spec=spec, recompute=recompute, client=client, seed=seed).lines


def verify(path, *, check_spec: bool = True, spec=None, recompute=None, client=None, seed=None) -> Report:
    """Check the store at ``path``; ``spec`` is the user's spec (file or Sweep) for the checks that
    need the network; ``recompute`` an int or "all" (needs ``spec``)."""
    st = SweepStore.open(path)
    report = Report()
    if not _shapes(st, report):
        return report
    pending = st.meta.get("metrics_pending") or []
    if pending:
        report.other(f"metric(s) {', '.join(pending)} were being computed when `sweeper metrics` stopped: "
                     "run the same command again")
    _decode_written_once(st, report)
    times = readable(lambda: st.times)
    axis_ok = times is not None and not damaged_axis(times)
    if not axis_ok:
        report.other("the time axis is damaged (a lost or corrupt chunk): traces and metrics are not checked "
                     "against it; `sweeper run` with the spec rebuilds it")
    _populations(st, report)
    expect = specs.expected(st, spec) if (check_spec or spec is not None) else None
    if isinstance(expect, str):
        report.other(expect)
        expect = None
    full = expect.full_length if expect is not None else False
    status = np.full(st.npoints, -1, dtype=int)
    for c in range(st.nchunks):
        _chunk(st, c, times if axis_ok else None, full, status, report,
               expect.metric_functions if expect is not None else {})
    _ids(st, report)
    if expect is not None and expect.adaptive is not None:
        from ..sweep.adaptive import check_points
        for line in check_points(st, expect.adaptive):
            report.other(line)
    elif expect is not None:
        _against_spec(st, expect, report)
        if expect.times is not None and times is not None and not np.array_equal(times, expect.times):
            report.other(f"the time axis differs from {expect.source}'s ({len(times)} vs {len(expect.times)} samples)")
        pops = readable(lambda: st.populations)
        if expect.populations is not None and pops is not None and pops != expect.populations:
            report.other(f"the populations {pops} differ from {expect.source}'s {expect.populations}")
    if recompute is not None:
        from .recompute import recompute_points
        recompute_points(st, spec, recompute, status, report, client=client, seed=seed)
    return report


def _shapes(st: SweepStore, report: Report) -> bool:
    """Every array present with the point count the store committed."""
    g, n = st.group, st.npoints
    committed = st.committed_points
    for name in [v.name for v in st.variables] + st.parameters + ["time", "population"]:
        try:
            if name not in g:
                report.other(f"array {name!r} is missing")
            elif name not in ("time", "population") and g[name].shape[0] != n:
                report.other(f"array {name!r} has {g[name].shape[0]} points, status has {n} (an "
                             "interrupted extension: `sweeper run` with the spec repairs it)")
        except Exception as exc:  # damaged array metadata
            report.other(f"array {name!r} unreadable ({type(exc).__name__}: {exc})")
    if not report and committed is not None and committed != n:
        report.other(f"the store committed {committed} points but its arrays hold {n} (an interrupted "
                     "extension: `sweeper run` with the spec repairs it)")
    return not report


def _decode_written_once(st: SweepStore, report: Report):
    """Decode every chunk of the arrays written when points are made (ids, coordinates, axes)."""
    for name in ["point_id", *st.parameters, "time", "population"]:
        arr = st.group[name]
        step = arr.chunks[0]
        for k in range(-(-arr.shape[0] // step) if step else 0):
            key = arr.metadata.encode_chunk_key((k,))
            _, why = _read(arr, slice(k * step, (k + 1) * step))
            if why:
                report.other(f"array {name!r}: chunk {key} fails to decode ({why})")
            elif st.every_chunk_written and arr.shape[0] and st.chunk_missing(name, (k,)):
                report.other(f"array {name!r}: chunk {key} is missing")


def _populations(st: SweepStore, report: Report):
    pops = readable(lambda: st.populations)
    if pops is None or any(p == "" for p in pops) or len(set(pops)) != len(pops):
        report.other("the population axis is damaged (a lost or corrupt chunk)")


def _read(arr, sl):
    try:
        return arr[sl], None
    except Exception as exc:  # checksum mismatch, truncated or undecodable chunk
        return None, f"{type(exc).__name__}: {exc}"


def _chunk(st: SweepStore, c: int, times, full: bool, status_out: np.ndarray, report: Report, own: dict):
    """Decode every task-written array of chunk ``c`` and check its points."""
    g, sl = st.group, st.chunk_slice(c)
    idx = np.arange(sl.start, sl.stop)
    status, why = _read(g["status"], sl)
    if status is not None and st.every_chunk_written and st.chunk_missing("status", (c,)):
        status = None
        report.chunk(idx, "status chunk missing (its file was lost): the state of these points is unknown")
    elif status is None:
        report.chunk(idx, f"status, error or time unreadable: the status chunk fails to decode ({why})")
    else:
        status_out[sl] = status
        for j in np.flatnonzero(~np.isin(status, [PENDING, DONE, FAILED])):
            report.point(idx[j], f"unknown status {status[j]}")
    values, broken = {}, []
    for var in st.variables:
        if var.name != "status":
            values[var.name], why = _read(g[var.name], sl)
            if why:
                broken.append(f"{var.name}: {why}")
    finished = idx if status is None else idx[(status == DONE) | (status == FAILED)]
    for what in broken:
        report.chunk(finished, f"chunk unreadable ({what})")
    if broken or status is None:
        return
    rates = np.asarray(values["rates"], dtype=float)
    for j in np.flatnonzero(status == DONE):
        _done_point(st, idx[j], rates[j], times, full, report)
    for j in np.flatnonzero(status == FAILED):
        if not values["error"][j]:
            report.point(idx[j], "marked failed without a reason")
    if times is not None:
        _metrics(st, idx, status, rates, times, values, report, own)


def _done_point(st, i, trace, times, full, report) -> None:
    if not np.isfinite(trace).any():
        report.point(i, "marked done but its trace is empty")
        return
    finite = np.isfinite(trace).all(axis=0)
    length = int(np.argmin(finite)) if not finite.all() else len(finite)
    if length == 0 or not np.isnan(trace[:, length:]).all():  # only NaN padding may follow
        report.point(i, "marked done but its trace has non-finite values")
    elif full and times is not None and length < len(times):
        report.point(i, f"marked done but its trace ends at sample {length} of {len(times)} "
                        f"(NaN after t={times[length]:g} s)")


def _metrics(st, idx, status, rates, times, values, report, own: dict):
    """Built-in metrics of done points equal what their stored traces give: to 1e-12 for float64
    traces (the worker computed them from the same numbers; batched FFTs and fits may differ in
    the last bit with the rows beside them), to float32 rounding otherwise."""
    names = [n for n in st.metric_names if n in metric_table.BY_NAME]
    want = metric_table.compute(rates, times, st.meta.get("metric_window"), names)
    own = {k: f for k, f in own.items() if k in st.metric_names and k not in want}
    if own:  # the user's own metrics, from the user's spec (never from what the store names)
        from ..sweep import usermetrics
        sl = slice(int(idx[0]), int(idx[-1]) + 1)
        values_own, _ = usermetrics.compute(own, times, rates, st.params(sl), np.flatnonzero(status == DONE),
                                            [""] * len(idx))
        want.update(values_own)
        names += list(own)
    rtol, atol = (1e-12, 0.0) if st.group["rates"].dtype == np.float64 else (1e-6, 1e-9)
    for j in np.flatnonzero(status == DONE):
        for name in names:
            have, should = np.asarray(values[name][j], dtype=float), np.asarray(want[name][j], dtype=float)
            same = np.array_equal(have, should, equal_nan=True) or np.allclose(have, should, rtol=rtol, atol=atol,
                                                                             equal_nan=True)
            if not same:
                report.point(idx[j], f"{name} {have.tolist()} does not match its trace ({should.tolist()})")


def _ids(st: SweepStore, report: Report):
    """Point ids equal what the coordinates give (needs no spec)."""
    ids, params, intact = stored_columns(st, st.parameters)
    want = rebuilt_ids(params, st.parameters, intact)
    for i in np.flatnonzero(~intact):
        report.other(f"point {i}: coordinates damaged ({', '.join(f'{k}={params[k][i]}' for k in params)})")
    for i in np.flatnonzero(intact & (ids != want)):
        if ids[i] == NO_ID:
            report.other(f"point {i}: id lost (a lost chunk; rebuilt from its coordinates by `sweeper repair`)")
        else:
            report.point(i, f"id {st.point_ids(slice(i, i + 1))[0]} does not match its coordinates")


def _against_spec(st: SweepStore, expect: specs.Expected, report: Report):
    """The store's points are the spec's: the same ids, each with the spec's coordinates."""
    ids, have, _ = stored_columns(st, st.parameters)
    want = expect.ids
    differ = len(np.setxor1d(ids, want))
    if differ or len(ids) != len(want):
        report.other(f"point ids do not match {expect.source}: store has {len(ids)}, spec has {len(want)}, "
                     f"{differ} differ")
    order = positions(ids, want)
    ok = order >= 0
    for name in expect.names:
        if name not in have:
            report.other(f"parameter {name!r} missing from the store")
            continue
        a, b = np.asarray(have[name])[ok], np.asarray(expect.table[name])[order[ok]]
        same = (a == b) if a.dtype == object or b.dtype == object else np.isclose(a, b, rtol=1e-15, atol=0)
        for k in np.flatnonzero(~np.asarray(same, dtype=bool))[:10]:
            report.other(f"coordinate {name!r} of point {np.flatnonzero(ok)[k]} is {a[k]}, the spec says {b[k]}")
