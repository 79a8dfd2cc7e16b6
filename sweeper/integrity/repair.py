"""``sweeper repair``: make every point that ``verify`` finds damaged pending, so the next
``sweeper run`` recomputes exactly those; rebuild lost point ids from the coordinates (and, with
the user's spec, lost coordinates from the ids and a lost time axis).  Nothing else changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import SweepStore
from ..sweep.resume import heal
from .report import Report
from .verify import verify


@dataclass
class RepairPlan:
    """What a repair does (or did): the points made pending and the structure rebuilt."""

    report: Report
    pending: list[int] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)


def repair_store(path, *, spec=None, dry_run: bool = False, recompute=None, client=None) -> RepairPlan:
    """Repair the store at ``path`` (the caller holds its writer lock unless ``dry_run``)."""
    report = verify(path, spec=spec, recompute=recompute, client=client)
    plan = RepairPlan(report, report.damaged)
    if dry_run:
        return plan
    st = SweepStore.open(path, mode="r+")
    if st.repair():  # an uncommitted extension: cut back, as the next run would
        plan.rebuilt.append("undid an interrupted extension")
        report = verify(path, spec=spec)
        plan = RepairPlan(report, report.damaged, plan.rebuilt)
    if spec is not None:
        from .specs import from_user
        from ..sweep import Sweep
        expect = from_user(spec if isinstance(spec, Sweep) else Sweep.from_file(spec))
        plan.rebuilt += heal(st, st.parameters, expect.table, expect.ids, expect.times,
                             populations=lambda: expect.populations)
    else:
        plan.rebuilt += heal(st, st.parameters)
    st.mark_pending(plan.pending)
    st.consolidate()
    return plan
