"""Plots of a sweep store, chosen by the sweep's shape (PNG, drawn without pyplot).

* one free parameter: a line per population, the metric against the parameter;
* two free parameters on a grid: a heatmap per population;
* more: facets, one panel per value combination of the others (never a silent average;
  ``reduce="mean"|"max"|"min"`` reduces over them when asked);
* sampled (or sparse) point sets: a scatter coloured by the metric.

Parameters sampled or spaced logarithmically get log axes; every axis and colour bar names
its units; the title says over which window the metric was taken.  Every user mistake raises
:class:`~sweeper.errors.SweeperError` with one line (the CLI turns it into exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SweeperError
from ..store import SweepStore
from .dataset import nearest

MAX_PANELS = 24        # facets beyond this: fix or reduce parameters instead
MAX_TRACES = 500       # traces in one figure; more is not readable
GRID_FILL = 0.5        # a point set covering less of its x-y grid than this is drawn as a scatter
REDUCERS = ("mean", "max", "min")


@dataclass
class Frame:
    """What a plot needs from the store, read once: the selected points' parameters and metric."""

    store: SweepStore
    meta: dict
    params: dict            # name -> values [point] of the selected points
    index: np.ndarray       # their point indices
    metric: str
    values: np.ndarray      # [point, population]
    populations: list[str]

    def info(self, name: str) -> dict:
        return (self.meta.get("coordinates") or {}).get(name) or {}

    def label(self, name: str) -> str:
        units = self.info(name).get("units")
        return f"{name} ({units})" if units and units != "1" else name

    def is_log(self, name: str) -> bool:
        v = np.asarray(self.params[name])
        return (v.dtype.kind in "fiu" and self.info(name).get("scale") == "log"
                and bool(np.all(v.astype(float) > 0)))

    def metric_label(self) -> str:
        var = next((v for v in self.store.variables if v.name == self.metric), None)
        units = var.units if var is not None else None
        return f"{self.metric} ({units})" if units else self.metric

    def title(self) -> str:
        window = self.meta.get("metric_window")
        where = f"final {window:g} s" if window else "second half of each run"
        return f"{self.meta.get('name', '')}: {self.metric} over the {where}"


def _figure(rows: int, cols: int, **kw):
    """A figure drawn by the Agg canvas, no pyplot: no global backend or figure registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize"))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False, **kw)


def _populations(st: SweepStore, population: str | None) -> list[str]:
    pops = st.populations
    if population is None:
        return pops
    if population not in pops:
        raise SweeperError(f"unknown population {population!r} (populations: {', '.join(pops)})")
    return [population]


def _selected(st: SweepStore, params: dict, fixed: dict) -> np.ndarray:
    """Indices of the points whose parameters equal ``fixed`` (within float noise)."""
    mask = np.ones(st.npoints, dtype=bool)
    for name, want in fixed.items():
        if name not in params:
            raise SweeperError(f"unknown parameter {name!r} (parameters: {', '.join(params)})")
        col = np.asarray(params[name])
        value = nearest(col, want, name)
        mask &= col == value
    return np.flatnonzero(mask)


def read_frame(store, metric: str, fixed: dict, population: str | None = None) -> Frame:
    st = SweepStore.open(store)
    if metric not in st.metric_names:
        raise SweeperError(f"unknown metric {metric!r} (metrics: {', '.join(st.metric_names)})")
    params = st.params()
    idx = _selected(st, params, fixed)
    if len(idx) == 0:
        raise SweeperError(f"no point has {', '.join(f'{k}={v}' for k, v in fixed.items())}")
    pops = _populations(st, population)
    cols = [st.populations.index(p) for p in pops]
    values = st.group[metric][:][idx][:, cols].astype(float)
    return Frame(st, st.meta, {k: v[idx] for k, v in params.items()}, idx, metric, values, pops)


def free_parameters(frame: Frame, fixed: dict) -> list[str]:
    """Axis parameters (not derived) that vary among the selected points, in spec order."""
    out = []
    for name, col in frame.params.items():
        if name in fixed or frame.info(name).get("role", "axis") != "axis":
            continue
        if len(np.unique(np.asarray(col))) > 1:
            out.append(name)
    return out


def metric_figure(store, *, metric: str = "mean_rate", x: str | None = None, y: str | None = None,
                  population: str | None = None, reduce: str | None = None, **fixed):
    """The figure of ``metric`` over the sweep, its kind chosen by the sweep's shape."""
    if reduce is not None and reduce not in REDUCERS:
        raise SweeperError(f"--reduce takes {', '.join(REDUCERS)}, got {reduce!r}")
    frame = read_frame(store, metric, fixed, population)
    free = free_parameters(frame, fixed)
    for name in (x, y):
        if name is not None and name not in frame.params:
            raise SweeperError(f"unknown parameter {name!r} (parameters: {', '.join(frame.params)})")
    want = 2 if (y is not None or len(free) > 1) else 1
    axes = [n for n in (x, y) if n is not None]
    axes += [n for n in free if n not in axes][:max(0, want - len(axes))]
    others = [n for n in free if n not in axes]
    if not axes:
        raise SweeperError("no parameter varies among the selected points: nothing to plot "
                           "(drop a --sel, or use --traces)")
    sampled = any(frame.info(n).get("axis") == "sample" for n in axes)
    if len(axes) == 1:
        return _lines(frame, axes[0], others, reduce)
    if sampled or _fill(frame, axes) < GRID_FILL:
        return _scatter(frame, axes[0], axes[1], others, reduce)
    return _heatmaps(frame, axes[0], axes[1], others, reduce)


