"""Running a sweep on Dask: one task per store chunk; workers simulate and write their own chunk.

The client only expands the points, creates (or checks) the store and hands out chunk
indices; traces never pass through it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import metrics as metric_table
from ..config import get as config
from ..engine.check import check_network
from ..errors import StoreError, SweeperError
from ..store import DONE, FAILED, PENDING, RESERVED, SweepStore, crash, now, variables
from . import points as pts
from . import provenance, sizing, usermetrics
from .recipe import Recipe, plain
from .resume import heal
from .spec import Sweep
from .taskstore import TaskStore, task_store

log = logging.getLogger(__name__)

# Drivers of sweeps whose points are chosen while they run, by axis kind (each registers itself
# when imported; sweeper.sweep imports them): "adaptive" -> sweeper.sweep.adaptive.
DRIVERS: dict = {}


@dataclass
class RunSummary:
    """What a run did: counts over the whole store and the failures it saw."""

    store: Path
    points: int
    computed: int = 0
    counts: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # (point index, point id, reason)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.counts.get("failed", 0) == 0 and self.counts.get("pending", 0) == 0


# --------------------------------------------------------------------------- store preparation
def time_axis(sweep: Sweep, table: pts.Table) -> np.ndarray:
    """Sample times shared by every point: t_n = t0 + n*dt while t0 + n*dt < tf (longest tf)."""
    sim = sweep.base_network().simulation
    tf = sim.tf
    for name in _tf_names(sweep):
        if len(table[name]):
            tf = float(np.max(table[name]))
    n = 0
    while sim.t0 + n * sim.dt < tf:
        n += 1
    t = sim.t0 + np.arange(n + 1) * sim.dt
    return t[::sweep.output["record_every"]]


def prepare_store(sweep: Sweep, path, *, extend_ok: bool = True, accept_changed: bool = False) -> SweepStore:
    """Create the store for ``sweep``, or check that an existing one belongs to it (and grow it).

    An existing store made with other code or network files is refused, naming them, unless
    ``accept_changed`` (:func:`.provenance.check_identity`)."""
    if getattr(sweep, "adaptive", None) is not None:  # points chosen while it runs
        return DRIVERS["adaptive"].prepare_store(sweep, path, accept_changed=accept_changed)
    path = Path(path)
    names = sweep.parameter_names
    clash = RESERVED.intersection(names)
    if clash:
        raise StoreError(f"parameter name(s) {sorted(clash)} are reserved in the store; rename them")
    if not path.exists():
        return _create(sweep, path, accept_changed)
    table = sweep.points()
    ids = _checked_ids(pts.point_codes(table, names))
    store = SweepStore.open(path, mode="r+")
    store.check_layout()
    meta = store.meta
    if "coordinates" not in meta and sweep.round_values:  # made before generated values were rounded
        sweep = Sweep.from_text(sweep.text, base_dir=sweep.base_dir, source=sweep.source, round_values=False)
        table = sweep.points()
        ids = pts.point_codes(table, names)
    if meta.get("signature") not in (sweep.signature, sweep.legacy_signature) or store.parameters != names:
        raise StoreError(f"{path} was made from a different spec ({meta.get('spec_source')}, hash "
                         f"{meta.get('spec_hash')}); use a new store, or change only the values of an axis")
    use_users_recipe(store, sweep)
    dropped = store.repair()
    if dropped:
        log.warning(f"sweeper: {path}: finished undoing an interrupted extension ({dropped} partly added "
                    "point(s) removed; they are added again now if the spec has them)")
    heal(store, names, table, ids, time_axis(sweep, table),
         populations=lambda: sweep.network_for({k: v[0] for k, v in table.items()}).recorded)
    old = store.point_codes()
    grows = len(ids) - len(old) if not (len(old) == len(ids) and np.array_equal(old, ids)) else 0
    provenance.check_identity(store, sweep, accept_changed, added=grows, created=False)
    refuse_store_code(store, sweep, grows)
    if not grows:
        return store
    missing = int(np.count_nonzero(~np.isin(old, ids)))
    if missing:
        raise StoreError(f"{path} holds {missing} point(s) that this spec no longer has; a spec may only "
                         "add points to an existing store" + _why_not_growable(sweep))
    if not extend_ok:
        raise StoreError(f"{path} would grow by {len(ids) - len(old)} points")
    if len(time_axis(sweep, table)) != len(store.times):
        raise StoreError(f"{path}: the new points need a different time axis; use a new store")
    new = np.flatnonzero(~np.isin(ids, old))
    store.extend({k: v[new] for k, v in table.items()}, ids[new],
                 meta=dict(spec=sweep.text, spec_hash=sweep.hash, spec_source=sweep.source,
                           recipe=sweep.recipe.to_dict(),
                           **({"coordinates": sweep.coordinates()} if "coordinates" in meta else {})))
    return store


def _checked_ids(ids: np.ndarray) -> np.ndarray:
    """The id codes of a spec's points, refused when there are none or two are equal."""
    if len(ids) == 0:
        raise StoreError("the spec has no points (constraints removed every point)")
    ranked = np.sort(ids)
    if (ranked[1:] == ranked[:-1]).any():
        raise StoreError("two points have identical parameter values; use 'replicates' to repeat points")
    return ids


