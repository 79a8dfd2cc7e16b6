"""Sweeps: spec -> points -> Dask tasks -> Zarr store -> analysis."""

from .spec import Sweep
from .runner import RunSummary, prepare_store, run_chunk, run_sweep
from . import adaptive  # noqa: F401  (registers the adaptive driver with the runner)
from ..analysis import open_sweep

__all__ = ["Sweep", "RunSummary", "prepare_store", "run_chunk", "run_sweep", "open_sweep"]
