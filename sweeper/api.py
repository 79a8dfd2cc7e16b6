"""The top-level Python API where reading meets the engine.

:mod:`sweeper.io` only reads (a model-validated Network); here a read network is also checked
by the engine (``sweeper.engine.check``), and a PopNet directory can be run end to end.
``sweeper.load_network``, ``sweeper.simulate`` and ``sweeper.run_popnet`` resolve to this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ModelError
from .model import Network


def load_network(path_or_obj: Any) -> Network:
    """A Network the engine can run, from anything :func:`sweeper.io.load_network` reads
    (network file, PopNet config or directory, dict, Network); errors name the path."""
    from .engine.check import check_network
    from .io import load_network as read

    net = read(path_or_obj)
    where = str(path_or_obj) if isinstance(path_or_obj, (str, os.PathLike)) else "network"
    return check_network(net, where=where)


def run_popnet(config: str | os.PathLike, out: str | os.PathLike | None = None,
               group_by: str | None = "node_type_id") -> Path:
    """Simulate a PopNet config (or its directory) with sweeper's engine and write bmtk's rates file.

    The file goes to ``out`` if given, else to the config's ``output.rates_file`` (under
    ``output.output_dir``), creating the folder. Returns the path written.
    """
    from .engine import simulate
    from .engine.check import check_network
    from .io.popnet import read_popnet_config, write_rates_file

    path = Path(config)
    if path.is_dir():
        path = path / "config.json"
    cfg = read_popnet_config(path, group_by=group_by)
    target = Path(out) if out is not None else cfg.rates_file
    if target is None:
        raise ModelError("the config has no output.rates_file; give an output path (-o)", str(path))
    if target.is_dir():
        what = "-o" if out is not None else "output.rates_file"
        raise ModelError(f"{target} is a directory; {what} must name a file", str(path))
    net = check_network(cfg.network, where=str(path))
    result = simulate(net)
    rates = [result.rate(name) for name in cfg.population_keys]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_rates_file(target, list(cfg.population_keys.values()), len(result.t), net.simulation.dt,
                                rates)
    except OSError as exc:
        raise ModelError(f"cannot write the rates file: {exc.strerror or exc}", str(target)) from None


def __getattr__(name: str):
    # the engine (numba) is imported only when a simulation is asked for
    if name in ("simulate", "simulate_batch"):
        from . import engine
        return getattr(engine, name)
    raise AttributeError(f"module 'sweeper.api' has no attribute {name!r}")


__all__ = ["load_network", "run_popnet", "simulate", "simulate_batch"]