def _create(sweep: Sweep, path: Path, accept_changed: bool) -> SweepStore:
    """A new store for ``sweep``, its points made and written a block at a time: of the whole
    sweep the client holds only the id codes (8 bytes a point, sweeper/ids.py)."""
    names = sweep.parameter_names
    ids = np.empty(pts.product_length(sweep.axis_tables()), dtype=np.uint64)  # constraints may keep fewer
    n = 0
    for block in sweep.point_blocks():
        k = pts.length(block)
        ids[n:n + k] = pts.point_codes(block, names)
        n += k
    ids = _checked_ids(ids[:n])
    first = next(block for block in sweep.point_blocks() if pts.length(block))
    probe = sweep.network_for({k: v[0] for k, v in first.items()})
    attrs = {"spec": sweep.text, "spec_source": sweep.source, "base_dir": str(sweep.base_dir),
             "spec_hash": sweep.hash, "signature": sweep.signature, "name": sweep.name,
             "paths": {n: (p.text if p is not None else None) for n, p in sweep.paths.items()},
             "derived": {n: d[0].text for n, d in sweep.derived.items()},
             "metric_window": sweep.output["metric_window"],
             "record_every": sweep.output["record_every"],
             "recipe": sweep.recipe.to_dict(), "coordinates": sweep.coordinates(),
             "user_metrics": sweep.user_metrics}
    times = time_axis(sweep, _tf_maxima(sweep))
    task = sizing.for_sweep(sweep, probe, len(ids), len(times))

    def blocks():
        at = 0
        for block in sweep.point_blocks():
            k = pts.length(block)
            yield block, ids[at:at + k]
            at += k

    created = SweepStore.create(path, blocks=blocks, npoints=len(ids), populations=probe.recorded,
                                times=times, attrs=attrs, dtype=sweep.output["dtype"],
                                chunk_points=task.task_points, variables=variables.table(sweep.user_metrics))
    provenance.check_identity(created, sweep, accept_changed, added=len(ids), created=True)
    return created


def _tf_names(sweep: Sweep) -> list[str]:
    """The parameters (swept or derived) set on ``simulation.tf``."""
    return [n for n, p in list(sweep.paths.items()) + [(n, d[1]) for n, d in sweep.derived.items()]
            if p is not None and p.area == "simulation" and p.field == "tf"]


def _tf_maxima(sweep: Sweep) -> pts.Table:
    """Each parameter set on ``simulation.tf`` with its largest value (a one-row column), which is
    all :func:`time_axis` reads of the points."""
    tf = _tf_names(sweep)
    most: dict[str, list] = {n: [] for n in tf}
    for block in (sweep.point_blocks() if tf else ()):
        for n in tf:
            if len(block[n]):
                most[n].append(np.max(block[n]))
    return {n: np.array([max(v)] if v else [], dtype=float) for n, v in most.items()}


