"""Errors that sweeper reports to users as one clear line (no traceback on the CLI)."""

from __future__ import annotations


class SweeperError(Exception):
    """A user-facing error: bad input, refused parameters, unusable store.

    ``where`` names the file and/or key at fault; it is prefixed to the message.
    """

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ModelError(SweeperError):
    """A network description that the engine cannot or must not simulate."""


class SpecError(SweeperError):
    """A sweep spec that cannot be expanded (all problems are collected into one error)."""

    def __init__(self, problems: list[str] | str, where: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        text = self.problems[0] if len(self.problems) == 1 else (
            f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems))
        super().__init__(text, where)


class ExpressionError(SweeperError):
    """An expression that is not in the whitelisted grammar."""


class SimulationError(SweeperError):
    """A network that failed numerically (mass not conserved, non-finite rates)."""


class StoreError(SweeperError):
    """A Zarr store that cannot be used for this run (other spec, locked, damaged)."""
