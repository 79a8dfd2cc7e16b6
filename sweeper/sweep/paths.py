"""Readable parameter paths into a :class:`~sweeper.model.Network`.

Grammar (population and connection names as in the network)::

    populations.NAME.FIELD            tau_m v_min v_max dv update_method approx_order tol
                                      initial_firing_rate p0 (internal); rate (external)
    inputs.NAME.rate                  the same as populations.NAME.rate for an external population
    connections[SRC->TRG].FIELD       nsyn weight(s) delay(s) weight_scale; [SRC->TRG#k] picks the
                                      k-th such connection (0-based), [i] the i-th connection
    simulation.tf | simulation.t0 | simulation.dt
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError
from ..model import (
    Dist, ExternalPopulation, InternalPopulation, Network, evolve, is_number, parse_rate,
)
from ..engine.methods import METHODS, method_names

_INTERNAL_FIELDS = {
    "tau_m": "dist", "v_min": "number", "v_max": "number", "dv": "number",
    "update_method": "method", "approx_order": "order", "tol": "number",
    "initial_firing_rate": "number", "p0": "dist",
}
_CONNECTION_FIELDS = {
    "nsyn": ("nsyn", "number"), "weight": ("weights", "dist"), "weights": ("weights", "dist"),
    "delay": ("delays", "dist"), "delays": ("delays", "dist"), "weight_scale": ("weights", "scale"),
}
_SIM_FIELDS = ("t0", "tf", "dt")
# units of what a path sets (model attribute, kind): volts for the membrane grid and synaptic
# weights, seconds for times, Hz for rates, 1 for counts and factors
_UNITS = {"tau_m": "s", "v_min": "V", "v_max": "V", "dv": "V", "tol": "1", "approx_order": "1",
          "initial_firing_rate": "Hz", "p0": "1", "rate": "Hz", "nsyn": "1", "weights": "V", "delays": "s",
          "t0": "s", "tf": "s", "dt": "s"}
_CONN_RE = re.compile(r"^connections\[\s*(?:(\d+)|(.+?)\s*->\s*(.+?)\s*(?:#\s*(\d+))?)\s*\]\.(\w+)$")


@dataclass(frozen=True)
class ParamPath:
    """A resolved path: what to change and what kind of value it takes."""

    text: str
    area: str          # "population" | "connection" | "simulation"
    target: Any        # population name, connection index or None
    field: str         # model attribute
    kind: str          # number | dist | scale | method | order | rate

    def check_value(self, value) -> str | None:
        """Return a description of what is wrong with ``value`` for this path, or None."""
        if self.kind == "method":
            ok = isinstance(value, str) and value in METHODS
            return None if ok else f"must be one of {method_names()}, got {value!r}"
        if self.kind == "order":
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
                isinstance(value, float) and value.is_integer() and value >= 1)
            return None if ok else f"must be null or an integer >= 1, got {value!r}"
        if self.kind == "rate":
            return None if is_number(value) or isinstance(value, str) else \
                f"must be a number or an expression string, got {value!r}"
        if self.kind == "dist" and isinstance(value, dict):
            return None
        if not is_number(value):
            return f"must be a number, got {value!r}"
        if not math.isfinite(float(value)):
            return f"must be finite, got {value!r}"
        return None

    @property
    def units(self) -> str | None:
        """Units of the value this path takes (None for method names)."""
        if self.kind == "scale":
            return "1"
        return _UNITS.get(self.field)

    def to_dict(self) -> dict:
        return {"text": self.text, "area": self.area, "target": self.target, "field": self.field, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> "ParamPath":
        return cls(d["text"], d["area"], d["target"], d["field"], d["kind"])

    def apply(self, net: Network, value) -> Network:
        """Return a copy of ``net`` with this path set to ``value``."""
        if self.area == "simulation":
            return evolve(net, simulation=evolve(net.simulation, **{self.field: float(value)}))
        if self.area == "population":
            if self.kind == "rate":
                return net.replace_population(self.target, rate=parse_rate(value, self.text))
            return net.replace_population(self.target, **{self.field: _convert(self.kind, value, self.text)})
        conn = net.connections[self.target]
        if self.kind == "scale":
            return net.replace_connection(self.target, weights=conn.weights.scaled(float(value)))
        return net.replace_connection(self.target, **{self.field: _convert(self.kind, value, self.text)})


def _convert(kind: str, value, where: str):
    if kind == "dist":
        return Dist.parse(value, where)
    if kind == "order":
        return None if value is None else int(value)
    if kind == "method":
        return str(value)
    return float(value)


def resolve(text: str, net: Network) -> ParamPath:
    """Parse ``text`` against ``net``; raise ModelError saying what exists when it does not match."""
    if not isinstance(text, str):
        raise ModelError(f"a path must be a string, got {text!r}")
    parts = text.split(".")
    if parts[0] == "simulation":
        if len(parts) != 2 or parts[1] not in _SIM_FIELDS:
            raise ModelError(f"unknown path {text!r}: simulation fields are {', '.join(_SIM_FIELDS)}")
        return ParamPath(text, "simulation", None, parts[1], "number")
    if parts[0] in ("populations", "inputs"):
        if len(parts) != 3:
            raise ModelError(f"unknown path {text!r}: use {parts[0]}.NAME.FIELD")
        _, name, field = parts
        names = [p.name for p in net.populations]
        if name not in names:
            raise ModelError(f"unknown path {text!r}: no population {name!r} (populations: {', '.join(names)})")
        pop = net.population(name)
        if isinstance(pop, ExternalPopulation):
            if field not in ("rate", "firing_rate"):
                raise ModelError(f"unknown path {text!r}: external population {name!r} has only 'rate'")
            return ParamPath(text, "population", name, "rate", "rate")
        if parts[0] == "inputs":
            raise ModelError(f"unknown path {text!r}: {name!r} is an internal population, not an input")
        if field not in _INTERNAL_FIELDS:
            raise ModelError(f"unknown path {text!r}: internal population fields are {', '.join(_INTERNAL_FIELDS)}")
        return ParamPath(text, "population", name, field, _INTERNAL_FIELDS[field])
    if parts[0].startswith("connections"):
        m = _CONN_RE.match(text)
        if not m:
            raise ModelError(f"unknown path {text!r}: use connections[SOURCE->TARGET].FIELD")
        index, src, trg, nth, field = m.groups()
        if field not in _CONNECTION_FIELDS:
            raise ModelError(f"unknown path {text!r}: connection fields are {', '.join(_CONNECTION_FIELDS)}")
        if index is not None:
            i = int(index)
            if i >= len(net.connections):
                raise ModelError(f"unknown path {text!r}: the network has {len(net.connections)} connections")
        else:
            matches = [i for i, c in enumerate(net.connections) if (c.source, c.target) == (src, trg)]
            if not matches:
                have = ", ".join(f"{c.source}->{c.target}" for c in net.connections)
                raise ModelError(f"unknown path {text!r}: no connection {src}->{trg} (connections: {have})")
            k = int(nth or 0)
            if k >= len(matches):
                raise ModelError(f"unknown path {text!r}: only {len(matches)} connection(s) {src}->{trg}")
            i = matches[k]
        attr, kind = _CONNECTION_FIELDS[field]
        return ParamPath(text, "connection", i, attr, kind)
    raise ModelError(f"unknown path {text!r}: paths start with populations., inputs., connections[...]. "
                     "or simulation.")


def is_internal(net: Network, name: str) -> bool:
    return isinstance(net.population(name), InternalPopulation)


def offered_paths(net: Network) -> list[tuple[str, str | None]]:
    """Every parameter path ``net`` offers, with its units: what ``sweeper expand --paths`` lists."""
    out = [(f"simulation.{f}", _UNITS.get(f)) for f in _SIM_FIELDS]
    for pop in net.populations:
        if isinstance(pop, ExternalPopulation):
            out.append((f"inputs.{pop.name}.rate", "Hz"))
        else:
            out += [(f"populations.{pop.name}.{f}", _UNITS.get(f)) for f in _INTERNAL_FIELDS]
    for i, c in enumerate(net.connections):
        out += [(f"connections[{i}].{f}", _UNITS.get(_CONNECTION_FIELDS[f][0]))
                for f in ("nsyn", "weights", "weight_scale", "delays")]
        out[-2] = (out[-2][0], "1")  # a scale factor
    return out
