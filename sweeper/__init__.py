"""sweeper: parameter sweeps of population-density neural network models at cluster scale.

The public API is listed in ``__all__``. The model classes and errors are imported eagerly;
everything that needs the engine (numba), Dask or the store is imported on first use, so
``import sweeper`` stays fast.
"""

DISTRIBUTION = "popnet-sweeper"  # the name on PyPI (`sweeper` there is an unrelated package)

from .errors import ModelError, SimulationError, SpecError, StoreError, SweeperError  # noqa: E402
from .model import (  # noqa: E402
    CallableRate, Connection, ConstantRate, Dist, ExpressionRate, ExternalPopulation, InternalPopulation,
    Network, Simulation, TableRate,
)

# public name -> module it is imported from on first use
_LAZY = {
    "load_network": "sweeper.api", "run_popnet": "sweeper.api",
    "simulate": "sweeper.api", "simulate_batch": "sweeper.api",
    "save_network": "sweeper.io",
    "Sweep": "sweeper.sweep", "run_sweep": "sweeper.sweep",
    "open_sweep": "sweeper.analysis", "points_frame": "sweeper.analysis",
}

__all__ = [
    "Sweep", "run_sweep", "open_sweep", "points_frame",
    "simulate", "simulate_batch", "load_network", "save_network", "run_popnet",
    "Network", "Simulation", "InternalPopulation", "ExternalPopulation", "Connection", "Dist",
    "ConstantRate", "ExpressionRate", "TableRate", "CallableRate",
    "SweeperError", "ModelError", "SimulationError", "SpecError", "StoreError",
    "__version__",
]


def _version() -> str:
    from importlib import metadata  # on first use: importing it costs a noticeable part of start-up

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0.0.0+unknown"


def __getattr__(name):
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sweeper' has no attribute {name!r}")


def __dir__():
    # the public API, not the names this module uses internally
    return sorted(set(__all__) | {"DISTRIBUTION"})