def _why_not_growable(sweep: Sweep) -> str:
    """The reason when a sampled axis cannot grow (its method draws a new design for a new n)."""
    fixed = [body for kind, body in sweep.axes if kind == "sample" and body["method"] not in pts.GROWABLE]
    if not fixed:
        return ""
    body = fixed[0]
    return (f". A {body['method']!r} sample cannot grow: n: {body['n']} draws a new design, not the "
            f"old one plus more points. To add points to a store, sample with method "
            f"{' or '.join(sorted(pts.GROWABLE))} (their first n points stay the same when n "
            "grows), or write the larger design to a new store")


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def use_users_recipe(store: SweepStore, sweep: Sweep):
    """Workers build networks from the store's recipe and import its user metrics: make both the
    ones the user's spec of THIS run gives (a store received from elsewhere may name other code)."""
    meta, changes = store.meta, {}
    if not _same(meta.get("recipe"), sweep.recipe.to_dict()):
        changes["recipe"] = sweep.recipe.to_dict()
    stored, mine = meta.get("user_metrics") or {}, getattr(sweep, "user_metrics", None) or {}
    own = {k: mine[k] for k in stored if k in mine}
    if not _same(own, {k: stored[k] for k in own}):
        changes["user_metrics"] = dict(stored, **own)
    if changes:
        store.set_meta(**changes)
        store.consolidate()


def refuse_store_code(store: SweepStore, sweep: Sweep, grows: int):
    """A store's own metric functions (added with `sweeper metrics --add`) that the user's spec
    does not name are never run: refuse a run that would have to compute them."""
    stored, mine = store.meta.get("user_metrics") or {}, getattr(sweep, "user_metrics", None) or {}
    foreign = {k: v.get("function") for k, v in stored.items() if k not in mine}
    c = store.counts()
    if foreign and (grows or c["pending"]):
        named = ", ".join(f"{k} ({ref})" for k, ref in foreign.items())
        raise StoreError(f"{store.path} computes metric(s) {named}, which the spec does not name; code named "
                         "only by a store is never run: finish the store with the spec it was made with, "
                         "then add the metric again to a copy made from this spec")


# --------------------------------------------------------------------------- the task
@lru_cache(maxsize=8)
def _recipe_of(recipe_json: str) -> Recipe:
    return Recipe.from_dict(json.loads(recipe_json))


def _recipe(meta: dict) -> Recipe:
    """The recipe the driver of this run wrote into the store from the user's own spec
    (:func:`prepare_store`); the store's spec text is never rebuilt here."""
    if "recipe" not in meta:
        raise StoreError("the store has no recipe: run it with `sweeper run SPEC -o STORE`")
    return _recipe_of(json.dumps(meta["recipe"], sort_keys=True))


def _networks(recipe: Recipe, params: dict, todo: np.ndarray, pops: list[str], errors: list[str],
              times: np.ndarray | None = None, every: int = 1):
    """The network of every point to compute, validated once; a point that cannot be built gets
    its reason in ``errors``."""
    from ..engine.check import max_delay_steps
    from .pointcheck import check_time
    nets, rows, limit = [], [], max_delay_steps()
    tf_swept = any(p is not None and p.area == "simulation" and p.field == "tf" for p in recipe.paths.values())
    for j in np.flatnonzero(todo):
        point = {k: v[j] for k, v in params.items()}
        try:
            net = recipe.network_for(point)
            check_network(net, where="point", max_delay_steps=limit)
            if times is not None and recipe.is_builder:
                where = "point " + ", ".join(f"{k}={plain(v)!r}" for k, v in point.items())
                check_time(net, times, every, tf_swept, where)
            if net.recorded != pops:
                raise SweeperError(f"recorded populations {net.recorded} differ from the store's {pops}")
        except SweeperError as exc:
            errors[j] = str(exc)
            continue
        except Exception as exc:  # a user builder's own error: record it, keep going
            errors[j] = f"{type(exc).__name__}: {exc}"
            continue
        nets.append(net)
        rows.append(j)
    return nets, rows


@lru_cache(maxsize=8)
def _user_functions(user_json: str, folders: tuple[str, ...]) -> dict:
    return usermetrics.functions(json.loads(user_json), [Path(f) for f in folders])


