"""Plots of adaptive stores: the sampled points coloured by the metric and, for two adaptive
parameters, the metric interpolated on the points' triangulation (matplotlib ``tricontourf``)
with the points drawn on it. One row of panels per learner (point of the other axes).

Log-range parameters are drawn in log10 coordinates (the triangulation is made there, as the
learner sampled there) with their values on the ticks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import StoreError
from ..store import DONE, FAILED, SweepStore

MAX_ROWS = 6  # learners drawn (the first ones); more would make an unreadable figure


class _Data:
    """What one figure needs from an adaptive store."""

    def __init__(self, store, metric: str | None, population: str | None):
        st = SweepStore.open(store)
        meta = st.meta
        self.info = meta.get("adaptive")
        if not self.info:
            raise StoreError(f"{st.path} is not an adaptive sweep (no adaptive axis in its spec)")
        self.metric = metric or self.info["metric"]
        if self.metric not in st.group:
            raise StoreError(f"{st.path} has no metric {self.metric!r} (it has {', '.join(st.metric_names)})")
        self.population = population or self.info["population"]
        if self.population not in st.populations:
            raise StoreError(f"{st.path} has no population {self.population!r} "
                             f"(it has {', '.join(st.populations)})")
        self.params, self.status = st.params(), st.status()
        arr = st.group[self.metric]
        self.values = arr[:, st.populations.index(self.population)].astype(float)
        self.units = dict(arr.attrs).get("units", "")
        self.window = meta.get("metric_window")
        self.state = meta.get("adaptive_state") or {}
        self.names = list(self.info["parameters"])
        self.log = {n: bool(self.info["ranges"][n][2]) for n in self.names}
        self.outer = [n for n in self.info.get("outer", []) if n in self.params]
        self.path = st.path

    def coords(self, name: str, mask) -> np.ndarray:
        v = np.asarray(self.params[name], dtype=float)[mask]
        return np.log10(v) if self.log[name] else v

    def learners(self) -> list[tuple[str, np.ndarray]]:
        """(label, mask) per learner, in the order of the store."""
        if not self.outer:
            return [("", np.ones(len(self.status), dtype=bool))]
        keys = [tuple(self.params[n][i] for n in self.outer) for i in range(len(self.status))]
        out = []
        for key in dict.fromkeys(keys):
            mask = np.array([k == key for k in keys])
            out.append((", ".join(f"{n}={_fmt(v)}" for n, v in zip(self.outer, key)), mask))
        return out

    @property
    def label(self) -> str:
        return f"{self.metric} of {self.population}" + (f" ({self.units})" if self.units else "")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def adaptive_figure(store, *, metric: str | None = None, population: str | None = None):
    """A matplotlib Figure of an adaptive store (see the module's docstring)."""
    from matplotlib.figure import Figure

    data = _Data(store, metric, population)
    groups = data.learners()[:MAX_ROWS]
    two = len(data.names) >= 2
    cols = 2 if len(data.names) == 2 else 1
    fig = Figure(figsize=(5.6 * cols, 4.4 * len(groups)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(groups), cols, squeeze=False))
    for (label, mask), row in zip(groups, axes):
        done = mask & (data.status == DONE) & np.isfinite(data.values)
        failed = mask & ((data.status == FAILED) | ((data.status == DONE) & ~np.isfinite(data.values)))
        if not two:
            _line(row[0], data, done, failed)
        else:
            _scatter(fig, row[0], data, done, failed)
            if cols == 2:
                _map(fig, row[1], data, done, failed)
        for ax in row:
            ax.set_title(_title(data, label, int(done.sum()), int(failed.sum())), fontsize=9)
    window = f"last {data.window:g} s" if data.window else "second half of the run"
    extra = "" if len(data.learners()) <= MAX_ROWS else f"; first {MAX_ROWS} of {len(data.learners())} learners"
    fig.suptitle(f"{data.path.name}: adaptive ({data.info['learner']}), {data.label} over the {window}{extra}",
                 fontsize=10)
    return fig


def _title(data: _Data, label: str, done: int, failed: int) -> str:
    parts = [label] if label else []
    parts.append(f"{done} points" + (f", {failed} failed" if failed else ""))
    return "; ".join(parts)


def _axis(ax, data: _Data, name: str, which: str):
    """Label an axis with the parameter; a log10 axis gets ticks at 1-2-5 values, a small margin
    keeps the points on the range's ends visible."""
    from matplotlib.ticker import FixedLocator, FuncFormatter
    getattr(ax, f"set_{which}label")(name + (" (log scale)" if data.log[name] else ""))
    lo, hi = data.info["ranges"][name][:2]
    if data.log[name]:
        lo, hi = np.log10(lo), np.log10(hi)
        ticks = [np.log10(m * 10.0 ** k) for k in range(int(np.floor(lo)) - 1, int(np.ceil(hi)) + 1)
                 for m in (1, 2, 5) if lo - 1e-9 <= np.log10(m * 10.0 ** k) <= hi + 1e-9]
        axis = getattr(ax, f"{which}axis")
        if len(ticks) >= 2:
            axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{10 ** v:.3g}"))
    pad = 0.02 * (hi - lo)
    getattr(ax, f"set_{which}lim")(lo - pad, hi + pad)


def _line(ax, data: _Data, done, failed):
    name = data.names[0]
    x, order = data.coords(name, done), None
    order = np.argsort(x)
    ax.plot(x[order], data.values[done][order], "-", color="0.6", lw=1)
    ax.plot(x[order], data.values[done][order], "o", ms=3, color="C0", label="sampled points")
    if failed.any():
        ax.plot(data.coords(name, failed), np.zeros(int(failed.sum())), "x", color="C3", label="failed")
    ax.set_ylabel(data.label)
    ax.legend(fontsize=8)
    _axis(ax, data, name, "x")


def _scatter(fig, ax, data: _Data, done, failed):
    x, y = data.names[:2]
    dots = ax.scatter(data.coords(x, done), data.coords(y, done), c=data.values[done], s=14, cmap="viridis")
    if failed.any():
        ax.scatter(data.coords(x, failed), data.coords(y, failed), marker="x", color="C3", s=20, label="failed")
        ax.legend(fontsize=8, loc="upper right")
    fig.colorbar(dots, ax=ax, label=data.label)
    _axis(ax, data, x, "x")
    _axis(ax, data, y, "y")


def _map(fig, ax, data: _Data, done, failed):
    """The metric interpolated on the Delaunay triangulation of the done points, points on top."""
    from matplotlib.tri import Triangulation
    x, y = data.names
    px, py, v = data.coords(x, done), data.coords(y, done), data.values[done]
    if len(v) >= 3 and np.ptp(px) > 0 and np.ptp(py) > 0:
        # triangulate in the box scaled to a unit square, as the learner does
        sx, sy = (px - px.min()) / np.ptp(px), (py - py.min()) / np.ptp(py)
        tri = Triangulation(px, py, Triangulation(sx, sy).triangles)
        filled = ax.tricontourf(tri, v, levels=24, cmap="viridis")
        fig.colorbar(filled, ax=ax, label=data.label + ", interpolated")
    ax.plot(px, py, "o", ms=2.2, color="white", mec="black", mew=0.4, label="sampled points")
    if failed.any():
        ax.plot(data.coords(x, failed), data.coords(y, failed), "x", color="C3", ms=4, label="failed")
    ax.legend(fontsize=8, loc="lower left", framealpha=0.6)
    _axis(ax, data, x, "x")
    _axis(ax, data, y, "y")


def draw_map(fig, ax, store, *, metric: str | None = None, population: str | None = None):
    """The interpolated map of a 2-D adaptive store (its first learner) on ``ax``."""
    data = _Data(store, metric, population)
    if len(data.names) != 2:
        raise StoreError(f"{data.path} has {len(data.names)} adaptive parameter(s); a map needs 2")
    _label, mask = data.learners()[0]
    done = mask & (data.status == DONE) & np.isfinite(data.values)
    failed = mask & ~done
    _map(fig, ax, data, done, failed)
    ax.set_title(_title(data, _label, int(done.sum()), int(failed.sum())), fontsize=9)
    return data


def plot_adaptive(store, out, **kw) -> Path:
    """Write :func:`adaptive_figure` as a PNG; return its path."""
    out = Path(out)
    adaptive_figure(store, **kw).savefig(out, dpi=110)
    return out


def is_adaptive(store) -> bool:
    """True for a store made by a sweep with an adaptive axis."""
    return bool(SweepStore.open(store).meta.get("adaptive"))
