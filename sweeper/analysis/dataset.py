"""Reading a sweep store back: an xarray Dataset that never breaks, value selection within
float noise, status summaries and a table of points."""

from __future__ import annotations

import math

import numpy as np

from ..errors import SweeperError
from ..store import FAILED, STATUS_NAMES, SweepStore

STRINGS = ("point_id", "error")


def open_sweep(store, *, index: bool = True):
    """Open a sweep store as a lazy (dask-backed) :class:`xarray.Dataset`.

    Variables: ``rates`` [point, population, time], one [point, population] array per metric
    (``mean_rate``, ``final_rate``, ``peak_rate``, ..., ``regime``), ``status`` and ``error``
    [point]; every variable and coordinate carries CF ``units`` / ``long_name`` (``status`` and
    ``regime`` their ``flag_values`` / ``flag_meanings``); ``ds.attrs["sweeper"]`` is the store's
    metadata as a dict.  With ``index=True`` (default) ``point`` is a MultiIndex over the sweep's
    axis parameters (derived parameters stay coordinates along ``point``): ``ds.sel(w=0.002)``
    selects by value and ``ds.unstack("point")`` gives one dimension per parameter, with NaN
    where the sweep has no point (constraints, samples).  Select values within float noise with
    :func:`select` (``ds.sel(time=0.009, method="nearest")`` for the time axis).
    """
    import pandas as pd
    import xarray as xr

    st = SweepStore.open(store)  # clear error for a missing or foreign store
    meta = st.meta
    chunks = {"point": read_block(st)}
    try:
        ds = xr.open_zarr(str(st.path), consolidated=True, zarr_format=3, chunks=chunks)
    except Exception:
        ds = xr.open_zarr(str(st.path), consolidated=False, zarr_format=3, chunks=chunks)
    params = st.parameters
    described = meta.get("coordinates") or {}
    ds = ds.set_coords([p for p in params if p in ds] + ["point_id"])
    for name in STRINGS:  # objects, so that unstack can fill points the sweep does not have
        if name in ds.variables:
            ds[name] = ds[name].astype(object)
    for var in st.variables:
        if var.name in ds.variables:
            ds[var.name].attrs.update(var.cf_attrs())
    for name in params:
        info = described.get(name) or {}
        ds[name].attrs.update({k: v for k, v in (("long_name", info.get("long_name", name)),
                                                 ("units", info.get("units"))) if v})
    ds["time"].attrs.update(units="s", long_name="time")
    ds["population"].attrs.update(long_name="recorded population")
    ds.attrs = {"sweeper": meta, "spec": meta.get("spec", "")}
    axis = [p for p in params if (described.get(p) or {}).get("role", "axis") == "axis"]
    if index and axis:
        values = [ds[p].values for p in axis]
        attrs = {p: dict(ds[p].attrs) for p in axis}
        midx = pd.MultiIndex.from_arrays(values, names=axis)
        ds = ds.drop_vars(axis).assign_coords(xr.Coordinates.from_pandas_multiindex(midx, "point"))
        for p in axis:
            ds[p].attrs.update(attrs[p])
    return ds


