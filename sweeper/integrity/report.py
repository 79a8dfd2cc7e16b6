"""What ``sweeper verify`` found: damage per point (what ``sweeper repair`` makes pending) and
damage of the store's structure (ids, coordinates, axes, array shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    """Problems of one store, in the order found."""

    points: dict[int, list[str]] = field(default_factory=dict)   # point index -> what is wrong with it
    structure: list[str] = field(default_factory=list)            # everything not tied to one point's results
    lines: list[str] = field(default_factory=list)                # every problem as a line, in order

    def point(self, i: int, what: str):
        """Point ``i``'s results are damaged: ``repair`` marks it pending."""
        self.points.setdefault(int(i), []).append(what)
        self.lines.append(f"point {int(i)}: {what}")

    def chunk(self, indices, what: str):
        """A whole chunk is damaged: one line, every listed point marked."""
        indices = [int(i) for i in indices]
        for i in indices:
            self.points.setdefault(i, []).append(what)
        if indices:
            self.lines.append(f"points {indices[0]}-{indices[-1]}: {what}")

    def other(self, what: str):
        self.structure.append(what)
        self.lines.append(what)

    @property
    def damaged(self) -> list[int]:
        return sorted(self.points)

    def __bool__(self) -> bool:
        return bool(self.lines)
