"""The spec side of a check: the user's spec of this command, or the spec kept in the store
expanded into its points only (values, expressions and samplers: no network file is read and
no builder is imported or called)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError, SweeperError
from ..store import SweepStore
from ..sweep import Sweep
from ..sweep import points as pts


class PointsOnly(Sweep):
    """A spec parsed for its points alone: the network and the builder are never touched."""

    def _try_base(self, P):
        return None

    def _builder_base(self, params, derived, P):
        return None

    def base_network(self):
        raise SpecError("a spec read from a store is not built (pass --spec SPEC)")


@dataclass
class Expected:
    """What a spec says the store holds."""

    source: str                     # "the spec kept in the store" or the spec file's name
    table: pts.Table
    names: list[str]
    ids: np.ndarray                 # uint64 id codes (sweeper/ids.py)
    times: np.ndarray | None        # only from the user's spec (needs the network's time grid)
    populations: list[str] | None   # likewise
    full_length: bool               # every done trace spans the whole time axis
    adaptive: Sweep | None = None   # an adaptive spec: its points are checked against its axes
    metric_functions: dict = field(default_factory=dict)  # the user's own metrics, from the user's spec only


def from_user(sweep: Sweep) -> Expected:
    """Everything the user's spec says (this may call the user's own builder)."""
    from ..sweep.runner import time_axis

    if sweep.adaptive is not None:  # points chosen while it ran: no fixed list to compare with
        return Expected(sweep.source, {}, sweep.parameter_names, np.array([], dtype=np.uint64), None, None,
                        False, adaptive=sweep)
    table = sweep.points()
    names = sweep.parameter_names
    probe = sweep.network_for({k: v[0] for k, v in table.items()})
    swept = list(sweep.paths.values()) + [d[1] for d in sweep.derived.values()]
    full = "network" in sweep.spec and not any(
        p is not None and p.area == "simulation" and p.field == "tf" for p in swept)
    from ..sweep import usermetrics
    funcs = usermetrics.functions(sweep.user_metrics, sweep.recipe.folders) if sweep.user_metrics else {}
    return Expected(sweep.source, table, names, pts.point_codes(table, names), time_axis(sweep, table),
                    list(probe.recorded), full, metric_functions=funcs)


def from_store(st: SweepStore) -> Expected:
    """What the spec kept in ``st`` says, without running anything it names."""
    meta = st.meta
    sweep = PointsOnly.from_text(meta["spec"], base_dir=meta.get("base_dir", "."),
                                 source="the spec kept in the store",
                                 round_values="coordinates" in meta)  # older stores: values as numpy made them
    if sweep.adaptive is not None:
        return Expected(sweep.source, {}, sweep.parameter_names, np.array([], dtype=np.uint64), None, None,
                        stored_full_length(meta), adaptive=sweep)
    table = sweep.points()
    names = sweep.parameter_names
    return Expected(sweep.source, table, names, pts.point_codes(table, names), None, None, stored_full_length(meta))


def stored_full_length(meta: dict) -> bool:
    """From the store's own record: no builder and no swept ``simulation.tf`` (then NaN padding at
    the end of a done trace is damage, not a shorter simulation)."""
    recipe = meta.get("recipe")
    if recipe is None:
        return False
    if recipe.get("builder") is not None:
        return False
    return not any(p is not None and p.get("area") == "simulation" and p.get("field") == "tf"
                   for p in (recipe.get("paths") or {}).values())


def expected(st: SweepStore, spec) -> Expected | str:
    """The user's spec (a file or a :class:`Sweep`) when given, else the store's own; a string
    saying why when it cannot be expanded."""
    try:
        if spec is None:
            return from_store(st)
        sweep = spec if isinstance(spec, Sweep) else Sweep.from_file(spec)
        if "coordinates" not in st.meta and sweep.round_values:  # made before generated values were rounded
            sweep = Sweep.from_text(sweep.text, base_dir=sweep.base_dir, source=sweep.source, round_values=False)
        return from_user(sweep)
    except SweeperError as exc:
        where = "the spec kept in the store" if spec is None else f"the spec {getattr(spec, 'source', spec)}"
        return f"{where} cannot be expanded: {exc}"