def _numbers(values) -> tuple[np.ndarray, list[str] | None]:
    """Values as numbers to place on an axis: numbers and flags as they are, text as the index
    of its (sorted) distinct values, with those values as labels."""
    v = np.asarray(values)
    if v.dtype.kind in "fiub":
        return v.astype(float), None
    labels, codes = np.unique(v.astype(str), return_inverse=True)
    return codes.astype(float), [str(x) for x in labels]


def _fill(frame: Frame, axes: list[str]) -> float:
    cols = [np.asarray(frame.params[n]) for n in axes]
    cells = np.prod([len(np.unique(c)) for c in cols])
    pairs = len({tuple(row) for row in zip(*cols)})
    return pairs / cells


def _groups(frame: Frame, others: list[str], reduce: str | None) -> list[tuple[str, np.ndarray]]:
    """(label, point mask) per facet: every value combination of ``others``, or one group of all
    points when they are reduced."""
    n = len(frame.index)
    if not others or reduce is not None:
        label = f"{reduce} over {', '.join(others)}" if others else ""
        return [(label, np.ones(n, dtype=bool))]
    keys = [tuple(row) for row in zip(*(np.asarray(frame.params[o]) for o in others))]
    combos = sorted(set(keys))
    if len(combos) * len(frame.populations) > MAX_PANELS:
        raise SweeperError(f"{', '.join(others)} take {len(combos)} value combinations: too many panels; "
                           f"fix them with --sel NAME=VALUE or reduce them with --reduce mean|max|min")
    return [(", ".join(f"{o}={_fmt(v)}" for o, v in zip(others, combo)),
             np.array([k == combo for k in keys])) for combo in combos]


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def _reduced(keys: list[np.ndarray], values: np.ndarray, reduce: str | None):
    """Unique rows of ``keys`` and ``values`` reduced over points that share them."""
    import pandas as pd
    frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    frame["v"] = values
    g = frame.groupby(list(frame.columns[:-1]), sort=True)["v"]
    out = getattr(g, reduce or "mean")()
    if len(keys) == 1:
        return [out.index.to_numpy()], out.to_numpy()
    return [out.index.get_level_values(i).to_numpy() for i in range(len(keys))], out.to_numpy()


