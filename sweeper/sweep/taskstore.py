"""The store as a worker sees it: opened once per worker process, not once per task.

Opening a store reads its consolidated metadata, and a task also needs the store's attributes,
time axis and populations: a few file reads and decodes that, for cheap points, cost as much as
the points themselves.  A worker keeps the opened store keyed by its path and the state of its
root ``zarr.json`` (inode, size, modification time): every change of shape, spec or recipe
rewrites that file (atomically, so a new inode), and the next task then opens the store afresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..store import SweepStore

KEEP = 4  # stores kept per worker process (a worker serves one run at a time, rarely more)


@dataclass
class TaskStore:
    """An opened store and what every task of it reads (read once)."""

    store: SweepStore
    meta: dict
    times: np.ndarray
    populations: list[str]
    metric_names: list[str]
    task_written: list[str]


_open: dict[str, tuple[tuple, TaskStore]] = {}


def commit_state(path: str) -> tuple:
    st = os.stat(Path(path) / "zarr.json")
    return st.st_ino, st.st_size, st.st_mtime_ns


def task_store(path: str) -> TaskStore:
    """The store at ``path`` opened for writing chunks, reused while its metadata is unchanged."""
    state = commit_state(path)
    hit = _open.get(path)
    if hit is not None and hit[0] == state:
        return hit[1]
    store = SweepStore.open(path, mode="r+", consolidated=True)
    variables = store.variables
    view = TaskStore(store, store.meta, store.times, store.populations,
                     [v.name for v in variables if v.metric], [v.name for v in variables if v.written == "task"])
    if len(_open) >= KEEP:
        _open.pop(next(iter(_open)))
    _open[path] = (state, view)
    return view
