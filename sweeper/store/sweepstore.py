"""The Zarr v3 store of one sweep.

Layout (every array along ``point`` is chunked by ``chunk_points``; one task writes one chunk,
so no two writers ever touch the same chunk)::

    <variable>   [point, ...]   one array per entry of sweeper.store.variables.VARIABLES:
                                rates [point, population, time], the metrics [point, population],
                                error, point_id, status [point]
    <parameter>  [point]        one coordinate array per parameter
    time         [time], population [population]
    attrs["sweeper"]: spec text, hashes, versions, timestamps, parameter paths, variable names

A chunk's traces and metrics are written before its status, and Zarr's local store writes
each chunk file atomically (temporary file + rename), so a killed run never leaves a point
marked done without its trace.  Every chunk carries a CRC-32C (:func:`checksummed`).
``attrs["sweeper"]["npoints"]`` is the commit record of the store's shape: creation and
:meth:`SweepStore.extend` write it last, in one atomic write, so arrays longer than it are an
uncommitted extension (cut back by :meth:`SweepStore.repair`).  The named steps between writes
are in :mod:`sweeper.store.crash`.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import zarr

from ..config import get as config
from ..errors import StoreError
from ..ids import BLOCK, id_codes, id_text
from . import crash
from .variables import FAILED, PENDING, STATUS_NAMES, Variable, for_store, VARIABLES


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def checksummed() -> list:
    """The bytes codecs of every array: compressed, then a CRC-32C of the compressed chunk
    (Zarr v3 ``crc32c``), so a flipped bit or a truncated chunk fails to decode instead of
    reading as other numbers."""
    from zarr.codecs import Crc32cCodec, ZstdCodec
    return [ZstdCodec(level=0), Crc32cCodec()]


def task_chunks(shape: tuple, chunk_points: int) -> dict:
    """``chunks`` (and ``shards``) of a per-point array written by tasks of ``chunk_points`` points.

    One task owns one file: a shard of ``chunk_points`` points when that is bigger than about
    ``store.chunk-bytes`` (then reads decode inner chunks of about that size), else one chunk.
    So a task never shares a file with another task, and files grow with tasks, not points."""
    row = int(np.prod(shape[1:], dtype=np.int64)) * 8
    inner = max(1, int(config("store.chunk-bytes")) // max(1, row))
    if inner >= chunk_points:
        return {"chunks": (chunk_points,) + tuple(shape[1:])}
    while chunk_points % inner:  # a shard holds whole inner chunks
        inner -= 1
    return {"chunks": (inner,) + tuple(shape[1:]), "shards": (chunk_points,) + tuple(shape[1:])}


def file_points(arr) -> int:
    """Points per file of ``arr``: its shard, or its chunk when it is not sharded."""
    return (arr.shards or arr.chunks)[0]


def kept(arr):
    """``arr`` writing every chunk, also one that holds only fill values (Zarr otherwise deletes it):
    for the arrays whose every chunk exists, so that a missing chunk file is damage."""
    return arr.with_config({"write_empty_chunks": True})


def put_ids(arr, start: int, ids: np.ndarray):
    """Write point ids (uint64 codes, or text) from row ``start`` on, a block at a time, so that
    a million points never become a million Python strings at once."""
    ids = np.asarray(ids)
    for a in range(0, len(ids), BLOCK):
        block = ids[a:a + BLOCK]
        kept(arr)[start + a:start + a + len(block)] = id_text(block) if block.dtype == np.uint64 else \
            block.astype(object)


# stores made with checksums, the npoints commit record and every status chunk written
INTEGRITY = 1


def versions() -> dict[str, str]:
    import importlib.metadata as md
    from .. import __version__
    out = {"python": platform.python_version(), "sweeper": __version__}
    for pkg in ("numpy", "scipy", "zarr", "dask", "distributed", "xarray", "numba"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


class SweepStore:
    """A sweep's Zarr group, opened for reading or for writing results."""

    def __init__(self, path: str | os.PathLike, group: zarr.Group):
        self.path = Path(path)
        self.group = group

    # -- creation / opening
    @classmethod
    def create(cls, path, *, params: Mapping[str, np.ndarray] | None = None, ids: np.ndarray | None = None,
               populations: list[str], times: np.ndarray, attrs: dict, dtype: str = "float64",
               chunk_points: int = 16, variables: list[Variable] = VARIABLES,
               blocks: Callable[[], Iterable[tuple[Mapping[str, np.ndarray], np.ndarray]]] | None = None,
               npoints: int | None = None) -> "SweepStore":
        """A new store of the points ``params`` (columns) with ``ids`` (uint64 codes or text), or,
        for sweeps of any size, of ``npoints`` points given as ``blocks()``: (columns, ids) a block
        of rows at a time, in order (then no column of the whole sweep is held in memory)."""
        if blocks is None:
            blocks, npoints = (lambda: [(params, ids)]), len(ids)
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path} already exists")
        # built beside its final name and renamed into place: a run killed while creating the
        # store (or a full disk) leaves no half-made store behind, and the next run starts afresh
        tmp = path.with_name(f"{path.name}.creating-{os.getpid()}")
        try:
            leftovers = [p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.creating-")]
        except OSError:  # no folder yet (or unreadable): nothing left over; _build reports it
            leftovers = []
        for leftover in leftovers:  # of killed runs (callers hold the lock); names taken literally, no glob
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            cls._build(tmp, blocks=blocks, n=npoints, populations=populations, times=times, attrs=attrs,
                       dtype=dtype, chunk_points=chunk_points, variables=variables)
            os.rename(tmp, path)
            crash.step("create.renamed")
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"cannot create store {path}: {exc.strerror or exc}") from None
        except BaseException:  # refused points (blocks() may check them as it goes), Ctrl-C
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(path, mode="r+")

    @classmethod
    def _build(cls, path: Path, *, blocks, n, populations, times, attrs, dtype, chunk_points, variables):
        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        npop, nt = len(populations), len(times)
        c = max(1, min(chunk_points, n))
        sizes = {"point": n, "population": npop, "time": nt}
        index_chunk = max(c, int(config("store.coordinate-chunk")))
        for var in variables:
            shape = tuple(sizes[d] for d in var.dims)
            layout = {"chunks": (index_chunk,) + shape[1:]} if var.written == "ids" else task_chunks(shape, c)
            arr = group.create_array(var.name, shape=shape, **layout, dtype=var.numpy_dtype(dtype),
                                     fill_value=var.fill, dimension_names=list(var.dims),
                                     attributes=var.cf_attrs(), compressors=checksummed())
            if var.name == "status":
                kept(arr)[:] = np.full(shape, var.fill, dtype=arr.dtype)
        described = attrs.get("coordinates") or {}
        names, at = None, 0
        for params, ids in blocks():
            if names is None:  # the first block sets each coordinate's type
                names = list(params)
                for name, values in params.items():
                    values = np.asarray(values)
                    kind = str if values.dtype == object else values.dtype.str if values.dtype.kind in "bi" \
                        else "float64"
                    fill = {"b": False, "i": 0}.get(values.dtype.kind, "" if kind is str else np.nan)
                    cf = {k: v for k, v in (described.get(name) or {}).items() if k in ("long_name", "units") and v}
                    group.create_array(name, shape=(n,), chunks=(index_chunk,), dtype=kind, fill_value=fill,
                                       dimension_names=["point"], attributes=cf, compressors=checksummed())
            k = len(ids)
            for name in names:
                kept(group[name])[at:at + k] = np.asarray(params[name])
            put_ids(group["point_id"], at, ids)
            at += k
        if at != n:
            raise StoreError(f"{path}: {at} points were given for a store of {n}")
        kept(group.create_array("time", shape=(nt,), chunks=(max(nt, 1),), dtype="float64", fill_value=np.nan,
                                dimension_names=["time"], attributes={"units": "s", "long_name": "time"},
                                compressors=checksummed()))[:] = times
        kept(group.create_array("population", shape=(npop,), chunks=(max(npop, 1),), dtype=str, fill_value="",
                                dimension_names=["population"], attributes={"long_name": "recorded population"},
                                compressors=checksummed()))[:] = np.asarray(populations, dtype=object)
        crash.step("create.arrays")
        group.attrs["sweeper"] = dict(attrs, parameters=names or [], chunk_points=c, dtype=dtype,
                                      variables=[v.name for v in variables], npoints=n, integrity=INTEGRITY,
                                      created=now(), completed=None, versions=versions())
        crash.step("create.attrs")
        cls(path, group).consolidate()
        crash.step("create.consolidated")

    @classmethod
    def open(cls, path, mode: str = "r", *, consolidated: bool = False) -> "SweepStore":
        """Open a store. ``consolidated=True`` takes every array's metadata from the store's
        consolidated metadata (one read instead of one per array): for sweep tasks, whose
        driver consolidates after any change of shape and before it hands out chunks."""
        path = Path(path)
        if not (path / "zarr.json").exists():
            raise StoreError(f"{path} is not a sweeper store (no zarr.json)"
                             if path.exists() else f"store not found: {path}")
        try:
            group = zarr.open_group(str(path), mode=mode, zarr_format=3, use_consolidated=None if consolidated else False)
        except Exception as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        if "sweeper" not in group.attrs:
            raise StoreError(f"{path} is a Zarr group but not a sweeper store (no 'sweeper' attrs)")
        return cls(path, group)

    def consolidate(self):
        with warnings.catch_warnings():  # "consolidated metadata is not in the v3 spec (yet)"
            warnings.simplefilter("ignore", UserWarning)
            zarr.consolidate_metadata(str(self.path))

    # -- shape
    @property
    def meta(self) -> dict:
        return dict(self.group.attrs["sweeper"])

    def set_meta(self, **changes):
        meta = self.meta
        meta.update(changes)
        self.group.attrs["sweeper"] = meta

    @property
    def variables(self) -> list[Variable]:
        """This store's per-point arrays (its table entries and its own metrics), status last."""
        meta = self.meta
        return for_store(meta.get("variables"), meta.get("user_metrics"))

    @property
    def metric_names(self) -> list[str]:
        return [v.name for v in self.variables if v.metric]

    @property
    def npoints(self) -> int:
        return self.group["status"].shape[0]

    @property
    def chunk_points(self) -> int:
        return int(self.meta["chunk_points"])

    @property
    def nchunks(self) -> int:
        return -(-self.npoints // self.chunk_points)

    def check_layout(self):
        """Refuse a store in which two tasks would write one file (a shard or chunk holding
        other than one task's points): one writer per file is what keeps concurrent tasks safe."""
        c = self.chunk_points
        for var in self.variables:
            if var.written == "task" and var.name in self.group:
                k = file_points(self.group[var.name])
                if k != c:
                    raise StoreError(f"{self.path}: array {var.name!r} stores {k} points per file but a task "
                                     f"writes {c}: several tasks would write one file; use a new store")

    def chunk_slice(self, i: int) -> slice:
        c = self.chunk_points
        return slice(i * c, min((i + 1) * c, self.npoints))

    @property
    def parameters(self) -> list[str]:
        return list(self.meta["parameters"])

    @property
    def populations(self) -> list[str]:
        return [str(x) for x in self.group["population"][:]]

    @property
    def times(self) -> np.ndarray:
        return self.group["time"][:]

    # -- reading
    def status(self, sl: slice = slice(None)) -> np.ndarray:
        return self.group["status"][sl]

    def params(self, sl: slice = slice(None)) -> dict[str, np.ndarray]:
        """Parameter columns: float64, int64, bool, or object arrays of str (as the spec's point table has them)."""
        out = {}
        for name in self.parameters:
            values = self.group[name][sl]
            out[name] = values.astype(object) if values.dtype.kind in "TUS" else values
        return out

    def point_ids(self, sl: slice = slice(None)) -> np.ndarray:
        return self.group["point_id"][sl]

    def point_codes(self, sl: slice = slice(None)) -> np.ndarray:
        """The point ids as uint64 codes (:mod:`sweeper.ids`), read a block at a time."""
        arr = self.group["point_id"]
        start, stop, _ = sl.indices(arr.shape[0])
        out = np.empty(max(0, stop - start), dtype=np.uint64)
        for a in range(start, stop, BLOCK):
            b = min(stop, a + BLOCK)
            out[a - start:b - start] = id_codes(arr[a:b])
        return out

    def errors(self, sl: slice = slice(None)) -> np.ndarray:
        return self.group["error"][sl]

    def counts(self) -> dict[str, int]:
        status = self.status()
        return {STATUS_NAMES[k]: int(np.count_nonzero(status == k)) for k in STATUS_NAMES}

    def todo_chunks(self, retry_failed: bool = False) -> list[int]:
        """Chunks holding points still to compute (pending, and failed if asked)."""
        status = self.status()
        todo = status == PENDING
        if retry_failed:
            todo |= status == FAILED
        padded = np.zeros(self.nchunks * self.chunk_points, dtype=bool)
        padded[:len(todo)] = todo
        return np.flatnonzero(padded.reshape(self.nchunks, self.chunk_points).any(axis=1)).tolist()

    # -- writing (one chunk at a time, by the task that owns it)
    def write_chunk(self, i: int, values: Mapping[str, np.ndarray], mask: np.ndarray | None = None,
                    names: list[str] | None = None):
        """Write chunk ``i``: ``values`` holds an array for every task-written variable of the store
        (rates, each metric, error, status). Rows where ``mask`` is False are left as they are.
        ``names``: those variables in table order, when the caller has them already."""
        sl = self.chunk_slice(i)
        g = self.group
        names = names or [v.name for v in self.variables if v.written == "task"]
        missing = [n for n in names if n not in values]
        if missing:
            raise StoreError(f"write_chunk needs {', '.join(missing)}")
        partial = mask is not None and not mask.all()
        for name in names:  # table order, status last: a point is done only once its trace is on disk
            arr = kept(g[name]) if name == "status" else g[name]
            new = np.asarray(values[name], dtype=object) if name == "error" else np.asarray(values[name])
            if partial:
                old = arr[sl]
                new = np.where(mask.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)
            arr[sl] = new.astype(object) if arr.dtype.kind in "TUSO" else new.astype(arr.dtype, copy=False)
            crash.step(crash.write_step(name))

    def add_variable(self, var: Variable):
        """Create an empty per-point array for ``var`` (a metric added to a finished store)."""
        sizes = {"point": self.npoints, "population": len(self.populations), "time": len(self.times)}
        shape = tuple(sizes[d] for d in var.dims)
        self.group.create_array(var.name, shape=shape, **task_chunks(shape, self.chunk_points),
                                dtype=var.numpy_dtype(self.meta["dtype"]), fill_value=var.fill,
                                dimension_names=list(var.dims), attributes=var.cf_attrs(),
                                compressors=checksummed(), overwrite=True)  # one an interrupted add left

    def write_metrics(self, i: int, values: Mapping[str, np.ndarray], mask: np.ndarray,
                      status: np.ndarray | None = None, errors: list[str] | None = None):
        """Write some metrics of chunk ``i`` for the rows in ``mask`` (then, if given, the chunk's
        errors and status: a metric that failed marks its point failed)."""
        sl = self.chunk_slice(i)
        g = self.group
        for name, new in values.items():
            old = g[name][sl]
            g[name][sl] = np.where(mask.reshape((-1,) + (1,) * (old.ndim - 1)), new, old).astype(old.dtype)
        if errors is not None:
            g["error"][sl] = np.asarray(errors, dtype=object)
        if status is not None:
            g["status"][sl] = np.asarray(status, dtype=np.int8)

    def extend(self, params: Mapping[str, np.ndarray], ids: np.ndarray, meta: Mapping | None = None):
        """Append points (same parameters) at the end; new points start pending.

        Commit protocol: the parameters, the per-point arrays and the ids are written first; then
        one atomic write of the store's attributes (``npoints``, and ``meta``: the new spec)
        commits the new points.  A run killed before that leaves longer arrays beside a store
        that still says ``npoints`` = the old count, which :meth:`repair` cuts back."""
        n0, k = self.npoints, len(ids)
        n1 = n0 + k
        g = self.group
        for name in self.parameters:
            g[name].resize((n1,))
            kept(g[name])[n0:n1] = np.asarray(params[name])
        crash.step("extend.parameters")
        for var in self.variables:
            arr = g[var.name]
            arr.resize((n1,) + arr.shape[1:])
            if var.written == "task":  # rows a cut-back extension left in a partial chunk read as fill
                kind = object if arr.dtype.kind in "TUSO" else arr.dtype
                (kept(arr) if var.name == "status" else arr)[n0:n1] = np.full((k,) + arr.shape[1:], var.fill, dtype=kind)
        crash.step("extend.resized")
        put_ids(g["point_id"], n0, ids)
        crash.step("extend.ids")
        self.set_meta(**dict(meta or {}), npoints=n1, completed=None)
        crash.step("extend.committed")
        self.consolidate()
        crash.step("extend.consolidated")

    @property
    def committed_points(self) -> int | None:
        """The point count the last creation or extension committed (None: a store from before)."""
        n = self.meta.get("npoints")
        return None if n is None else int(n)

    def repair(self) -> int:
        """Undo an interrupted :meth:`extend`: cut every per-point array back to the committed
        points. Returns how many partly added points went.  Lost point ids are not a sign of an
        extension (they are rebuilt from the parameters by the caller)."""
        g = self.group
        names = [v.name for v in self.variables] + self.parameters
        lengths = {name: g[name].shape[0] for name in names}
        n = self.committed_points
        if n is None:  # before commit records: an extension wrote its ids last, and no point of it ran
            n = min(lengths.values())
            status = g["status"][:n]
            written = np.flatnonzero((g["point_id"][:n] != "") | (status != PENDING))
            n = int(written[-1]) + 1 if len(written) else n
        short = sorted(name for name, length in lengths.items() if length < n)
        if short:
            raise StoreError(f"{self.path}: array(s) {', '.join(short)} hold fewer points than the store "
                             f"committed ({n}): damaged metadata; `sweeper verify` says more")
        if all(length == n for length in lengths.values()):
            return 0
        for name in names:
            if lengths[name] != n:
                g[name].resize((n,) + g[name].shape[1:])
        crash.step("repair.cut")
        if self.committed_points is None:
            self.set_meta(npoints=n)
        self.consolidate()
        return max(lengths.values()) - n

    def rewrite(self, name: str, values: np.ndarray, step: str | None = None):
        """Replace a whole array written at creation (point ids, a coordinate, the time axis) with
        ``values`` rebuilt from what determines it."""
        arr = kept(self.group[name])
        if name == "point_id":
            put_ids(arr, 0, values)
        else:
            arr[:] = np.asarray(values, dtype=object) if arr.dtype.kind in "TUSO" else np.asarray(values)
        if step:
            crash.step(step)

    def chunk_missing(self, name: str, index: tuple[int, ...]) -> bool:
        """True when the file of chunk ``index`` of array ``name`` is absent (a local store)."""
        arr = self.group[name]
        return not (self.path / name / arr.metadata.encode_chunk_key(index)).is_file()

    @property
    def every_chunk_written(self) -> bool:
        """Made with every status, id and coordinate chunk written (then a missing one is damage)."""
        return int(self.meta.get("integrity", 0)) >= INTEGRITY

    def mark_pending(self, indices: np.ndarray) -> int:
        """Set the status of the points at ``indices`` to pending (nothing else changes)."""
        indices = np.unique(np.asarray(indices, dtype=int))
        if not len(indices):
            return 0
        status = kept(self.group["status"])
        for i in np.unique(indices // self.chunk_points):
            sl = self.chunk_slice(int(i))
            try:
                values = status[sl]
            except Exception:  # an undecodable status chunk: its points are all to be computed again
                values = np.full(sl.stop - sl.start, PENDING, dtype=np.int8)
            values[indices[(indices >= sl.start) & (indices < sl.stop)] - sl.start] = PENDING
            status[sl] = values
        self.set_meta(completed=None)
        return len(indices)