def _lines(frame: Frame, x: str, others: list[str], reduce: str | None):
    groups = _groups(frame, others, reduce)
    fig, axes = _figure(1, len(groups), figsize=(5.2 * len(groups), 4.0))
    for ax, (label, mask) in zip(axes[0], groups):
        for j, pop in enumerate(frame.populations):
            (xs,), ys = _reduced([np.asarray(frame.params[x])[mask]], frame.values[mask, j], reduce)
            xv, labels = _numbers(xs)
            ax.plot(xv, ys, "o-", label=pop)
            if labels is not None:  # text values: one tick each
                ax.set_xticks(np.arange(len(labels)), labels)
        ax.set_xlabel(frame.label(x))
        ax.set_ylabel(frame.metric_label())
        flags = _flags(frame)
        if flags is not None:  # a coded metric (regime): its names on the axis, not numbers
            ax.set_yticks(flags[0], flags[1])
            ax.set_ylim(min(flags[0]) - 0.5, max(flags[0]) + 0.5)
        if frame.is_log(x):
            _log_axis(ax, ax.xaxis, np.asarray(frame.params[x], dtype=float))
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=8, title="population")
    fig.suptitle(frame.title(), fontsize=10)
    fig.tight_layout()
    return fig


def _color_scale(frame: Frame, values: np.ndarray):
    """(norm, cmap, colour-bar ticks, tick labels) for the metric; flags get a category scale."""
    from matplotlib.colors import BoundaryNorm, Normalize
    coded = _flags(frame)
    if coded is not None:
        flags, names = coded
        edges = np.arange(len(flags) + 1) - 0.5 + min(flags)
        return BoundaryNorm(edges, len(flags)), "tab10", flags, names
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    return Normalize(lo, hi if hi > lo else lo + 1), "viridis", None, None


def _flags(frame: Frame):
    """(codes, names) of a coded metric (CF flag_values / flag_meanings), else None."""
    var = next((v for v in frame.store.variables if v.name == frame.metric), None)
    flags = var.attrs.get("flag_values") if var is not None else None
    if not flags:
        return None
    return list(flags), var.attrs["flag_meanings"].split()


def _colorbar(fig, mappable, ax, frame: Frame, ticks, names):
    bar = fig.colorbar(mappable, ax=ax, label=frame.metric_label())
    if ticks is not None:
        bar.set_ticks(ticks)
        bar.set_ticklabels(names)
    return bar


def _panels(frame: Frame, groups: list) -> tuple:
    """(figure, axes getter): populations side by side, facets below each other."""
    rows, cols = len(groups), len(frame.populations)
    fig, axes = _figure(rows, cols, figsize=(5.0 * cols, 4.0 * rows))
    return fig, lambda j, k: axes[k, j]


def _heatmaps(frame: Frame, x: str, y: str, others: list[str], reduce: str | None):
    groups = _groups(frame, others, reduce)
    fig, panel = _panels(frame, groups)
    norm, cmap, ticks, names = _color_scale(frame, frame.values)
    for j, pop in enumerate(frame.populations):
        for k, (label, mask) in enumerate(groups):
            ax = panel(j, k)
            (xs, ys), vs = _reduced([np.asarray(frame.params[x])[mask], np.asarray(frame.params[y])[mask]],
                                    frame.values[mask, j], reduce)
            (xn, xl), (yn, yl) = _numbers(xs), _numbers(ys)
            ux, uy = np.unique(xn), np.unique(yn)
            grid = np.full((len(uy), len(ux)), np.nan)
            grid[np.searchsorted(uy, yn), np.searchsorted(ux, xn)] = vs
            cx, cy = _cells(ux, frame.is_log(x), xl), _cells(uy, frame.is_log(y), yl)
            mesh = ax.pcolormesh(cx.edges, cy.edges, np.ma.masked_invalid(grid), shading="flat", cmap=cmap,
                                 norm=norm)
            _colorbar(fig, mesh, ax, frame, ticks, names)
            _axes_labels(ax, frame, x, y, f"{pop}" + (f"  ({label})" if label else ""), cx, cy)
    fig.suptitle(frame.title(), fontsize=10)
    fig.tight_layout()
    return fig


