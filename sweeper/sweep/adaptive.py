"""Adaptive sweeps: python-adaptive learners choose the points while the sweep runs.

One learner per point of the other axes (their outer product). The client asks a learner for a
batch of points, appends them to the store as one new chunk and hands that chunk to a worker
(:func:`~.runner.run_chunk`, the task of every sweep); when the chunk is written its metric is
read back from the store and told to the learner. Several batches are in flight at a time
(config ``sweep.adaptive-tasks-per-worker``), so the cluster stays busy.

The store is the learners' only state: a run replays every stored point into its learner
(done points with their metric; failed ones, and ones whose metric is not finite, as
permanently pending, so the learner neither uses nor asks them again; points left pending by a
killed run are simulated again), then continues until the goal is met. A larger ``n`` or a
smaller ``loss`` in the goal continues the same store.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import get as config
from ..errors import StoreError
from ..store import DONE, FAILED, PENDING, SweepStore, now
from . import points as pts
from . import provenance, runner

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- learners
def loss_function(learner: str, name: str):
    """The python-adaptive loss of ``name`` (adaptive_spec.LOSSES) for a learner kind."""
    from adaptive.learner import learner1D as l1, learner2D as l2, learnerND as ln
    table = {
        "1d": {"default": l1.default_loss, "uniform": l1.uniform_loss, "abs_min_log": l1.abs_min_log_loss,
               "curvature": l1.curvature_loss_function, "triangle": l1.triangle_loss},
        "2d": {"default": l2.default_loss, "uniform": l2.uniform_loss,
               "minimize_triangle_surface": l2.minimize_triangle_surface_loss},
        "nd": {"default": ln.default_loss, "uniform": ln.uniform_loss, "std": ln.std_loss,
               "curvature": ln.curvature_loss_function, "triangle": ln.triangle_loss},
    }
    fn = table[learner][name]
    return fn() if name == "curvature" else fn  # curvature_loss_function builds the loss


def _never(_x):
    raise RuntimeError("sweeper's learners are driven by ask/tell; their function is never called")


def make_learner(settings: dict, bounds: list[tuple[float, float]]):
    """A fresh learner over ``bounds`` (in learner coordinates)."""
    import adaptive
    loss = loss_function(settings["learner"], settings["loss"])
    if settings["learner"] == "1d":
        return adaptive.Learner1D(_never, bounds=bounds[0], loss_per_interval=loss)
    if settings["learner"] == "2d":
        return adaptive.Learner2D(_never, bounds=bounds, loss_per_triangle=loss)
    return adaptive.LearnerND(_never, bounds=bounds, loss_per_simplex=loss)


def learner_loss(learner) -> float:
    """The learner's loss over its finished points (inf until it has enough of them)."""
    try:
        value = float(learner.loss())
    except Exception:  # too few points for a triangulation
        return math.inf
    return value if not math.isnan(value) else math.inf


