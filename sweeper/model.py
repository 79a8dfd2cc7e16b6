"""The canonical in-memory network model.

Every input format (sweeper's network files, PopNet/SONATA directories, the
NetworkBuilder, sweep points) converts into :class:`Network`; the engine sees
only this. Units are DiPDE's: seconds, volts relative to rest, Hz.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping, Union

import numpy as np

from .errors import ModelError
from .expr import Expression



# --------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Dist:
    """A discrete distribution: values sorted ascending, probabilities summing to 1."""

    values: tuple[float, ...]
    probs: tuple[float, ...]

    @classmethod
    def delta(cls, x: float) -> "Dist":
        return cls((float(x),), (1.0,))

    @classmethod
    def parse(cls, obj: Any, where: str = "distribution") -> "Dist":
        """Accept a scalar, ``{"values", "probs"}``, ``{"distribution": "delta", "weight": x}``,
        a ``(values, probs)`` pair, or an existing Dist. Bin edges (one value more than
        probs) are turned into midpoints, as DiPDE does."""
        if isinstance(obj, Dist):
            return obj
        if is_number(obj):
            return cls.delta(to_float(obj, where))
        if isinstance(obj, dict):
            if obj.get("distribution") == "delta":
                if "weight" not in obj:
                    raise ModelError("delta distribution needs a 'weight'", where)
                return cls.delta(to_float(obj["weight"], f"{where}.weight"))
            if "distribution" in obj:
                raise ModelError(f"unknown distribution {obj['distribution']!r}; give 'values' and 'probs' "
                                 "(continuous distributions must be discretised first)", where)
            if "values" not in obj or "probs" not in obj:
                raise ModelError("needs 'values' and 'probs' (or a single number)", where)
            values, probs = obj["values"], obj["probs"]
        elif isinstance(obj, (list, tuple)) and len(obj) == 2 and not is_number(obj[0]):
            values, probs = obj
        else:
            raise ModelError(f"expected a number or {{'values': [...], 'probs': [...]}}, got {obj!r}", where)
        values = _float_list(values, f"{where}.values")
        probs = _float_list(probs, f"{where}.probs")
        if len(values) == len(probs) + 1:
            values = [(a + b) / 2 for a, b in zip(values[:-1], values[1:])]
        if len(values) != len(probs) or not values:
            raise ModelError(f"'values' ({len(values)}) and 'probs' ({len(probs)}) must have the same "
                             "non-zero length", where)
        for i, p in enumerate(probs):
            if p < 0:
                raise ModelError(f"probability {p!r} is negative", f"{where}.probs[{i}]")
        total = float(np.sum(probs))
        if abs(total - 1.0) >= 1e-15:
            raise ModelError(f"probabilities sum to {total!r}, not 1", f"{where}.probs")
        order = np.argsort(values, kind="stable")
        return cls(tuple(float(values[i]) for i in order), tuple(float(probs[i]) for i in order))

    def to_json(self) -> dict:
        return {"values": list(self.values), "probs": list(self.probs)}

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self.probs))

    def scaled(self, factor: float) -> "Dist":
        """The same shape with every value multiplied (used to sweep a scalar over a distribution)."""
        return Dist(tuple(v * factor for v in self.values), self.probs) if factor >= 0 else \
            Dist.parse({"values": [v * factor for v in self.values], "probs": list(self.probs)})


def is_number(x) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def to_float(x, where: str, finite: bool = True) -> float:
    """``x`` as a float; ModelError naming ``where`` when it is not a (finite) number."""
    if not is_number(x):
        raise ModelError(f"expected a number, got {x!r}", where)
    x = float(x)
    if finite and not math.isfinite(x):
        raise ModelError(f"expected a finite number, got {x!r}", where)
    return x


def _float_list(xs, where: str) -> list[float]:
    if not isinstance(xs, (list, tuple, np.ndarray)):
        raise ModelError(f"expected a list of numbers, got {xs!r}", where)
    return [to_float(x, f"{where}[{i}]") for i, x in enumerate(xs)]


# --------------------------------------------------------------------------- external rates
@dataclass(frozen=True)
class ConstantRate:
    value: float

    def __call__(self, t):
        return self.value + 0.0 * np.asarray(t, dtype=float) if np.ndim(t) else self.value

    def to_json(self):
        return {"kind": "constant", "value": self.value}


@dataclass(frozen=True)
class ExpressionRate:
    """A rate given as a whitelisted expression in ``t`` (seconds)."""

    expr: str
    compiled: Expression = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "compiled", Expression(self.expr, ("t",)))

    def __call__(self, t):
        value = self.compiled(t=np.asarray(t, dtype=float))
        return np.broadcast_to(value, np.shape(t)).astype(float) if np.ndim(t) else float(value)

    def to_json(self):
        return {"kind": "expression", "expr": self.expr}


@dataclass(frozen=True)
class TableRate:
    """A rate given as samples (t, rate), linearly interpolated, held constant outside."""

    t: tuple[float, ...]
    rate: tuple[float, ...]
    source: str | None = None  # the CSV file it came from, for messages and round trips

    def __call__(self, t):
        value = np.interp(t, self.t, self.rate)
        return value if np.ndim(t) else float(value)

    def to_json(self):
        if self.source:
            return {"kind": "table", "file": self.source}
        return {"kind": "table", "t": list(self.t), "rate": list(self.rate)}


@dataclass(frozen=True)
class CallableRate:
    """A rate given as a Python function of t (API only; not serialisable to a file)."""

    fn: Callable[[float], float]

    def __call__(self, t):
        if np.ndim(t):
            return np.array([float(self.fn(float(x))) for x in np.ravel(t)]).reshape(np.shape(t))
        return float(self.fn(float(t)))

    def to_json(self):
        raise ModelError("a Python callable rate cannot be written to a network file")


Rate = Union[ConstantRate, ExpressionRate, TableRate, CallableRate]


def parse_rate(obj: Any, where: str = "rate") -> Rate:
    """Turn a number, an expression string, a ``{"kind": ...}`` dict or a callable into a Rate."""
    if isinstance(obj, (ConstantRate, ExpressionRate, TableRate, CallableRate)):
        return obj
    if is_number(obj):
        return ConstantRate(to_float(obj, where))
    if isinstance(obj, str):
        return ExpressionRate(obj)
    if callable(obj):
        return CallableRate(obj)
    if isinstance(obj, dict):
        kind = obj.get("kind")
        if kind == "constant":
            return ConstantRate(to_float(obj.get("value"), f"{where}.value"))
        if kind == "expression":
            expr = obj.get("expr")
            if not isinstance(expr, str):
                raise ModelError(f"expected an expression string, got {expr!r}", f"{where}.expr")
            return ExpressionRate(expr)
        if kind == "table":
            t = _float_list(obj.get("t"), f"{where}.t")
            r = _float_list(obj.get("rate"), f"{where}.rate")
            if len(t) != len(r) or not t:
                raise ModelError("'t' and 'rate' must have the same non-zero length", where)
            if any(b < a for a, b in zip(t[:-1], t[1:])):
                raise ModelError("'t' must be increasing", f"{where}.t")
            return TableRate(tuple(t), tuple(r), obj.get("file"))
        raise ModelError(f"unknown rate kind {kind!r} (use constant, expression or table)", f"{where}.kind")
    raise ModelError(f"expected a number, an expression or a {{'kind': ...}} object, got {obj!r}", where)


# --------------------------------------------------------------------------- populations
@dataclass(frozen=True)
class InternalPopulation:
    """A population whose voltage density is simulated (dipde's InternalPopulation)."""

    name: str
    tau_m: Dist = Dist.delta(0.02)
    v_min: float = -0.1
    v_max: float = 0.02
    dv: float = 0.0001
    update_method: str = "approx"
    approx_order: int | None = None
    tol: float = 1e-14
    norm: float = math.inf
    p0: Dist = Dist.delta(0.0)
    initial_firing_rate: float = 0.0
    record: bool = True
    metadata: dict | None = field(default=None, compare=False)

    kind = "internal"

    def validate(self, where: str) -> "InternalPopulation":
        """Model-level checks of this population alone (ModelError naming ``where``)."""
        _validate_internal(self, where)
        return self


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a population (None when it can): names are printed as one line
    (CSV headers, rates files), so they must be non-empty text without control characters."""
    if not isinstance(name, str) or not name:
        return f"needs a non-empty string name, got {name!r}"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return f"a population name must be one line without control characters, got {name!r}"
    return None


#: The fields of an internal population that a network file or a PopNet dynamics_params may set.
INTERNAL_FIELDS = ("tau_m", "v_min", "v_max", "dv", "update_method", "approx_order", "tol", "norm",
                   "p0", "initial_firing_rate", "record", "metadata")


def internal_population(name: str, fields: Mapping[str, Any], where: str, sep: str = ".") -> InternalPopulation:
    """An InternalPopulation from a mapping of its fields, parsed one way for every input format
    (network files' population objects, PopNet ``dynamics_params``). Keys other than
    :data:`INTERNAL_FIELDS` are ignored here (each format refuses its own unknown keys); a bad
    value raises ModelError at ``where + sep + key``."""
    def at(key: str) -> str:
        return f"{where}{sep}{key}"

    kw: dict[str, Any] = {}
    for key in ("tau_m", "p0"):
        if key in fields:
            kw[key] = Dist.parse(fields[key], at(key))
    for key in ("v_min", "v_max", "dv", "initial_firing_rate"):
        if key in fields:
            kw[key] = to_float(fields[key], at(key))
    method = fields.get("update_method", "approx")
    if not isinstance(method, str):
        raise ModelError(f"expected 'approx', 'exact' or 'gmres', got {method!r}", at("update_method"))
    kw["update_method"] = method
    if "approx_order" in fields:
        order = fields["approx_order"]
        if order is not None and (not is_number(order) or not math.isfinite(order) or order != int(order)
                                  or order < 1):
            raise ModelError(f"approx_order must be null or an integer >= 1, got {order!r}", at("approx_order"))
        kw["approx_order"] = None if order is None else int(order)
    if "tol" in fields:
        # an explicit null selects dipde's fallback tolerances (docs/method.md §2.1)
        kw["tol"] = (1e-5 if method == "gmres" else 1e-12) if fields["tol"] is None else \
            to_float(fields["tol"], at("tol"))
    if "norm" in fields:
        kw["norm"] = _norm(fields["norm"], at("norm"))
    if "record" in fields:
        if not isinstance(fields["record"], bool):
            raise ModelError(f"expected true or false, got {fields['record']!r}", at("record"))
        kw["record"] = fields["record"]
    if "metadata" in fields:
        kw["metadata"] = fields["metadata"]
    return InternalPopulation(name, **kw)


def _norm(value: Any, where: str) -> float:
    """dipde's ``norm``: a number >= 1, inf (also written 'inf', 'Infinity', null) or -inf."""
    if value is None:
        return math.inf
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "+inf", "infinity", "+infinity", "np.inf"):
            return math.inf
        if text in ("-inf", "-infinity"):
            return -math.inf
        raise ModelError(f"expected 'inf', '-inf' or a number >= 1, got {value!r}", where)
    if is_number(value) and math.isinf(value):
        return float(value)
    return to_float(value, where)


@dataclass(frozen=True)
class ExternalPopulation:
    """A population with a prescribed firing rate."""

    name: str
    rate: Rate = ConstantRate(0.0)

    kind = "external"


Population = Union[InternalPopulation, ExternalPopulation]


@dataclass(frozen=True)
class Connection:
    """Input from ``source`` to ``target`` with in-degree ``nsyn`` (may be fractional)."""

    source: str
    target: str
    nsyn: float
    weights: Dist
    delays: Dist = Dist.delta(0.0)
    delay_queue: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Simulation:
    t0: float = 0.0
    tf: float = 0.1
    dt: float = 0.0001


@dataclass(frozen=True)
class Network:
    """Populations in engine order, connections in engine order, and the time grid."""

    populations: tuple[Population, ...]
    connections: tuple[Connection, ...] = ()
    simulation: Simulation = Simulation()
    name: str = "network"

    def __post_init__(self):
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "connections", tuple(self.connections))

    # -- lookups
    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def internal(self) -> list[InternalPopulation]:
        return [p for p in self.populations if isinstance(p, InternalPopulation)]

    @property
    def external(self) -> list[ExternalPopulation]:
        return [p for p in self.populations if isinstance(p, ExternalPopulation)]

    @property
    def recorded(self) -> list[str]:
        return [p.name for p in self.internal if p.record]

    def replace_population(self, name: str, **changes) -> "Network":
        pops = tuple(evolve(p, **changes) if p.name == name else p for p in self.populations)
        return evolve(self, populations=pops)

    def replace_connection(self, index: int, **changes) -> "Network":
        conns = list(self.connections)
        conns[index] = evolve(conns[index], **changes)
        return evolve(self, connections=tuple(conns))

    def validate(self, where: str = "network") -> "Network":
        """Raise ModelError naming the first bad key; return self when the network is usable."""
        validate_network(self, where)
        return self