def read_block(st: SweepStore) -> int:
    """Points per dask block: whole store chunks, about ``store.read-block-bytes`` of traces each
    (few blocks keep opening fast; bounded ones keep a reduction streaming)."""
    from ..config import get as config
    per_point = max(1, len(st.populations) * len(st.times) * (4 if st.meta.get("dtype") == "float32" else 8))
    c = math.lcm(st.chunk_points, st.group["point_id"].chunks[0])  # whole chunks of every array
    return max(c, int(config("store.read-block-bytes")) // per_point // c * c)


def nearest(values, want, name: str, tolerance: float = 1e-9):
    """The entry of ``values`` equal to ``want`` within ``tolerance`` (relative), or a one-line
    SweeperError naming the nearest values there are. ``want`` may be text (``--sel``): it is
    read as the coordinate's type (a number, true/false for a flag, the text itself)."""
    uniq = np.unique(np.asarray(values))
    if uniq.dtype.kind == "b":
        flag = _as_flag(want)
        if flag is None or flag not in uniq:
            raise SweeperError(f"{name}={want!r} is not in the store (values: {', '.join(map(str, uniq))})")
        return flag
    if uniq.dtype.kind not in "fiu":
        for candidate in (want, str(want)):
            if candidate in uniq:
                return candidate
        raise SweeperError(f"{name}={want!r} is not in the store (values: {', '.join(map(str, uniq[:10]))})")
    try:
        want = float(want)
    except (TypeError, ValueError):
        raise SweeperError(f"{name}={want!r} is not a number (values: {', '.join(f'{u:g}' for u in uniq[:10])})") \
            from None
    k = np.argsort(np.abs(uniq - want))
    if len(k) and abs(uniq[k[0]] - want) <= tolerance * max(1.0, abs(want)):
        return uniq[k[0]].item()
    near = ", ".join(f"{uniq[i]:.6g}" for i in sorted(k[:3]))
    raise SweeperError(f"{name}={want:g} is not in the store (nearest: {near})")


def _as_flag(want):
    if isinstance(want, (bool, np.bool_)):
        return bool(want)
    text = str(want).strip().lower()
    return {"true": True, "1": True, "1.0": True, "yes": True,
            "false": False, "0": False, "0.0": False, "no": False}.get(text)


def select(ds, *, tolerance: float = 1e-9, **values):
    """``ds.sel(**values)`` where each value may differ from the stored one by float noise
    (``tolerance``, relative); a value that is not there raises SweeperError naming the nearest."""
    exact = {}
    for name, want in values.items():
        if name not in ds.coords:
            known = [c for c in ds.coords if c not in ("point", "population")]
            raise SweeperError(f"unknown parameter {name!r} (known: {', '.join(known)})")
        exact[name] = nearest(ds[name].values, want, name, tolerance)
    return ds.sel(**exact)


def status_text(store, locked_by: str | None = None) -> str:
    """Counts of pending / done / failed points and the first failures (``locked_by``: who holds
    the store's writer lock, as the caller found it)."""
    st = SweepStore.open(store)
    meta = st.meta
    counts = st.counts()
    lines = [f"store:      {st.path}",
             f"spec:       {meta.get('spec_source')} (hash {meta.get('spec_hash')})",
             f"points:     {st.npoints} ({len(st.parameters)} parameters: {', '.join(st.parameters)})",
             "status:     " + ", ".join(f"{counts[name]} {name}" for name in STATUS_NAMES.values()),
             f"created:    {meta.get('created')}",
             f"completed:  {meta.get('completed') or '-'}"]
    if locked_by:
        lines.append(f"locked by:  {locked_by}")
    failed = np.flatnonzero(st.status() == FAILED)
    if len(failed):
        errors = st.errors()
        ids = st.point_ids()
        lines.append("failures:")
        for i in failed[:20]:
            lines.append(f"  point {i} ({ids[i]}): {errors[i]}")
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more")
    return "\n".join(lines)


def points_frame(store, metric: str | list[str] | None = "mean_rate"):
    """A pandas DataFrame: one row per point with its parameters, status, the metric(s) per
    population (``metric=None``: every metric of the store) and the error."""
    import pandas as pd

    st = SweepStore.open(store)
    names = st.metric_names if metric is None else [metric] if isinstance(metric, str) else list(metric)
    unknown = [m for m in names if m not in st.metric_names]
    if unknown:
        raise SweeperError(f"unknown metric {unknown[0]!r} (metrics: {', '.join(st.metric_names)})")
    frame = pd.DataFrame(st.params())
    frame.insert(0, "point_id", st.point_ids())
    frame["status"] = [STATUS_NAMES.get(int(s), str(s)) for s in st.status()]
    for name in names:
        values = st.group[name][:]
        for j, pop in enumerate(st.populations):
            frame[f"{name}[{pop}]"] = values[:, j]
    frame["error"] = st.errors()
    return frame
