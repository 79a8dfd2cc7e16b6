"""How one point becomes a network: the base network (a file, an inline mapping or a builder
function), the resolved parameter paths, and the builder.

A :class:`Recipe` is made once from a validated spec and kept in the store
(``attrs["sweeper"]["recipe"]``), so a worker rebuilds it without parsing or validating the
spec again and calls the builder only for the points it simulates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import SpecError, SweeperError
from ..io.bmtk_compat import single_process
from ..model import Network
from .paths import ParamPath
from .usercode import fit_args, import_builder

def plain(v):
    """numpy scalars -> Python scalars (builders and validators expect plain types)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass
class Recipe:
    """Base network + resolved paths + builder: what turns a point into a network."""

    base_dir: Path
    source: str = "<sweep>"
    network: Any = None                    # file name (relative to base_dir) or a network mapping
    builder: str | None = None             # "module:function"
    builder_path: str | None = None
    builder_args: dict = field(default_factory=dict)
    simulation: dict | None = None         # t0 / tf / dt that replace the network's own
    paths: dict[str, ParamPath | None] = field(default_factory=dict)  # None: passed to the builder by name
    # what turns NetworkBuilders returned by a builder into a Network (spec keys of the same names)
    components_dir: str | None = None      # relative to base_dir
    input_rates: dict | None = None        # {node population: rate | {key: rate} | rate table file}
    group_by: str | None = "node_type_id"
    callable_builder: bool = False         # given as a Python callable: shipped to workers by Dask

    # -- serialised in the store
    def to_dict(self) -> dict:
        return {"base_dir": str(self.base_dir), "source": self.source, "network": self.network,
                "builder": self.builder, "builder_path": self.builder_path, "builder_args": self.builder_args,
                "simulation": self.simulation,
                "paths": {n: (p.to_dict() if p is not None else None) for n, p in self.paths.items()},
                "components_dir": self.components_dir, "input_rates": self.input_rates,
                "group_by": self.group_by, "callable_builder": self.callable_builder}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Recipe":
        return cls(Path(d["base_dir"]), d.get("source", "<sweep>"), d.get("network"), d.get("builder"),
                   d.get("builder_path"), dict(d.get("builder_args") or {}), d.get("simulation"),
                   {n: (ParamPath.from_dict(p) if p is not None else None) for n, p in d["paths"].items()},
                   d.get("components_dir"), d.get("input_rates"), d.get("group_by", "node_type_id"),
                   bool(d.get("callable_builder", False)))

    @property
    def shipped_function(self):
        """The builder function to send with each task (a Python callable), or None (imported by name)."""
        return self.__dict__.get("_builder") if self.callable_builder else None

    def with_function(self, func) -> "Recipe":
        """A copy whose builder is ``func`` (a callable shipped with the task) instead of an import."""
        copy = replace(self)
        copy.__dict__["_builder"] = func
        return copy

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    # -- the network
    @property
    def is_builder(self) -> bool:
        return self.builder is not None

    def load_base(self, builder_args: Mapping[str, Any] | None = None) -> Network:
        """The network before any path is applied (a builder is called with ``builder_args``)."""
        if not self.is_builder:
            net = self.network
            if isinstance(net, dict):
                from ..io.netfile import network_from_dict
                base = network_from_dict(net, f"{self.source}: network")
            elif isinstance(net, str):
                from ..io import load_network
                base = load_network(self.base_dir / net)
            else:
                raise SpecError(f"'network' must be a file path, got {net!r}")
        else:
            base = self.call_builder(builder_args or {})
        return self._with_simulation(base)

    def _with_simulation(self, net: Network) -> Network:
        sim = self.simulation
        if not sim:
            return net
        if not isinstance(sim, dict) or any(k not in ("t0", "tf", "dt") for k in sim):
            raise SpecError(f"'simulation' takes t0, tf, dt; got {sim!r}")
        return replace(net, simulation=replace(net.simulation, **{k: float(v) for k, v in sim.items()}))

    @property
    def folders(self) -> list[Path]:
        """Where user code (builder, metric functions) is imported from, before sys.path."""
        return ([self.base_dir / self.builder_path] if self.builder_path else []) + [self.base_dir]

    @property
    def builder_function(self):
        if "_builder" not in self.__dict__ and self.callable_builder and (
                self.builder.startswith("__main__:") or "<" in self.builder):
            raise SpecError(f"the builder {self.builder} was given as a Python callable and cannot be "
                            "imported by name: run the sweep from Python with Sweep(builder=...)")
        if "_builder" not in self.__dict__:
            self.__dict__["_builder"] = import_builder(self.builder, self.folders)
        return self.__dict__["_builder"]

    def call_builder(self, params: Mapping[str, Any]) -> Network:
        """The builder's network for ``params``; NetworkBuilders it returns (sweeper's or bmtk's)
        are converted with the recipe's components_dir, input_rates, group_by and simulation.
        bmtk runs as single-process code here, also on one rank of an MPI job."""
        from ..io.popnet import network_from_builder_result
        from . import isolate
        args = dict(self.builder_args or {})
        args.update(params)
        if isolate.isolated() and not self.callable_builder:  # own process, time limit (sweep/isolate.py)
            return isolate.call(import_builder, self.builder, self.folders, args, dict(
                components_dir=self.components_dir, rates=self.input_rates, simulation=self.simulation,
                group_by=self.group_by, base_dir=self.base_dir), dict(params))
        with single_process():
            try:
                result = self.builder_function(**fit_args(self.builder_function, args))
            except SweeperError:
                raise
            except Exception as exc:
                raise SpecError(f"the builder {self.builder} failed for {dict(params)}: "
                                f"{type(exc).__name__}: {exc}") from exc
            return network_from_builder_result(
                result, components_dir=self.components_dir, rates=self.input_rates,
                simulation=self.simulation, group_by=self.group_by, base_dir=self.base_dir)

    def base(self) -> Network:
        """The base network of a file recipe (loaded once)."""
        if "_base" not in self.__dict__:
            self.__dict__["_base"] = self.load_base()
        return self.__dict__["_base"]

    def network_for(self, point: Mapping[str, Any]) -> Network:
        """The network of one point (a mapping parameter name -> value)."""
        if self.is_builder:
            by_name = {k: plain(v) for k, v in point.items()
                       if (k in self.paths and self.paths[k] is None) or k == "replicate"}
            net = self._with_simulation(self.call_builder(by_name))
        else:
            net = self.base()
        for name, path in self.paths.items():
            if path is not None and name in point:
                net = path.apply(net, plain(point[name]))
        return net
