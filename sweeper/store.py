"""The Zarr v3 store of one sweep.

Layout (every array along ``point`` is chunked by ``chunk_points``; one task writes one chunk,
so no two writers ever touch the same chunk)::

    rates        [point, population, time]   float64 | float32, NaN until written
    mean_rate    [point, population]          mean over the final window (metric_window seconds)
    final_rate   [point, population]          last finite sample
    status       [point]  int8                0 pending, 1 done, 2 failed
    error        [point]  str                 why a point failed ('' otherwise)
    point_id     [point]  str                 stable id derived from the parameter values
    <parameter>  [point]                      one coordinate array per parameter
    time         [time], population [population]
    attrs["sweeper"]: spec text, hashes, versions, timestamps, parameter paths

A chunk's traces and metrics are written before its status, and Zarr's local store writes
each chunk file atomically (temporary file + rename), so a killed run never leaves a point
marked done without its trace.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import zarr

from .errors import StoreError

PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}
RESERVED = {"rates", "mean_rate", "final_rate", "status", "error", "point_id", "time", "population", "point"}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for pkg in ("sweeper", "numpy", "scipy", "zarr", "dask", "distributed", "xarray", "numba"):
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
    def create(cls, path, *, params: Mapping[str, np.ndarray], ids: np.ndarray, populations: list[str],
               times: np.ndarray, attrs: dict, dtype: str = "float64", chunk_points: int = 16) -> "SweepStore":
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path} already exists")
        # built beside its final name and renamed into place: a run killed while creating the
        # store (or a full disk) leaves no half-made store behind, and the next run starts afresh
        tmp = path.with_name(f"{path.name}.creating-{os.getpid()}")
        for leftover in path.parent.glob(f"{path.name}.creating-*"):  # of killed runs (callers hold the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            cls._build(tmp, params=params, ids=ids, populations=populations, times=times, attrs=attrs,
                       dtype=dtype, chunk_points=chunk_points)
            os.rename(tmp, path)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"cannot create store {path}: {exc.strerror or exc}") from None
        return cls.open(path, mode="r+")

    @classmethod
    def _build(cls, path: Path, *, params, ids, populations, times, attrs, dtype, chunk_points):
        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        n, npop, nt = len(ids), len(populations), len(times)
        c = max(1, min(chunk_points, n))
        group.create_array("rates", shape=(n, npop, nt), chunks=(c, npop, nt), dtype=dtype,
                           fill_value=np.nan, dimension_names=["point", "population", "time"])
        for name in ("mean_rate", "final_rate"):
            group.create_array(name, shape=(n, npop), chunks=(c, npop), dtype="float64",
                               fill_value=np.nan, dimension_names=["point", "population"])
        group.create_array("status", shape=(n,), chunks=(c,), dtype="int8", fill_value=PENDING,
                           dimension_names=["point"])
        group.create_array("error", shape=(n,), chunks=(c,), dtype=str, fill_value="",
                           dimension_names=["point"])
        group.create_array("point_id", shape=(n,), chunks=(max(c, 4096),), dtype=str, fill_value="",
                           dimension_names=["point"])
        group["point_id"][:] = np.asarray(ids, dtype=object)
        for name, values in params.items():
            values = np.asarray(values)
            kind = str if values.dtype == object else "float64"
            arr = group.create_array(name, shape=(n,), chunks=(max(c, 4096),), dtype=kind,
                                     fill_value="" if kind is str else np.nan, dimension_names=["point"])
            arr[:] = values
        group.create_array("time", shape=(nt,), chunks=(max(nt, 1),), dtype="float64",
                           dimension_names=["time"])[:] = times
        group.create_array("population", shape=(npop,), chunks=(max(npop, 1),), dtype=str,
                           dimension_names=["population"])[:] = np.asarray(populations, dtype=object)
        group.attrs["sweeper"] = dict(attrs, parameters=list(params), chunk_points=c, dtype=dtype,
                                      created=now(), completed=None, versions=versions())
        cls(path, group).consolidate()

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
    def npoints(self) -> int:
        return self.group["status"].shape[0]

    @property
    def chunk_points(self) -> int:
        return int(self.meta["chunk_points"])

    @property
    def nchunks(self) -> int:
        return -(-self.npoints // self.chunk_points)

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
        """Parameter columns: float64, or object arrays of str (as the spec's point table has them)."""
        out = {}
        for name in self.parameters:
            values = self.group[name][sl]
            out[name] = values.astype(object) if values.dtype.kind in "TUS" else values
        return out

    def point_ids(self, sl: slice = slice(None)) -> np.ndarray:
        return self.group["point_id"][sl]

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
    def write_chunk(self, i: int, rates: np.ndarray, status: np.ndarray, errors: list[str],
                    mean_rate: np.ndarray, final_rate: np.ndarray, mask: np.ndarray | None = None):
        """Write chunk ``i``; rows where ``mask`` is False are left as they are."""
        sl = self.chunk_slice(i)
        g = self.group
        if mask is not None and not mask.all():
            old = {k: g[k][sl] for k in ("rates", "mean_rate", "final_rate", "status", "error")}
            rates = np.where(mask[:, None, None], rates, old["rates"])
            mean_rate = np.where(mask[:, None], mean_rate, old["mean_rate"])
            final_rate = np.where(mask[:, None], final_rate, old["final_rate"])
            status = np.where(mask, status, old["status"])
            errors = [e if m else o for e, m, o in zip(errors, mask, old["error"])]
        g["rates"][sl] = rates.astype(g["rates"].dtype, copy=False)
        g["mean_rate"][sl] = mean_rate
        g["final_rate"][sl] = final_rate
        g["error"][sl] = np.asarray(errors, dtype=object)
        g["status"][sl] = status.astype(np.int8)  # last: a point is done only once its trace is on disk

    def extend(self, params: Mapping[str, np.ndarray], ids: np.ndarray):
        """Append points (same parameters) at the end; new points start pending.

        The point ids are written last: they commit the new points. A run killed before that
        leaves longer arrays beside them, which :meth:`repair` cuts back."""
        n0, k = self.npoints, len(ids)
        n1 = n0 + k
        g = self.group
        for name in self.parameters:
            g[name].resize((n1,))
            g[name][n0:n1] = np.asarray(params[name])
        for name in ("rates", "mean_rate", "final_rate", "error", "status", "point_id"):
            arr = g[name]
            arr.resize((n1,) + arr.shape[1:])
        g["point_id"][n0:n1] = np.asarray(ids, dtype=object)
        self.set_meta(completed=None)
        self.consolidate()

    def repair(self) -> int:
        """Undo an interrupted :meth:`extend`: cut every per-point array back to the points that
        all arrays have and whose ids are written. Returns how many partly added points went."""
        g = self.group
        names = ("rates", "mean_rate", "final_rate", "status", "error", "point_id", *self.parameters)
        lengths = {name: g[name].shape[0] for name in names}
        n = min(lengths.values())
        written = np.flatnonzero(g["point_id"][:n] != "")
        n = int(written[-1]) + 1 if len(written) else 0
        if all(length == n for length in lengths.values()):
            return 0
        for name in names:
            if lengths[name] != n:
                g[name].resize((n,) + g[name].shape[1:])
        self.consolidate()
        return max(lengths.values()) - n