_FIELDS: dict[type, tuple[frozenset, bool]] = {}


def evolve(obj, **changes):
    """``dataclasses.replace`` for the frozen model classes, at a fraction of its cost (a sweep
    makes a network per point): the fields are copied, the changed ones set and ``__post_init__``
    run, without ``__init__``. A class with derived fields (``init=False``: ExpressionRate's
    compiled form) is replaced the usual way."""
    cls = type(obj)
    known = _FIELDS.get(cls)
    if known is None:
        fs = fields(cls)
        known = _FIELDS[cls] = (frozenset(f.name for f in fs), all(f.init for f in fs))
    names, plain = known
    if not plain or not names.issuperset(changes):
        return replace(obj, **changes)  # (an unknown field: replace's own TypeError)
    new = object.__new__(cls)
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    if hasattr(cls, "__post_init__"):
        new.__post_init__()
    return new


# --------------------------------------------------------------------------- validation
def validate_network(net: Network, where: str = "network") -> None:
    # grids, delay queues and update methods are the engine's to judge (sweeper.engine.check)
    sim = net.simulation
    for key in ("t0", "tf", "dt"):
        to_float(getattr(sim, key), f"{where}: simulation.{key}")
    if sim.dt <= 0:
        raise ModelError(f"dt must be > 0, got {sim.dt!r}", f"{where}: simulation.dt")
    if sim.tf <= sim.t0:
        raise ModelError(f"tf ({sim.tf!r}) must be greater than t0 ({sim.t0!r})", f"{where}: simulation.tf")
    if (sim.tf - sim.t0) / sim.dt > 1e8:
        raise ModelError(f"{(sim.tf - sim.t0) / sim.dt:.3g} steps is too many", f"{where}: simulation")

    names: dict[str, Population] = {}
    for i, pop in enumerate(net.populations):
        pw = f"{where}: populations[{pop.name!r}]"
        if not isinstance(pop.name, str) or not pop.name:
            raise ModelError(f"population {i} needs a non-empty string name", f"{where}: populations[{i}]")
        if pop.name in names:
            raise ModelError(f"duplicate population name {pop.name!r}", pw)
        names[pop.name] = pop
        if isinstance(pop, InternalPopulation):
            _validate_internal(pop, pw)
        elif isinstance(pop, ExternalPopulation):
            _validate_rate(pop.rate, sim, f"{pw}.rate")
        else:
            raise ModelError(f"not a population: {pop!r}", pw)

    for i, c in enumerate(net.connections):
        cw = f"{where}: connections[{i}] ({c.source}->{c.target})"
        if c.source not in names:
            raise ModelError(f"unknown source population {c.source!r} (known: {sorted(names)})", f"{cw}.source")
        if c.target not in names:
            raise ModelError(f"unknown target population {c.target!r} (known: {sorted(names)})", f"{cw}.target")
        if not isinstance(names[c.target], InternalPopulation):
            raise ModelError(f"target {c.target!r} is external; targets must be internal", f"{cw}.target")
        nsyn = to_float(c.nsyn, f"{cw}.nsyn")
        if nsyn < 0:
            raise ModelError(f"nsyn must be >= 0, got {nsyn!r}", f"{cw}.nsyn")
        check_dist(c.weights, f"{cw}.weights")
        check_dist(c.delays, f"{cw}.delays")
        for v in c.delays.values:
            if v < 0:
                raise ModelError(f"delay {v!r} is negative", f"{cw}.delays")