@dataclass(frozen=True)
class Space:
    """Between parameter values and learner coordinates (the log of a log-range parameter)."""

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    log: tuple[bool, ...]

    @classmethod
    def of(cls, sweep) -> "Space":
        names = tuple(sweep.adaptive["parameters"])
        r = [sweep.ranges[n] for n in names]
        return cls(names, tuple(x[0] for x in r), tuple(x[1] for x in r), tuple(bool(x[2]) for x in r))

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [(math.log(lo), math.log(hi)) if lg else (lo, hi)
                for lo, hi, lg in zip(self.low, self.high, self.log)]

    def to_values(self, x) -> np.ndarray:
        """Learner coordinates of one point -> its parameter values (bounds map to the range's ends)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        out = np.empty(len(self.names))
        for j, ((b0, b1), lo, hi, lg) in enumerate(zip(self.bounds, self.low, self.high, self.log)):
            out[j] = lo if x[j] == b0 else hi if x[j] == b1 else (math.exp(x[j]) if lg else float(x[j]))
        return out

    def to_learner(self, values) -> tuple | float | None:
        """Parameter values -> learner coordinates (the ends snapped onto the bounds exactly), or
        None outside the ranges (a store made with a wider range)."""
        out = []
        for v, (b0, b1), lo, hi, lg in zip(values, self.bounds, self.low, self.high, self.log):
            v = float(v)
            tol = 1e-12 * (hi - lo)
            if v < lo - tol or v > hi + tol:
                return None
            x = b0 if abs(v - lo) <= tol else b1 if abs(v - hi) <= tol else (math.log(v) if lg else v)
            out.append(x)
        return out[0] if len(out) == 1 else tuple(out)


# --------------------------------------------------------------------------- points
def outer_points(sweep) -> pts.Table:
    """The points of the sweep's other axes (grid, zip, sample, replicates): one learner each.
    A sweep of only an adaptive axis has one outer point with no columns."""
    tables = sweep.axis_tables()
    table = pts.product(tables)
    n = pts.length(table) if table else 1
    if sweep.constraints and table:
        keep = np.ones(n, dtype=bool)
        for c in sweep.constraints:
            keep &= np.asarray(c(**{k: table[k] for k in c.names}), dtype=bool)
        table = {k: v[keep] for k, v in table.items()}
    return table


def outer_names(sweep) -> list[str]:
    """Parameters that tell the learners apart (every parameter but the adaptive and derived ones)."""
    inner = set(sweep.adaptive["parameters"]) | set(sweep.derived)
    return [n for n in sweep.parameter_names if n not in inner]


def batch_table(sweep, outer: pts.Table, row: int, space: Space, xs: list) -> pts.Table:
    """Store columns of a batch of one learner's points (outer values repeated, derived added)."""
    k = len(xs)
    table = {name: np.repeat(col[row:row + 1], k) for name, col in outer.items()}
    values = np.array([space.to_values(x) for x in xs]).reshape(k, len(space.names))
    for j, name in enumerate(space.names):
        table[name] = values[:, j]
    for name, (expr, _path) in sweep.derived.items():
        value = expr(**{n: table[n] for n in expr.names})
        table[name] = np.broadcast_to(np.asarray(value, dtype=float), (k,)).copy()
    return {n: table[n] for n in sweep.parameter_names}


class _Initial:
    """The sweep as :func:`~.runner.prepare_store` sees it when it creates an adaptive store:
    its points are the first batch (so a new store gets every attribute a grid store gets)."""

    adaptive = None

    def __init__(self, sweep, table):
        self._sweep, self._table = sweep, table

    def points(self):
        return self._table

    def point_blocks(self, rows: int = 0):
        yield self._table  # one batch: small

    def axis_tables(self):
        return [self._table]

    def __getattr__(self, name):
        return getattr(self._sweep, name)


def prepare_store(sweep, path, *, accept_changed: bool = False) -> SweepStore:
    """Create the store with the first learner's first batch, or check that an existing store
    belongs to this sweep and its code (the caller holds the writer lock)."""
    path = Path(path)
    if not path.exists():
        outer = outer_points(sweep)
        if outer and pts.length(outer) == 0:
            raise StoreError("the spec has no points (constraints removed every outer point)")
        space = Space.of(sweep)
        learner = make_learner(sweep.adaptive, space.bounds)
        k = min(int(sweep.output["chunk_points"]), sweep.adaptive["n"])
        xs, _ = learner.ask(k)
        store = runner.prepare_store(_Initial(sweep, batch_table(sweep, outer, 0, space, xs)), path,
                                     accept_changed=accept_changed)
        store.set_meta(adaptive=_describe(sweep, space))
        store.consolidate()
        return store
    store = SweepStore.open(path, mode="r+")
    meta = store.meta
    if meta.get("signature") != sweep.signature or store.parameters != sweep.parameter_names:
        raise StoreError(f"{path} was made from a different spec ({meta.get('spec_source')}, hash "
                         f"{meta.get('spec_hash')}); use a new store, or change only the adaptive goal")
    runner.use_users_recipe(store, sweep)
    dropped = store.repair()
    if dropped:
        log.warning(f"sweeper: {path}: finished undoing an interrupted extension ({dropped} partly added "
                    "point(s) removed)")
    provenance.check_identity(store, sweep, accept_changed, added=0, created=False)
    described = _describe(sweep, Space.of(sweep))
    for name, (lo, hi) in (meta.get("adaptive") or {}).get("extent", {}).items():  # earlier ranges
        if name in described["extent"]:
            old = described["extent"][name]
            described["extent"][name] = [min(lo, old[0]), max(hi, old[1])]
    store.set_meta(spec=sweep.text, spec_hash=sweep.hash, spec_source=sweep.source,
                   recipe=sweep.recipe.to_dict(), coordinates=sweep.coordinates(), adaptive=described)
    store.consolidate()
    return store


