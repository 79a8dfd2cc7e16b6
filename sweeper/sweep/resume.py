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
from ..ids import NO_ID
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
    """(point id codes, coordinates, rows whose coordinates are all intact); unreadable arrays read
    as lost (ids as NO_ID)."""
    n = store.npoints
    ids = readable(store.point_codes)
    ids = np.full(n, NO_ID) if ids is None else ids
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
    """The id code each row's coordinates give (NO_ID where they are damaged)."""
    want = np.full(len(intact), NO_ID, dtype=np.uint64)
    if intact.any():
        want[intact] = pts.point_codes({k: v[intact] for k, v in params.items()}, names)
    return want


def positions(codes: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Where each of ``codes`` is in ``among`` (-1 where it is not): a sort, not a dict of strings."""
    order = np.argsort(among, kind="stable")
    ranked = among[order]
    k = np.minimum(np.searchsorted(ranked, codes), max(len(ranked) - 1, 0))
    found = (ranked[k] == codes) if len(ranked) else np.zeros(len(codes), dtype=bool)
    return np.where(found, order[k] if len(ranked) else -1, -1)


def heal(store: SweepStore, names: list[str], table: pts.Table | None = None, spec_ids: np.ndarray | None = None,
         times: np.ndarray | None = None, populations=None) -> list[str]:
    """Rebuild what lost or damaged chunks broke: point ids from intact coordinates, and with the
    user's spec (``table``, ``spec_ids``: its id codes, ``times``, ``populations()``: the recorded populations)
    coordinates from the ids, the time axis and the population axis.  Without a spec only ids
    that are missing are rebuilt.  Returns what was rebuilt."""
    ids, params, intact = stored_columns(store, names)
    want = rebuilt_ids(params, names, intact)
    wrong = np.flatnonzero(ids != want)
    done, new_ids, new_params = [], ids.copy(), {k: v.copy() for k, v in params.items()}
    spec = spec_ids is not None
    if spec and len(wrong):
        at_id, at_want = positions(ids[wrong], spec_ids), positions(want[wrong], spec_ids)
    fixed_ids = fixed_coords = 0
    for j, i in enumerate(wrong):
        if spec and at_id[j] >= 0:  # the id is the spec's: the coordinates were damaged
            for name in names:
                new_params[name][i] = table[name][at_id[j]]
            fixed_coords += 1
        elif want[i] != NO_ID and (ids[i] == NO_ID or (spec and at_want[j] >= 0)):
            new_ids[i] = want[i]
            fixed_ids += 1
        elif spec:
            text = readable(lambda: store.point_ids(slice(i, i + 1))[0])
            raise StoreError(f"{store.path}: point {i}: neither its id {str(text or '')!r} nor its coordinates "
                             "are in the spec; use `sweeper verify` and a new store")
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
