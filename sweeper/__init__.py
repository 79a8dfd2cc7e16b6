"""sweeper: parameter sweeps of population-density neural network models at cluster scale."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sweeper")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from .errors import ModelError, SimulationError, SpecError, StoreError, SweeperError  # noqa: E402
from .model import (  # noqa: E402
    Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation,
)

__all__ = [
    "Connection", "Dist", "ExternalPopulation", "InternalPopulation", "Network", "Simulation",
    "ModelError", "SimulationError", "SpecError", "StoreError", "SweeperError", "__version__",
]


def __getattr__(name):
    # Heavier entry points are imported lazily so `import sweeper` stays fast.
    if name in ("simulate", "simulate_batch"):
        from . import engine
        return getattr(engine, name)
    if name in ("load_network", "save_network"):
        from . import io
        return getattr(io, name)
    if name in ("Sweep", "open_sweep", "run_sweep"):
        from . import sweep
        return getattr(sweep, name)
    raise AttributeError(name)
