"""The variables of a sweep store: one table that creation, writing, extension, repair,
verification and the reader (:func:`sweeper.analysis.open_sweep`) all iterate.

Every entry is one Zarr array whose first dimension is ``point``.  The parameter coordinates
(one array per parameter) and the ``time`` / ``population`` axes are per sweep and are not in
the table.

How to add a store variable: add a :class:`Variable` to :data:`VARIABLES` (a metric: add it to
:data:`sweeper.metrics.METRICS`, which feeds this table).  ``written="task"`` variables are
written by each chunk's task through :meth:`SweepStore.write_chunk` (the task passes a value
for every one of them); ``written="ids"`` ones with the point ids when points are created or
added.  Order matters: a task writes in table order and ``status`` is last, so a point is done
only once everything before it is on disk.  Stores remember which variables they were made
with (``attrs["sweeper"]["variables"]``), so older stores keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import METRICS

PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}


@dataclass(frozen=True)
class Variable:
    """One per-point array of the store."""

    name: str
    dims: tuple[str, ...]      # first is always "point"
    dtype: str                 # numpy dtype name, "str", or "rates" (the spec's output dtype)
    fill: Any
    units: str | None
    long_name: str
    metric: bool = False       # a number per point and population derived from the traces
    written: str = "task"      # "task": by write_chunk; "ids": with the point ids (create/extend)
    attrs: dict = field(default_factory=dict)

    def cf_attrs(self) -> dict:
        """CF attributes of the array (units, long_name and any flags)."""
        out = {"long_name": self.long_name}
        if self.units is not None:
            out["units"] = self.units
        out.update(self.attrs)
        return out

    def numpy_dtype(self, rates_dtype: str):
        return {"rates": rates_dtype, "str": str}.get(self.dtype, self.dtype)


def metric_variable(m, *, long_name: str | None = None) -> Variable:
    return Variable(m.name, ("point", "population"), m.dtype, m.fill, m.units, long_name or m.long_name,
                    metric=True, attrs=dict(m.attrs))


RATES = Variable("rates", ("point", "population", "time"), "rates", np.nan, "Hz",
                 "population firing rate")
ERROR = Variable("error", ("point",), "str", "", None, "why the point failed ('' otherwise)")
POINT_ID = Variable("point_id", ("point",), "str", "", None,
                    "stable id derived from the parameter values", written="ids")
STATUS = Variable("status", ("point",), "int8", PENDING, None, "point status",
                  attrs={"flag_values": [PENDING, DONE, FAILED],
                         "flag_meanings": " ".join(STATUS_NAMES[k] for k in (PENDING, DONE, FAILED))})

VARIABLES: tuple[Variable, ...] = (RATES, *(metric_variable(m) for m in METRICS), ERROR, POINT_ID, STATUS)
BY_NAME = {v.name: v for v in VARIABLES}

# what stores made before the table listed their variables hold
LEGACY = ("rates", "mean_rate", "final_rate", "error", "point_id", "status")
# names a parameter may not take (store arrays and axes)
RESERVED = frozenset(BY_NAME) | {"time", "population", "point"}


def table(extra: dict | None = None) -> list[Variable]:
    """The variables of a new store: every table entry plus ``extra`` metrics of the user's own."""
    return for_store([v.name for v in VARIABLES], extra)


def for_store(names: list[str] | None, extra: dict | None = None) -> list[Variable]:
    """The variables of a store made with ``names`` (None: a store from before the table) plus
    its ``extra`` metrics (name -> {units, long_name}), in table order, status last."""
    chosen = [BY_NAME[n] for n in (LEGACY if names is None else names) if n in BY_NAME]
    for name, info in (extra or {}).items():
        chosen.append(Variable(name, ("point", "population"), "float64", np.nan, info.get("units"),
                               info.get("long_name", name), metric=True))
    chosen.sort(key=lambda v: v.name == "status")
    return chosen