def _describe(sweep, space: Space) -> dict:
    """What analysis needs to know about the adaptive axis (kept in the store's attributes)."""
    a = sweep.adaptive
    return {"parameters": list(space.names), "learner": a["learner"], "metric": a["metric"],
            "population": a["population"], "loss": a["loss"], "goal": dict(a["goal"]),
            "outer": outer_names(sweep),
            "ranges": {n: [lo, hi, lg] for n, lo, hi, lg in zip(space.names, space.low, space.high, space.log)},
            "extent": {n: [lo, hi] for n, lo, hi in zip(space.names, space.low, space.high)}}  # of every run


def describe_text(sweep) -> str:
    """What ``sweeper expand`` says of an adaptive sweep (its points are chosen while it runs)."""
    a, space = sweep.adaptive, Space.of(sweep)
    outer = outer_points(sweep)
    learners = pts.length(outer) if outer else 1
    goal = " and ".join(x for x in (f"n = {a['goal']['n']} points" if a["goal"]["n"] else "",
                                    f"loss <= {a['goal']['loss']:g}" if a["goal"]["loss"] else "") if x)
    ranges = ", ".join(f"{n} in [{lo:g}, {hi:g}]" + (" (log)" if lg else "")
                       for n, lo, hi, lg in zip(space.names, space.low, space.high, space.log))
    return "\n".join([
        f"adaptive:    learner {a['learner']} (loss {a['loss']}) over {ranges}",
        f"driven by:   {a['metric']} of {a['population']}",
        f"goal:        {goal} per learner; {learners} learner(s)"
        + (f", one per point of {', '.join(outer_names(sweep))}" if outer else ""),
        f"at most:     {a['n'] * learners} points, in chunks of {sweep.output['chunk_points']}",
        f"parameters:  {', '.join(sweep.parameter_names)}"])


def goal_text(state: dict) -> str:
    """One line on where a run left its learners (``state``: RunSummary.adaptive)."""
    losses = [x for x in state["losses"] if x is not None]
    loss = f"largest loss {max(losses):.4g}" if losses else "loss not yet finite"
    return (f"adaptive: {len(state['points'])} learner(s), {min(state['points'])}-{max(state['points'])} points "
            f"each, {loss}; goal " + ("reached" if state["goal_reached"] else "not reached: run again to continue"))