def chunk_metrics(view: TaskStore, recipe: Recipe, rates: np.ndarray, params: dict, rows: np.ndarray,
                  errors: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every metric of the store for one chunk: the built-ins from the traces, then the user's own
    for the points ``rows``; also the mask of points whose own metric raised (reason in ``errors``)."""
    meta = view.meta
    user = meta.get("user_metrics") or {}
    builtin = [m for m in view.metric_names if m not in user]
    values = metric_table.compute(rates, view.times, meta.get("metric_window"), builtin)
    failed = np.zeros(rates.shape[0], dtype=bool)
    if user:
        funcs = _user_functions(json.dumps(user, sort_keys=True), tuple(str(f) for f in recipe.folders))
        own, failed = usermetrics.compute(funcs, view.times, rates, params, rows, errors)
        values.update(own)
    return values, failed


def run_chunk(store_path: str, chunk: int, retry_failed: bool = False, *, builder=None) -> dict:
    """Simulate the unfinished points of one chunk and write the chunk (runs on a worker).
    ``builder``: the builder function itself, when it was given as a Python callable."""
    from ..engine import simulate_batch

    view = task_store(store_path)  # opened once per worker while the store's metadata is unchanged
    store, meta = view.store, view.meta
    recipe = _recipe(meta) if builder is None else _recipe(meta).with_function(builder)
    sl = store.chunk_slice(chunk)
    status = store.status(sl)
    todo = status == PENDING
    if retry_failed:
        todo |= status == FAILED
    params = store.params(sl)
    n = sl.stop - sl.start
    times, pops = view.times, view.populations
    every = int(meta.get("record_every", 1))
    rates = np.full((n, len(pops), len(times)), np.nan)
    new_status = np.full(n, FAILED, dtype=np.int8)
    errors = [""] * n

    nets, rows = _networks(recipe, params, todo, pops, errors, times, every)
    for j, result in zip(rows, simulate_batch(nets, checked=True) if nets else []):
        if isinstance(result, Exception):
            errors[j] = str(result)
            continue
        r = np.asarray(result.rates)[:, ::every]
        if not np.isfinite(r).all():
            errors[j] = "non-finite firing rate"
            continue
        rates[j, :, :r.shape[1]] = r[:, :len(times)]
        new_status[j] = DONE
    values, metric_failed = chunk_metrics(view, recipe, rates, params, np.flatnonzero(todo & (new_status == DONE)),
                                          errors)
    new_status[metric_failed] = FAILED
    values.update(rates=rates, error=errors, status=new_status)
    try:
        store.write_chunk(chunk, values, mask=todo, names=view.task_written)
    except OSError as exc:  # disk full, read-only, ...: the driver stops the run (no retry, no traceback)
        return {"chunk": chunk, "computed": 0, "failed": [], "write_error": str(exc.strerror or exc)}
    ids = store.point_ids(sl)
    failed = [(sl.start + int(j), str(ids[j]), errors[j]) for j in np.flatnonzero(todo & (new_status == FAILED))]
    return {"chunk": chunk, "computed": int(todo.sum()), "failed": failed}


# --------------------------------------------------------------------------- the driver
@contextmanager
def _default_client(client):
    if client is not None:
        yield client
        return
    try:
        from distributed import get_client
        yield get_client()
        return
    except ValueError:
        pass
    from ..cluster import connect
    with connect("local") as c:
        yield c


def writer_lock(store):
    """The store's writer lock (its folder created first); a locked store is neither created nor grown."""
    from ..store.lock import StoreLock
    try:
        Path(store).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of {store}: {exc.strerror or exc}") from None
    return StoreLock(store)


def run_sweep(sweep: Sweep | str | os.PathLike, store, *, client=None, retry_failed: bool = False,
              progress: bool = False, max_in_flight: int | None = None, lock: bool = True,
              prepared: SweepStore | None = None, accept_changed: bool = False) -> RunSummary:
    """Run (or resume, or extend) ``sweep`` into ``store`` and return what happened.

    ``lock=False`` when the caller already holds :func:`writer_lock`, and ``prepared`` the store
    it made with :func:`prepare_store` (the CLI takes the lock and prepares the store before
    starting a cluster, so that a refused run starts nothing, and the store is prepared once).
    """
    if not isinstance(sweep, Sweep):
        sweep = Sweep.from_file(sweep)
    if sweep.adaptive is not None:  # learners choose the points: sweep.adaptive
        return DRIVERS["adaptive"].run_adaptive(sweep, store, client=client, retry_failed=retry_failed,
                                                progress=progress, max_in_flight=max_in_flight, lock=lock,
                                                prepared=prepared, accept_changed=accept_changed)
    t_start = time.perf_counter()
    with writer_lock(store) if lock else nullcontext():
        st = prepared if prepared is not None else prepare_store(sweep, store, accept_changed=accept_changed)
        run = provenance.start(st, sweep)
        chunks = st.todo_chunks(retry_failed)
        summary = RunSummary(Path(store), st.npoints)
        write_error = None
        if chunks:  # a resume with nothing to do needs no cluster
            with _default_client(client) as cl:
                write_error = _run_chunks(cl, st, chunks, sweep.hash, retry_failed, summary,
                                          _progress(len(chunks), progress, cl), max_in_flight,
                                          builder=sweep.recipe.shipped_function)
        summary.counts = st.counts()
        provenance.finish(st, run, summary, chunks, write_error)
        if write_error is not None:
            c = summary.counts
            raise StoreError(f"cannot write to {store}: {write_error} "
                             f"({c['done']} done, {c['failed']} failed, {c['pending']} pending points kept; "
                             "make room or fix the path, then run again to resume)")
        try:
            if summary.counts["pending"] == 0:
                st.set_meta(completed=now())
                crash.step("run.completed")
            st.consolidate()
        except OSError as exc:
            raise StoreError(f"cannot write to {store}: {exc.strerror or exc} (every point is kept; "
                             "run again to finish the store's metadata)") from None
    summary.seconds = time.perf_counter() - t_start
    return summary


def _run_chunks(cl, st: SweepStore, chunks: list[int], spec_hash: str, retry_failed: bool,
                summary: RunSummary, bar, max_in_flight: int | None, builder=None) -> str | None:
    """Hand out ``chunks`` with a bounded number in flight; return why the store could not be
    written, if it could not (then no further chunk is handed out). ``builder``: a builder given
    as a Python callable, sent with each task (Dask pickles it; by value if defined in __main__)."""
    from distributed import as_completed

    per_worker = int(config("sweep.tasks-per-worker"))
    retries = int(config("sweep.task-retries"))
    workers = len(cl.scheduler_info().get("workers", {}))
    limit = max_in_flight or max(4, per_worker * max(1, workers or 2))
    todo = iter(chunks)
    key = f"{spec_hash}-{os.getpid()}-{time.time_ns()}"
    write_error = None  # a store that cannot be written: stop handing out chunks

    def submit(i):
        return cl.submit(run_chunk, str(st.path.resolve()), i, retry_failed, builder=builder,
                         key=f"sweeper-chunk-{key}-{i}", pure=False, retries=retries)

    pending = as_completed([submit(i) for _, i in zip(range(limit), todo)])
    for fut in pending:
        try:
            res = fut.result()
        except OSError as exc:
            res = {"computed": 0, "failed": [], "write_error": str(exc.strerror or exc)}
        except Exception as exc:  # the chunk itself failed (not one point): report it
            res = {"computed": 0, "failed": [(-1, "", f"task failed: {type(exc).__name__}: {exc}")]}
        if res.get("write_error"):  # the store cannot be written: let running chunks end, then stop
            write_error = write_error or res["write_error"]
        summary.computed += res["computed"]
        summary.failures.extend(res["failed"])
        fut.release()
        nxt = next(todo, None) if write_error is None else None
        if nxt is not None:
            pending.add(submit(nxt))
        bar.update(1)
    bar.close()
    return write_error


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, client):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="chunk", file=sys.stderr, dynamic_ncols=True)