# Model objects are frozen and a sweep's points share the ones no parameter changes, so an
# object that passed its checks is remembered by identity (the entry holds it, so its id is not
# reused) and not checked again. Only objects whose sequences are tuples are remembered.
_PASSED: dict[int, Any] = {}
_PASSED_MAX = 4096


def _passed(obj: Any) -> bool:
    return _PASSED.get(id(obj)) is obj


def _remember(obj: Any) -> None:
    if len(_PASSED) >= _PASSED_MAX:
        _PASSED.clear()
    _PASSED[id(obj)] = obj


def forget_checks() -> None:
    """Forget which objects passed their checks (they are then checked again)."""
    _PASSED.clear()


def check_dist(d: Any, where: str) -> None:
    """A distribution made in Python (a builder, the API) gets the checks Dist.parse makes on files:
    values and probabilities of one non-zero length, finite, probabilities >= 0 summing to 1."""
    if _passed(d):
        return
    _check_dist(d, where)
    if type(d.values) is tuple and type(d.probs) is tuple:
        _remember(d)


def _check_dist(d: Any, where: str) -> None:
    if not isinstance(d, Dist):
        raise ModelError(f"expected a distribution (sweeper.model.Dist), got {d!r}", where)
    if len(d.values) == 0 or len(d.values) != len(d.probs):
        raise ModelError(f"'values' ({len(d.values)}) and 'probs' ({len(d.probs)}) must have the same "
                         "non-zero length", where)
    for i, v in enumerate(d.values):
        if not is_number(v) or not math.isfinite(v):
            raise ModelError(f"value {v!r} is not a finite number", f"{where}.values[{i}]")
    for i, q in enumerate(d.probs):
        if not is_number(q) or not math.isfinite(q) or q < 0:
            raise ModelError(f"probability {q!r} is not a finite number >= 0", f"{where}.probs[{i}]")
    total = math.fsum(d.probs)
    if abs(total - 1.0) >= 1e-12:
        raise ModelError(f"probabilities sum to {total!r}, not 1", f"{where}.probs")