# --------------------------------------------------------------------------- the learners' state
class Learners:
    """Every learner of a sweep, rebuilt from the store, and the batches handed out to workers."""

    def __init__(self, sweep, store: SweepStore):
        self.sweep, self.store = sweep, store
        self.settings = sweep.adaptive
        self.space = Space.of(sweep)
        self.outer = outer_points(sweep)
        count = pts.length(self.outer) if self.outer else 1
        self.learners = [make_learner(self.settings, self.space.bounds) for _ in range(count)]
        self.points = np.zeros(count, dtype=int)  # stored points per learner (any status)
        self.busy: dict[int, list] = {}           # chunk -> [(row, learner, x)] being simulated
        self.ids = set(store.point_ids().tolist())
        names = outer_names(sweep)
        keys = pts.point_ids(self.outer, names) if names else np.array(["p"])
        self._row_of = {k: i for i, k in enumerate(keys)}
        self._outer_names = names
        self._pop = store.populations.index(self.settings["population"])

    # -- the goal
    def loss(self, i: int) -> float:
        return learner_loss(self.learners[i])

    def done(self, i: int) -> bool:
        goal = self.settings["goal"]
        if self.points[i] >= self.settings["n"]:
            return True
        return goal["loss"] is not None and self.loss(i) <= goal["loss"]

    @property
    def total(self) -> int | None:
        """Points the goal asks for over all learners (None when the goal is a loss only)."""
        n = self.settings["goal"]["n"]
        return None if n is None else n * len(self.learners)

    # -- replay
    def replay(self, retry_failed: bool = False) -> list[tuple[int, list]]:
        """Tell every stored point to its learner; return the chunks to simulate again (points a
        killed run left pending, and failed ones when ``retry_failed``) with their points."""
        st = self.store
        params, status = st.params(), st.status()
        values = st.group[self.settings["metric"]][:, self._pop]
        n = len(status)
        keys = pts.point_ids({k: params[k] for k in self._outer_names}, self._outer_names) \
            if self._outer_names else np.full(n, "p", dtype=object)
        adaptive = np.column_stack([params[name] for name in self.space.names])
        again: dict[int, list] = {}
        for row in range(n):
            i = self._row_of.get(keys[row])
            x = self.space.to_learner(adaptive[row]) if i is not None else None
            if x is None:  # a point of an outer value or a range the spec no longer has
                continue
            self.points[i] += 1
            y = float(values[row])
            if status[row] == DONE and math.isfinite(y):
                self.learners[i].tell(x, y)
                continue
            self.learners[i].tell_pending(x)  # failed: excluded for good; pending: simulated below
            if status[row] == PENDING or (retry_failed and status[row] == FAILED):
                again.setdefault(row // st.chunk_points, []).append((row, i, x))
        self.busy.update(again)
        return sorted(again.items())

    # -- batches
    def next_batch(self) -> tuple[int, list] | None:
        """Ask the learner furthest from its goal for the next batch, append it to the store as a
        new chunk (or as the rest of a partly filled last chunk) and return (chunk, points)."""
        st = self.store
        c, n0 = st.chunk_points, st.npoints
        if n0 % c and (n0 - 1) // c in self.busy:
            return None  # the last chunk is partly filled and being written: wait for it
        open_ = [i for i in range(len(self.learners)) if not self.done(i)]
        if not open_:
            return None
        i = min(open_, key=lambda j: self.points[j])
        k = min(c - n0 % c, self.settings["n"] - self.points[i])
        for _attempt in range(3):
            xs, _ = self.learners[i].ask(int(k))
            table = batch_table(self.sweep, self.outer, i, self.space, xs)
            ids = pts.point_ids(table, self.sweep.parameter_names)
            # a learner never repeats itself, but the store may hold a point already (a range
            # changed since): such points stay pending in the learner and it is asked again
            fresh = [j for j, pid in enumerate(ids) if pid not in self.ids]
            if fresh:
                break
        else:
            return None
        st.extend({name: col[fresh] for name, col in table.items()}, ids[fresh])
        self.ids.update(ids[fresh].tolist())
        self.points[i] += len(fresh)
        chunk = n0 // c
        self.busy[chunk] = [(n0 + m, i, xs[j]) for m, j in enumerate(fresh)]
        return chunk, self.busy[chunk]

    def finished(self, chunk: int) -> int:
        """Tell a written chunk's points to their learners; return how many are done."""
        rows = self.busy.pop(chunk)
        sl = self.store.chunk_slice(chunk)
        status = self.store.status(sl)
        values = self.store.group[self.settings["metric"]][sl, self._pop]
        done = 0
        for row, i, x in rows:
            y = float(values[row - sl.start])
            if status[row - sl.start] == DONE and math.isfinite(y):
                self.learners[i].tell(x, y)
                done += 1
            # otherwise it stays pending in the learner: excluded, never asked again
        return done

    def losses(self) -> list[float]:
        return [self.loss(i) for i in range(len(self.learners))]


# --------------------------------------------------------------------------- the driver
def run_adaptive(sweep, store, *, client=None, retry_failed: bool = False, progress: bool = False,
                 max_in_flight: int | None = None, lock: bool = True, prepared: SweepStore | None = None,
                 accept_changed: bool = False):
    """Run (or resume, or continue toward a new goal) an adaptive sweep into ``store``."""
    t_start = time.perf_counter()
    with runner.writer_lock(store) if lock else nullcontext():
        st = prepared if prepared is not None else prepare_store(sweep, store, accept_changed=accept_changed)
        run = provenance.start(st, sweep)
        learners = Learners(sweep, st)
        again = learners.replay(retry_failed)
        summary = runner.RunSummary(Path(store), st.npoints)
        chunks: list[int] = []
        with runner._default_client(client) as cl:
            write_error = _drive(cl, learners, again, retry_failed, summary, max_in_flight,
                                 _Progress(learners, progress), chunks)
        summary.points = st.npoints
        summary.counts = st.counts()
        provenance.finish(st, run, summary, sorted(chunks), write_error)
        losses = learners.losses()
        reached = all(learners.done(i) for i in range(len(learners.learners)))
        if write_error is not None:
            c = summary.counts
            raise StoreError(f"cannot write to {store}: {write_error} ({c['done']} done, {c['failed']} failed, "
                             f"{c['pending']} pending points kept; make room, then run again to resume)")
        summary.adaptive = {"losses": [x if math.isfinite(x) else None for x in losses],
                            "points": learners.points.tolist(), "goal_reached": reached}
        try:
            st.set_meta(adaptive_state=summary.adaptive,
                        **({"completed": now()} if reached and summary.counts["pending"] == 0 else {}))
            st.consolidate()
        except OSError as exc:
            raise StoreError(f"cannot write to {store}: {exc.strerror or exc} (every point is kept; "
                             "run again to finish the store's metadata)") from None
    summary.seconds = time.perf_counter() - t_start
    return summary


def _drive(cl, learners: Learners, again: list, retry_failed: bool, summary, max_in_flight, bar,
           chunks: list[int]) -> str | None:
    """Keep batches in flight until every learner meets its goal; tell each written chunk to its
    learner (``chunks`` collects the chunks handed out). Returns why the store could not be
    written, if it could not."""
    from distributed import as_completed

    workers = len(cl.scheduler_info().get("workers", {}))
    limit = max_in_flight or max(2, int(config("sweep.adaptive-tasks-per-worker")) * max(1, workers or 1))
    retries = int(config("sweep.task-retries"))
    path = str(learners.store.path.resolve())
    key = f"{learners.sweep.hash}-{os.getpid()}-{time.time_ns()}"
    chunk_of = {}
    pending = as_completed()
    write_error = None

    builder = learners.sweep.recipe.shipped_function  # a builder given as a Python callable

    def submit(chunk):
        fut = cl.submit(runner.run_chunk, path, chunk, retry_failed, builder=builder,
                        key=f"sweeper-adaptive-{key}-{chunk}", pure=False, retries=retries)
        chunks.append(chunk)
        chunk_of[fut] = chunk
        pending.add(fut)

    def fill():
        while write_error is None and len(chunk_of) < limit:
            batch = learners.next_batch()
            if batch is None:
                return
            submit(batch[0])

    for chunk, _rows in again:
        submit(chunk)
    fill()
    while chunk_of:
        fut = next(pending)
        chunk = chunk_of.pop(fut)
        try:
            res = fut.result()
        except OSError as exc:
            res = {"computed": 0, "failed": [], "write_error": str(exc.strerror or exc)}
        except Exception as exc:  # the chunk itself failed (not one point): its points stay pending
            res = {"computed": 0, "failed": [(-1, "", f"task failed: {type(exc).__name__}: {exc}")]}
        fut.release()
        if res.get("write_error"):
            write_error = write_error or res["write_error"]
        summary.computed += res["computed"]
        summary.failures.extend(res["failed"])
        simulated = len(learners.busy[chunk])
        learners.finished(chunk)
        bar.update(simulated)
        fill()
    bar.close()
    return write_error


class _Progress:
    """Points simulated and the learners' largest loss, as a tqdm bar (or nothing)."""

    def __init__(self, learners: Learners, enabled: bool):
        self.learners = learners
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm  # a widget in Jupyter
            busy = sum(len(rows) for rows in learners.busy.values())
            self.bar = tqdm(total=learners.total, initial=int(learners.points.sum()) - busy,
                            unit="point", file=sys.stderr, dynamic_ncols=True)

    def update(self, points: int):
        if self.bar is not None:
            worst = max(self.learners.losses())
            self.bar.set_postfix_str(f"loss {worst:.3g}" if math.isfinite(worst) else "loss -", refresh=False)
            self.bar.update(points)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- verify
def check_points(store: SweepStore, sweep) -> list[str]:
    """Problems of an adaptive store's coordinates (``sweeper verify``): every id matches its
    point's values, no point twice, adaptive values inside their ranges (or a range of an earlier
    spec), outer values among the other axes' points, derived values equal to their expression."""
    try:
        ids, have = store.point_ids(), store.params()
    except Exception as exc:  # a damaged coordinate chunk
        return [f"point ids or coordinates unreadable ({type(exc).__name__}: {exc})"]
    names = sweep.parameter_names
    missing = [n for n in names if n not in have]
    if missing:
        return [f"parameter {n!r} missing from the store" for n in missing]
    problems = []
    again = pts.point_ids({k: np.asarray(v) for k, v in have.items()}, names)
    for i in np.flatnonzero(again != ids)[:10]:
        problems.append(f"point {i}: id {ids[i]} does not match its coordinates")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} point(s) appear twice")
    outer, onames = outer_points(sweep), outer_names(sweep)
    if onames:
        known = set(pts.point_ids(outer, onames).tolist())
        stored = pts.point_ids({k: have[k] for k in onames}, onames)
        for i in [i for i, k in enumerate(stored) if k not in known][:10]:
            problems.append(f"point {i}: values of {', '.join(onames)} are not a point of the other axes")
    for name, (expr, _path) in sweep.derived.items():
        want = np.broadcast_to(np.asarray(expr(**{k: np.asarray(have[k]) for k in expr.names}), dtype=float),
                               (len(ids),))
        for i in np.flatnonzero(~np.isclose(np.asarray(have[name], dtype=float), want, rtol=1e-12))[:10]:
            problems.append(f"point {i}: derived {name!r} is {have[name][i]}, its expression gives {want[i]}")
    extent = (store.meta.get("adaptive") or {}).get("extent", {})
    for name in sweep.adaptive["parameters"]:
        lo, hi = sweep.ranges[name][:2]
        lo, hi = min(lo, extent.get(name, [lo, hi])[0]), max(hi, extent.get(name, [lo, hi])[1])
        v = np.asarray(have[name], dtype=float)
        for i in np.flatnonzero(~((v >= lo) & (v <= hi)))[:10]:
            problems.append(f"point {i}: {name} = {v[i]} is outside its range [{lo}, {hi}]")
    return problems


runner.DRIVERS["adaptive"] = sys.modules[__name__]
