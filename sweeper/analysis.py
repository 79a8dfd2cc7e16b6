"""Reading a sweep store back: xarray datasets, summaries and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import StoreError
from .store import STATUS_NAMES, SweepStore


def open_sweep(store, *, index: bool = True):
    """Open a sweep store as an :class:`xarray.Dataset`.

    Variables: ``rates`` [point, population, time], ``mean_rate`` and ``final_rate``
    [point, population], ``status`` and ``error`` [point]. With ``index=True`` (default) the
    ``point`` dimension is indexed by the parameters, so ``ds.sel(w=0.002)`` selects by value
    and, for grid sweeps, ``ds.unstack("point")`` gives one dimension per parameter.
    """
    import xarray as xr

    st = SweepStore.open(store)  # clear error for a missing or foreign store
    try:
        ds = xr.open_zarr(str(st.path), consolidated=True, zarr_format=3)
    except Exception:
        ds = xr.open_zarr(str(st.path), consolidated=False, zarr_format=3)
    params = st.parameters
    ds = ds.set_coords([p for p in params if p in ds] + ["point_id"])
    ds.attrs = {"sweeper": json.dumps(st.meta, default=str), "spec": st.meta.get("spec", "")}
    if index and params:
        ds = ds.set_index(point=params)
    return ds


def status_text(store) -> str:
    """Counts of pending / done / failed points and the first failures."""
    st = SweepStore.open(store)
    meta = st.meta
    counts = st.counts()
    lines = [f"store:      {st.path}",
             f"spec:       {meta.get('spec_source')} (hash {meta.get('spec_hash')})",
             f"points:     {st.npoints} ({len(st.parameters)} parameters: {', '.join(st.parameters)})",
             f"status:     " + ", ".join(f"{counts[name]} {name}" for name in STATUS_NAMES.values()),
             f"created:    {meta.get('created')}",
             f"completed:  {meta.get('completed') or '-'}"]
    from .store.lock import describe, holder
    lock = holder(st.path)
    if lock:
        lines.append(f"locked by:  {describe(lock)}")
    failed = np.flatnonzero(st.status() == 2)
    if len(failed):
        errors = st.errors()
        ids = st.point_ids()
        lines.append("failures:")
        for i in failed[:20]:
            lines.append(f"  point {i} ({ids[i]}): {errors[i]}")
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more")
    return "\n".join(lines)


def points_frame(store, metric: str = "mean_rate"):
    """A pandas DataFrame: one row per point with its parameters, status and metric per population."""
    import pandas as pd

    st = SweepStore.open(store)
    frame = pd.DataFrame(st.params())
    frame.insert(0, "point_id", st.point_ids())
    frame["status"] = [STATUS_NAMES[int(s)] for s in st.status()]
    values = st.group[metric][:]
    for j, pop in enumerate(st.populations):
        frame[f"{metric}[{pop}]"] = values[:, j]
    frame["error"] = st.errors()
    return frame


def plot_heatmap(store, out, *, x: str | None = None, y: str | None = None, metric: str = "mean_rate",
                 population: str | None = None, **fixed):
    """PNG heatmap of ``metric`` for one population over two parameters (others fixed by value)."""
    ds = open_sweep(store)
    st = SweepStore.open(store)
    params = [p for p in st.parameters]
    x = x or params[0]
    y = y or (params[1] if len(params) > 1 else None)
    for name in [x, y] + list(fixed):
        if name is not None and name not in params:
            raise StoreError(f"unknown parameter {name!r} (parameters: {', '.join(params)})")
    pops = st.populations
    chosen = [population] if population else pops
    for p in chosen:
        if p not in pops:
            raise StoreError(f"unknown population {p!r} (populations: {', '.join(pops)})")
    data = ds[metric]
    if fixed:
        data = data.sel(**fixed)
    fig, axes = _figure(1, len(chosen), figsize=(5.2 * len(chosen), 4.2))
    for ax, pop in zip(axes[0], chosen):
        d = data.sel(population=pop)
        if y is None:
            frame = d.to_series().reset_index()
            ax.plot(frame[x], frame[metric], "o-")
            ax.set_xlabel(x)
            ax.set_ylabel(f"{metric} (Hz)")
        else:
            others = [p for p in params if p not in (x, y) and p not in fixed]
            frame = d.to_series().reset_index()
            if others:  # average over parameters that are neither axis nor fixed
                frame = frame.groupby([x, y], as_index=False)[metric].mean()
            grid = frame.pivot_table(index=y, columns=x, values=metric, aggfunc="mean", dropna=False)
            mesh = ax.pcolormesh(_edges(grid.columns.values), _edges(grid.index.values), grid.values,
                                 shading="flat", cmap="viridis")
            fig.colorbar(mesh, ax=ax, label=f"{metric} (Hz)")
            ax.set_xlabel(x)
            ax.set_ylabel(y)
        ax.set_title(pop)
    fig.suptitle(f"{st.meta.get('name', '')}: {metric}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return Path(out)


def plot_traces(store, out, *, points: list[int] | None = None, population: str | None = None, **sel):
    """PNG of rate traces of selected points (by index, or by parameter values via ``sel``)."""
    ds = open_sweep(store, index=False)
    st = SweepStore.open(store)
    if sel:
        mask = np.ones(st.npoints, dtype=bool)
        for k, v in sel.items():
            if k not in st.parameters:
                raise StoreError(f"unknown parameter {k!r} (parameters: {', '.join(st.parameters)})")
            mask &= np.isclose(ds[k].values.astype(float), float(v), rtol=1e-9, atol=0)
        idx = np.flatnonzero(mask)
    else:
        idx = np.asarray(points if points is not None else range(min(st.npoints, 5)))
    if len(idx) == 0:
        raise StoreError(f"no point matches {sel}")
    idx = idx[:12]
    pops = [population] if population else st.populations
    fig, axes = _figure(len(pops), 1, figsize=(7, 2.6 * len(pops)), sharex=True)
    t = ds["time"].values
    for ax, pop in zip(axes[:, 0], pops):
        j = st.populations.index(pop)
        for i in idx:
            label = ", ".join(f"{k}={ds[k].values[i]:.4g}" if isinstance(ds[k].values[i], float)
                              else f"{k}={ds[k].values[i]}" for k in st.parameters)
            ax.plot(t, ds["rates"].values[i, j], lw=1, label=label)
        ax.set_ylabel(f"{pop} rate (Hz)")
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return Path(out)


def _figure(rows: int, cols: int, **kw):
    """A figure drawn by the Agg canvas, no pyplot: no global backend or figure registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize"))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False, **kw)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (for pcolormesh)."""
    c = np.asarray(centres, dtype=float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5]) if c[0] == 0 else np.array([c[0] * 0.9, c[0] * 1.1])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