def _validate_internal(p: InternalPopulation, where: str) -> None:
    if _passed(p):
        return
    _check_internal(p, where)
    if _passed(p.tau_m) and _passed(p.p0):  # (their sequences are tuples)
        _remember(p)


def _check_internal(p: InternalPopulation, where: str) -> None:
    check_dist(p.tau_m, f"{where}.tau_m")
    check_dist(p.p0, f"{where}.p0")
    for key in ("v_min", "v_max", "dv", "tol", "initial_firing_rate"):
        if key != "tol" or p.tol is not None:  # tol None: the method's fallback (engine.methods)
            to_float(getattr(p, key), f"{where}.{key}")
    for v in p.tau_m.values:
        if not v > 0:
            raise ModelError(f"tau_m must be > 0, got {v!r}", f"{where}.tau_m")
    if not p.dv > 0:
        raise ModelError(f"dv must be > 0, got {p.dv!r}", f"{where}.dv")
    if not p.v_min < p.v_max:
        raise ModelError(f"v_min ({p.v_min!r}) must be less than v_max ({p.v_max!r})", f"{where}.v_min")
    if p.v_min > 0:
        raise ModelError(f"v_min must be <= 0 (rest is 0 V), got {p.v_min!r}", f"{where}.v_min")
    if p.v_max <= 0:
        raise ModelError(f"v_max (threshold) must be > 0, got {p.v_max!r}", f"{where}.v_max")
    if p.approx_order is not None and (not isinstance(p.approx_order, (int, np.integer))
                                       or isinstance(p.approx_order, bool) or p.approx_order < 1):
        raise ModelError(f"approx_order must be null or an integer >= 1, got {p.approx_order!r}",
                         f"{where}.approx_order")
    if p.tol is not None and not p.tol > 0:
        raise ModelError(f"tol must be > 0, got {p.tol!r}", f"{where}.tol")
    if p.initial_firing_rate < 0:
        raise ModelError(f"initial_firing_rate must be >= 0, got {p.initial_firing_rate!r}",
                         f"{where}.initial_firing_rate")
    if not (p.norm == math.inf or p.norm == -math.inf or (is_number(p.norm) and p.norm >= 1)):
        raise ModelError(f"norm must be inf or a number >= 1, got {p.norm!r}", f"{where}.norm")


def _validate_rate(rate: Rate, sim: Simulation, where: str) -> None:
    if isinstance(rate, ConstantRate):
        if rate.value < 0 and abs(rate.value) >= 1e-14:
            raise ModelError(f"rate must be >= 0 Hz, got {rate.value!r}", where)
    elif isinstance(rate, TableRate):
        bad = [r for r in rate.rate if r < 0]
        if bad:
            raise ModelError(f"rate table has negative rate {bad[0]!r}", where)
    elif isinstance(rate, ExpressionRate):
        # Sample on the simulation's own time grid (and the times before t0 that delays read).
        t = sim.t0 + np.arange(-64, int((sim.tf - sim.t0) / sim.dt) + 2) * sim.dt
        values = np.asarray(rate(t), dtype=float)
        bad = ~np.isfinite(values) | (values <= -1e-14)
        if bad.any():
            i = int(np.argmax(bad))
            raise ModelError(f"expression {rate.expr!r} gives {values[i]!r} Hz at t={t[i]!r} "
                             "(rates must be finite and >= 0)", where)