@dataclass
class _Cells:
    """How one heatmap axis draws its values: on a real (linear or log) scale when they are
    evenly spaced on it, else as equal cells labelled with the values."""

    edges: np.ndarray
    scale: str               # "linear" | "log" | "category"
    values: np.ndarray


def _even(v: np.ndarray) -> bool:
    d = np.diff(v)
    return len(v) < 3 or bool(np.allclose(d, d[0], rtol=1e-6, atol=0))


def _cells(values: np.ndarray, log: bool, labels: list[str] | None = None) -> _Cells:
    if labels is not None:
        return _Cells(np.arange(len(values) + 1) - 0.5, "category", np.asarray(labels))
    if log and _even(np.log(values)):
        return _Cells(_edges(values, True), "log", values)
    if _even(values):
        return _Cells(_edges(values), "linear", values)
    return _Cells(np.arange(len(values) + 1) - 0.5, "category", values)


def _scatter(frame: Frame, x: str, y: str, others: list[str], reduce: str | None):
    if others and reduce is None and not any(frame.info(n).get("axis") == "sample" for n in others):
        groups = _groups(frame, others, reduce)
    else:  # sampled parameters: every point is drawn at its own place, whatever the others' values
        label = f"every value of {', '.join(others)}" if others else ""
        groups = [(label, np.ones(len(frame.index), dtype=bool))]
    fig, panel = _panels(frame, groups)
    norm, cmap, ticks, names = _color_scale(frame, frame.values)
    for j, pop in enumerate(frame.populations):
        for k, (label, mask) in enumerate(groups):
            ax = panel(j, k)
            (xn, xl), (yn, yl) = _numbers(np.asarray(frame.params[x])[mask]), _numbers(np.asarray(frame.params[y])[mask])
            dots = ax.scatter(xn, yn, c=frame.values[mask, j], cmap=cmap, norm=norm, s=18, edgecolors="none")
            _colorbar(fig, dots, ax, frame, ticks, names)
            _axes_labels(ax, frame, x, y, f"{pop}" + (f"  ({label})" if label else ""),
                         None if xl is None else _cells(np.unique(xn), False, xl),
                         None if yl is None else _cells(np.unique(yn), False, yl))
    fig.suptitle(frame.title(), fontsize=10)
    fig.tight_layout()
    return fig


def _axes_labels(ax, frame: Frame, x: str, y: str, title: str, cx: _Cells | None = None,
                 cy: _Cells | None = None):
    ax.set_xlabel(frame.label(x))
    ax.set_ylabel(frame.label(y))
    for axis, name, cells in ((ax.xaxis, x, cx), (ax.yaxis, y, cy)):
        scale = cells.scale if cells is not None else ("log" if frame.is_log(name) else "linear")
        if scale == "category":
            axis.set_ticks(np.arange(len(cells.values)), [_fmt(v) for v in cells.values])
        elif scale == "log":
            _log_axis(ax, axis, np.asarray(frame.params[name], dtype=float))
    ax.set_title(title, fontsize=9)


