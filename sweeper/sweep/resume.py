"""Resuming into an existing store: the structure a lost or damaged chunk broke, rebuilt from
what determines it.

Point ids are a function of the parameter values, so a lost ``point_id`` chunk is rebuilt from
the coordinates (never taken for an interrupted extension); coordinates lost while the ids are
intact come back from the user's spec by id; a lost time axis from the spec's time grid.  Only
the spec the user passed to this command is used: nothing kept in the store is executed.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import StoreError
from ..store import SweepStore
from . import points as pts

log = logging.getLogger(__name__)


def readable(read):
    """``read()``, or None when a damaged chunk makes it fail."""
    try:
        return read()
    except Exception:  # a chunk whose checksum or compression fails
        return None


def stored_columns(store: SweepStore, names: list[str]) -> tuple[np.ndarray, dict, np.ndarray]:
    """(point ids, coordinates, rows whose coordinates are all intact); unreadable arrays read as lost."""
    n = store.npoints
    ids = readable(store.point_ids)
    ids = np.full(n, "", dtype=object) if ids is None else np.asarray(ids, dtype=object)
    params, intact = {}, np.ones(n, dtype=bool)
    for name in names:
        values = readable(lambda name=name: store.group[name][:])
        if values is None:
            values = np.full(n, np.nan)
        values = values.astype(object) if values.dtype.kind in "TUS" else values
        intact &= (values != "") if values.dtype == object else np.isfinite(values)
        params[name] = values
    return ids, params, intact


def rebuilt_ids(params: dict, names: list[str], intact: np.ndarray) -> np.ndarray:
    """The id each row's coordinates give ('' where they are damaged)."""
    want = np.full(len(intact), "", dtype=object)
    if intact.any():
        want[intact] = pts.point_ids({k: v[intact] for k, v in params.items()}, names)
    return want


def heal(store: SweepStore, names: list[str], table: pts.Table | None = None, spec_ids: np.ndarray | None = None,
         times: np.ndarray | None = None, populations=None) -> list[str]:
    """Rebuild what lost or damaged chunks broke: point ids from intact coordinates, and with the
    user's spec (``table``, ``spec_ids``, ``times``, ``populations()``: the recorded populations)
    coordinates from the ids, the time axis and the population axis.  Without a spec only ids
    that are missing are rebuilt.  Returns what was rebuilt."""
    ids, params, intact = stored_columns(store, names)
    want = rebuilt_ids(params, names, intact)
    wrong = np.flatnonzero(ids != want)
    done, new_ids, new_params = [], ids.copy(), {k: v.copy() for k, v in params.items()}
    known = {pid: k for k, pid in enumerate(spec_ids)} if spec_ids is not None else None
    fixed_ids = fixed_coords = 0
    for i in wrong:
        if known is not None and ids[i] in known:  # the id is the spec's: the coordinates were damaged
            for name in names:
                new_params[name][i] = table[name][known[ids[i]]]
            fixed_coords += 1
        elif want[i] != "" and (ids[i] == "" or (known is not None and want[i] in known)):
            new_ids[i] = want[i]
            fixed_ids += 1
        elif known is not None:
            raise StoreError(f"{store.path}: point {i}: neither its id {ids[i]!r} nor its coordinates are in "
                             "the spec; use `sweeper verify` and a new store")
    if fixed_ids:
        store.rewrite("point_id", new_ids, "repair.ids")
        done.append(f"rebuilt {fixed_ids} point id(s) from the coordinates")
    if fixed_coords:
        for name in names:
            if not _same(new_params[name], params[name]):
                store.rewrite(name, new_params[name], "repair.ids")
        done.append(f"rebuilt the coordinates of {fixed_coords} point(s) from the spec")
    if times is not None:
        stored = readable(lambda: store.times)
        if stored is None or (len(stored) == len(times) and damaged_axis(stored)):
            store.rewrite("time", times, "repair.ids")
            done.append("rebuilt the time axis from the spec")
    if populations is not None:
        pops = readable(lambda: store.populations)
        if pops is None or any(p == "" for p in pops):
            store.rewrite("population", np.asarray(populations(), dtype=object), "repair.ids")
            done.append("rebuilt the population axis from the spec")
    for line in done:
        log.warning(f"sweeper: {store.path}: {line}")
    if done:
        store.consolidate()
    return done


def damaged_axis(t: np.ndarray) -> bool:
    """A time axis that a lost chunk left (fill values) or that is not increasing."""
    return not np.isfinite(t).all() or bool(np.any(np.diff(t) <= 0))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype == object or b.dtype == object:
        return bool(np.all(a == b))
    return np.array_equal(a, b, equal_nan=True)
