"""``sweeper verify --recompute N|all``: simulate done points again, one Dask task per store
chunk, and require traces bit-identical to the stored ones (the engine is deterministic).

Networks come from the spec the user passes to this command, never from the store.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np

from ..errors import SweeperError
from ..store import DONE, SweepStore
from ..sweep import Sweep
from .report import Report


def choose(status: np.ndarray, how, seed=None) -> np.ndarray:
    """The done points to simulate again: ``"all"``, or ``how`` of them at random."""
    done = np.flatnonzero(status == DONE)
    if how == "all":
        return done
    n = int(how)
    if n < 0:
        raise SweeperError(f"--recompute takes a number >= 0 or 'all', got {how!r}")
    return np.sort(np.random.default_rng(seed).choice(done, size=min(n, len(done)), replace=False))


def recompute_points(st: SweepStore, spec, how, status: np.ndarray, report: Report, *, client=None, seed=None):
    """Simulate the chosen done points again and report every one whose trace differs."""
    if spec is None:
        raise SweeperError("--recompute needs the spec that made the store (--spec SPEC): a store's own "
                           "spec is never run")
    sweep = spec if isinstance(spec, Sweep) else Sweep.from_file(spec)
    chosen = choose(status, how, seed)
    if not len(chosen):
        return
    recipe = sweep.recipe.to_json()
    by_chunk: dict[int, list[int]] = {}
    for i in chosen:
        by_chunk.setdefault(int(i) // st.chunk_points, []).append(int(i))
    with _client(client) as cl:
        futures = [cl.submit(recompute_chunk, str(st.path.resolve()), rows, recipe, pure=False)
                   for rows in by_chunk.values()]
        for fut in futures:
            for i, what in fut.result():
                report.point(i, what)


@contextmanager
def _client(client):
    if client is not None:
        yield client
        return
    from ..cluster import connect
    with connect("local") as c:
        yield c


def recompute_chunk(store_path: str, rows: list[int], recipe_json: str) -> list[tuple[int, str]]:
    """Simulate ``rows`` (points of one chunk) again; (point, problem) for every differing trace."""
    from ..engine import simulate_batch
    from ..engine.check import check_network
    from ..sweep.recipe import Recipe

    st = SweepStore.open(store_path)
    recipe = Recipe.from_dict(json.loads(recipe_json))
    params = {name: st.group[name].get_coordinate_selection(rows) for name in st.parameters}
    params = {k: (v.astype(object) if v.dtype.kind in "TUS" else v) for k, v in params.items()}
    stored = st.group["rates"].get_orthogonal_selection((rows, slice(None), slice(None)))
    times, every = st.times, int(st.meta.get("record_every", 1))
    problems, nets, keep = [], [], []
    for j, i in enumerate(rows):
        try:
            net = recipe.network_for({k: v[j] for k, v in params.items()})
            check_network(net, where="point")
        except Exception as exc:  # the user's builder or spec no longer makes this point
            problems.append((i, f"cannot be simulated again: {type(exc).__name__}: {exc}"))
            continue
        nets.append(net)
        keep.append(j)
    for j, result in zip(keep, simulate_batch(nets) if nets else []):
        i = rows[j]
        if isinstance(result, Exception):
            problems.append((i, f"simulated again it fails: {result}"))
            continue
        r = np.asarray(result.rates)[:, ::every]
        again = np.full(stored.shape[1:], np.nan)
        again[:, :r.shape[1]] = r[:, :len(times)]
        again = again.astype(stored.dtype)
        if again.tobytes() != np.ascontiguousarray(stored[j]).tobytes():
            diff = np.flatnonzero((again != stored[j]).any(axis=0) & ~(np.isnan(again) & np.isnan(stored[j])).all(axis=0))
            where = f"first at sample {int(diff[0])}" if len(diff) else "in NaN payloads"
            problems.append((i, f"trace differs from the same point simulated again ({where})"))
    return problems