def _log_axis(ax, axis, values: np.ndarray):
    """A log axis labelled with plain numbers (at the values themselves when they are few)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    u = np.unique(values)
    axis.set_major_locator(FixedLocator(u) if len(u) <= 8 else LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _edges(centres: np.ndarray, log: bool = False) -> np.ndarray:
    """Cell edges around sorted centres (for pcolormesh); geometric on a log axis."""
    c = np.asarray(centres, dtype=float)
    if log:
        return np.exp(_edges(np.log(c)))
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5]) if c[0] == 0 else np.sort([c[0] * 0.9, c[0] * 1.1])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


# --------------------------------------------------------------------------- traces
def traces_figure(store, *, points: list[int] | None = None, population: str | None = None,
                  color_by: str | None = None, **fixed):
    """Rate traces of every matching point (by index, or by parameter values), a panel per
    population, coloured by a parameter with a colour bar."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize

    st = SweepStore.open(store)
    params = st.params()
    idx = _trace_points(st, params, points, fixed)
    pops = _populations(st, population)
    frame = Frame(st, st.meta, {k: v[idx] for k, v in params.items()}, idx, "", np.zeros((len(idx), 0)), pops)
    varying = [n for n in free_parameters(frame, fixed)]
    color_by = color_by or (varying[0] if varying else None)
    if color_by is not None and color_by not in params:
        raise SweeperError(f"unknown parameter {color_by!r} (parameters: {', '.join(params)})")
    t = st.times
    fig, axes = _figure(len(pops), 1, figsize=(7.5, 2.8 * len(pops)), sharex=True)
    c, c_labels = _numbers(frame.params[color_by]) if color_by is not None else (None, None)
    if color_by is not None:
        lo, hi = float(c.min()), float(c.max())
        norm = LogNorm(lo, hi) if frame.is_log(color_by) and lo < hi else Normalize(lo, hi if hi > lo else lo + 1)
        mapper = ScalarMappable(norm=norm, cmap=colormaps["viridis"])
    order = np.argsort(c, kind="stable") if color_by else np.arange(len(idx))
    for ax, pop in zip(axes[:, 0], pops):
        j = st.populations.index(pop)
        for k in order:
            color = mapper.to_rgba(float(c[k])) if color_by else None
            ax.plot(t, st.group["rates"][int(idx[k]), j], lw=1, color=color)
        ax.set_ylabel(f"{pop} rate (Hz)")
        if color_by is not None:
            bar = fig.colorbar(mapper, ax=ax, label=frame.label(color_by))
            if c_labels is not None:
                bar.set_ticks(np.arange(len(c_labels)), labels=c_labels)
            elif isinstance(norm, LogNorm):
                _log_axis(bar.ax, bar.ax.yaxis, np.asarray(frame.params[color_by], dtype=float))
    axes[-1, 0].set_xlabel("time (s)")
    shown = ", ".join(f"{k}={v}" for k, v in fixed.items())
    fig.suptitle(f"{st.meta.get('name', '')}: {len(idx)} trace(s)" + (f" with {shown}" if shown else ""), fontsize=10)
    fig.tight_layout()
    return fig


def _trace_points(st: SweepStore, params: dict, points: list[int] | None, fixed: dict) -> np.ndarray:
    if points:
        bad = [p for p in points if not 0 <= p < st.npoints]
        if bad:
            raise SweeperError(f"point {bad[0]} is out of range (the store has points 0 to {st.npoints - 1})")
        idx = np.asarray(points, dtype=int)
        if fixed:
            idx = np.intersect1d(idx, _selected(st, params, fixed))
    else:
        idx = _selected(st, params, fixed)
    if len(idx) == 0:
        raise SweeperError(f"no point matches {', '.join(f'{k}={v}' for k, v in fixed.items())}")
    if len(idx) > MAX_TRACES:
        raise SweeperError(f"{len(idx)} points match: more than {MAX_TRACES} traces are not readable; "
                           "narrow them with --sel NAME=VALUE or --point")
    return idx


# --------------------------------------------------------------------------- files
def plot_metric(store, out, **kw) -> Path:
    """PNG of :func:`metric_figure`."""
    metric_figure(store, **kw).savefig(out, dpi=110)
    return Path(out)


def plot_traces(store, out, **kw) -> Path:
    """PNG of :func:`traces_figure`."""
    traces_figure(store, **kw).savefig(out, dpi=110)
    return Path(out)


def plot_heatmap(store, out, **kw) -> Path:
    """Kept name of :func:`plot_metric` (a heatmap when the sweep has two grid parameters)."""
    return plot_metric(store, out, **kw)
