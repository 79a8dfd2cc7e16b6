"""The Zarr v3 store of one sweep (see :mod:`sweeper.store.sweepstore` for the layout and
:mod:`sweeper.store.variables` for the table of its arrays)."""

from .sweepstore import SweepStore, now, versions
from .variables import DONE, FAILED, PENDING, RESERVED, STATUS_NAMES, VARIABLES, Variable

__all__ = ["SweepStore", "DONE", "FAILED", "PENDING", "RESERVED", "STATUS_NAMES", "VARIABLES", "Variable",
           "now", "versions"]
