"""Sweep specs: YAML (or the same structure from Python) -> a validated :class:`Sweep`.

Every problem found in a spec is collected and reported at once, each naming the spec
file, line and key, before anything is simulated.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path as FsPath
from typing import Any, Mapping

import numpy as np
import yaml

from ..errors import ExpressionError, ModelError, SpecError, SweeperError
from ..expr import Expression
from ..model import Network
from . import points as pts
from .paths import Path, resolve

TOP_KEYS = ("name", "description", "network", "builder", "builder_path", "builder_args", "simulation",
            "parameters", "axes", "replicates", "derived", "constraints", "output")
PARAM_KEYS = ("path", "values", "linspace", "logspace", "arange", "range", "log", "description")
OUTPUT_DEFAULTS = {"dtype": "float64", "record_every": 1, "chunk_points": 16, "metric_window": None}
SAMPLE_METHODS = ("random", "lhs", "sobol")
MAX_POINTS = 10**8


# --------------------------------------------------------------------------- YAML with line numbers
def _yaml_lines(text: str) -> dict[tuple, int]:
    """Map each key path (tuple of keys / list indices) to its 1-based line in ``text``."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node, path):
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (k.value,)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))
    if root is not None:
        walk(root, ())
    return lines


@dataclass
class _Problems:
    source: str
    lines: dict[tuple, int]
    items: list[str] = field(default_factory=list)

    def add(self, key: tuple, message: str):
        self.items.append(f"{self.where(key)}: {message}")

    def where(self, key: tuple) -> str:
        line = None
        for n in range(len(key), -1, -1):
            if key[:n] in self.lines:
                line = self.lines[key[:n]]
                break
        dotted = ".".join(str(k) for k in key) or "(top level)"
        return f"{self.source}:{line} {dotted}" if line else f"{self.source} {dotted}"


# --------------------------------------------------------------------------- the sweep
class Sweep:
    """A parameter sweep over one base network.

    Build it from a YAML file (:meth:`from_file`) or from Python with the same keys::

        Sweep(network="net.json", parameters={"w": {"path": "connections[e->i].weight",
                                                    "values": [0.001, 0.002]}})
    """

    def __init__(self, spec: Mapping | None = None, *, base_dir: str | os.PathLike = ".",
                 source: str = "<sweep>", text: str | None = None, **keys):
        if spec is not None and not isinstance(spec, Mapping):
            raise SpecError(f"a sweep spec must be a mapping of keys, got {type(spec).__name__}", source)
        spec = dict(spec or {}, **keys)
        if isinstance(spec.get("network"), Network):
            from ..io.netfile import network_to_dict
            spec["network"] = network_to_dict(spec["network"])
        self.spec = spec
        self.base_dir = FsPath(base_dir).resolve()
        self.source = source
        self.text = text if text is not None else yaml.safe_dump(_plain(spec), sort_keys=False)
        self._lines = _yaml_lines(self.text) if text is not None else {}
        self._validate()

    # -- construction
    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Sweep":
        path = FsPath(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SpecError(f"sweep spec not found: {path}") from None
        except (IsADirectoryError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read sweep spec {path}: {exc}") from None
        return cls.from_text(text, base_dir=path.resolve().parent, source=str(path))

    @classmethod
    def from_text(cls, text: str, base_dir=".", source: str = "<sweep>") -> "Sweep":
        try:
            from ..io.netfile import _yaml_loader  # safe, and 1e-3 / 2.0e6 are floats as in JSON
            spec = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise SpecError(f"not valid YAML: {getattr(exc, 'problem', exc)}", f"{source}{line}") from None
        if not isinstance(spec, dict):
            raise SpecError(f"a sweep spec must be a mapping of keys, got {type(spec).__name__}", source)
        return cls(spec, base_dir=base_dir, source=source, text=text)

    # -- validation (collects everything, raises once)
    def _validate(self):
        spec, P = self.spec, _Problems(self.source, self._lines)
        for key in spec:
            if key not in TOP_KEYS:
                P.add((key,), f"unknown key (known: {', '.join(TOP_KEYS)})")
        if ("network" in spec) == ("builder" in spec):
            P.add(("network",), "give exactly one of 'network' (a file) or 'builder' (module:function)")
            raise SpecError(P.items)

        # A file network is loaded first; a builder is called once with the first point's values
        # (after the parameters are parsed) and paths are then resolved against what it returned.
        is_builder = "builder" in spec
        self._first_args: dict = {}
        base = None if is_builder else self._try_base(P)

        params = spec.get("parameters") or {}
        if not isinstance(params, dict) or not params:
            P.add(("parameters",), "needs at least one parameter (a mapping name -> definition)")
            params = {}
        self.paths: dict[str, Path | None] = {}
        self.values: dict[str, list] = {}
        self.ranges: dict[str, tuple[float, float, bool]] = {}
        for name, defn in params.items():
            self._parse_parameter(name, defn, base, P)

        derived = spec.get("derived") or {}
        self.derived: dict[str, tuple[Expression, Path | None]] = {}
        if not isinstance(derived, dict):
            P.add(("derived",), "must be a mapping name -> {expr, path}")
            derived = {}
        known = list(self.paths)
        for name, defn in derived.items():
            key = ("derived", name)
            if name in self.paths or name in self.derived:
                P.add(key, f"duplicate parameter name {name!r}")
                continue
            text, path = (defn, None) if isinstance(defn, str) else (
                (defn.get("expr"), defn.get("path")) if isinstance(defn, dict) else (None, None))
            if not isinstance(text, str):
                P.add(key, "needs 'expr': an expression of other parameters")
                continue
            try:
                expr = Expression(text, known)
            except ExpressionError as exc:
                P.add(key + ("expr",), str(exc))
                continue
            self.derived[name] = (expr, self._resolve_path(path, base, key, P))
            known.append(name)

        self.constraints: list[Expression] = []
        cons = spec.get("constraints") or []
        if not isinstance(cons, list):
            P.add(("constraints",), "must be a list of expressions such as 'a + b > 0'")
            cons = []
        for i, text in enumerate(cons):
            try:
                self.constraints.append(Expression(str(text), known, boolean=True))
            except ExpressionError as exc:
                P.add(("constraints", i), str(exc))

        if is_builder and not P.items:
            base = self._builder_base(params, derived, P)
        self.axes = self._parse_axes(P)
        self.replicates = spec.get("replicates", 1)
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int) or self.replicates < 1:
            P.add(("replicates",), f"must be an integer >= 1, got {self.replicates!r}")
            self.replicates = 1
        self.output = self._parse_output(P)
        if not P.items and self.size > MAX_POINTS:
            P.add(("axes",), f"makes {self.size:.3g} points (before constraints); a store takes at most "
                  f"{MAX_POINTS:.0e}: split the sweep")
        if base is not None and not P.items:
            self._check_values(base, P)
        if P.items:
            raise SpecError(P.items)

    def _try_base(self, P) -> Network | None:
        try:
            return self.base_network()
        except SweeperError as exc:
            P.add(("builder",) if "builder" in self.spec else ("network",), str(exc))
        except Exception as exc:  # a builder's own bug: still one clear line
            P.add(("builder",), f"calling the builder failed: {type(exc).__name__}: {exc}")
        return None

    def _builder_base(self, params, derived, P) -> Network | None:
        """Call the builder with the first point's by-name values; resolve the paths on its result."""
        first = {n: v[0] for n, v in self.values.items()}
        first.update({n: r[0] for n, r in self.ranges.items()})
        for name, (expr, _path) in self.derived.items():
            try:
                first[name] = float(expr(**{k: first[k] for k in expr.names}))
            except Exception:
                pass
        has_path = {n for n, d in list(params.items()) + list(derived.items())
                    if isinstance(d, dict) and d.get("path") is not None}
        self._first_args = {n: _py(v) for n, v in first.items() if n not in has_path}
        base = self._try_base(P)
        if base is None:
            return None
        for name, defn in params.items():
            if isinstance(defn, dict) and defn.get("path") is not None:
                self.paths[name] = self._resolve_path(defn["path"], base, ("parameters", name), P)
        for name, defn in derived.items():
            if isinstance(defn, dict) and defn.get("path") is not None and name in self.derived:
                self.derived[name] = (self.derived[name][0],
                                      self._resolve_path(defn["path"], base, ("derived", name), P))
        return base

    def _parse_parameter(self, name, defn, base, P):
        key = ("parameters", name)
        if not isinstance(name, str) or not name.isidentifier():
            P.add(key, f"parameter names must be identifiers (letters, digits, _), got {name!r}")
            return
        if not isinstance(defn, dict):
            defn = {"values": defn} if isinstance(defn, list) else None
        if defn is None:
            P.add(key, "must be a mapping with 'path' and values (values/linspace/logspace/arange/range)")
            return
        for k in defn:
            if k not in PARAM_KEYS:
                P.add(key + (k,), f"unknown key (known: {', '.join(PARAM_KEYS)})")
        self.paths[name] = self._resolve_path(defn.get("path"), base, key, P)
        if "range" in defn:
            r = defn["range"]
            ok = isinstance(r, list) and len(r) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in r)
            if not ok or r[0] >= r[1]:
                P.add(key + ("range",), f"must be [low, high] with low < high, got {r!r}")
                return
            log = bool(defn.get("log", False))
            if log and r[0] <= 0:
                P.add(key + ("range",), f"a log range needs low > 0, got {r!r}")
                return
            self.ranges[name] = (float(r[0]), float(r[1]), log)
            return
        try:
            values = pts.values_from(defn, ".".join(key))
        except (ValueError, TypeError) as exc:
            P.add(key, str(exc).split(": ", 1)[-1])
            return
        if not values:
            P.add(key, "the axis is empty (no values)")
            return
        path = self.paths[name]
        if path is not None:
            for i, v in enumerate(values):
                problem = path.check_value(v)
                if problem:
                    P.add(key + ("values", i) if "values" in defn else key, f"{path.text} {problem}")
        self.values[name] = values

    def _resolve_path(self, text, base, key, P) -> Path | None:
        if text is None:
            if "network" in self.spec:
                P.add(key, "needs a 'path' into the network (for example populations.NAME.tau_m)")
            return None
        if base is None:
            return None
        try:
            return resolve(text, base)
        except ModelError as exc:
            P.add(key + ("path",), str(exc))
            return None

    def _parse_axes(self, P) -> list[tuple[str, Any]]:
        axes = self.spec.get("axes")
        if axes is None:  # default: grid of every valued parameter, one sample block of the ranged ones
            out = [("grid", list(self.values))] if self.values else []
            if self.ranges:
                P.add(("parameters",), f"parameters with a range ({', '.join(self.ranges)}) need an "
                      "'axes: - sample: {method, n, seed, parameters}' entry")
            return out
        if not isinstance(axes, list) or not axes:
            P.add(("axes",), "must be a non-empty list of {grid: [...]}, {zip: [...]}, {sample: {...}}")
            return []
        out, used = [], []
        for i, entry in enumerate(axes):
            key = ("axes", i)
            if not isinstance(entry, dict) or len(entry) != 1:
                P.add(key, "each entry is one of {grid: [names]}, {zip: [names]}, {sample: {...}}")
                continue
            (kind, body), = entry.items()
            if kind in ("grid", "zip"):
                if not isinstance(body, list) or not body or not all(isinstance(n, str) for n in body):
                    P.add(key + (kind,), f"needs a non-empty list of parameter names, got {body!r}")
                    continue
                for n in body:
                    if n not in self.values:
                        P.add(key + (kind,), f"{n!r} is not a parameter with values"
                              + (" (it has a range: use it in a sample entry)" if n in self.ranges else ""))
                if kind == "zip":
                    lens = {n: len(self.values[n]) for n in body if n in self.values}
                    if len(set(lens.values())) > 1:
                        P.add(key + (kind,), f"zipped parameters need equal lengths, got {lens}")
                used += body
                out.append((kind, list(body)))
            elif kind == "sample":
                if not isinstance(body, dict):
                    P.add(key + (kind,), "needs {method, n, seed, parameters}")
                    continue
                method, n, seed = body.get("method", "lhs"), body.get("n"), body.get("seed", 0)
                names = body.get("parameters") or list(self.ranges)
                if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                    P.add(key + (kind, "parameters"), f"must be a list of parameter names, got {names!r}")
                    continue
                if method not in SAMPLE_METHODS:
                    P.add(key + (kind, "method"), f"unknown method {method!r} (use {', '.join(SAMPLE_METHODS)})")
                if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    P.add(key + (kind, "n"), f"must be an integer >= 1, got {n!r}")
                elif n > pts.MAX_AXIS:
                    P.add(key + (kind, "n"), f"must be at most {pts.MAX_AXIS:.0e}, got {n!r}")
                if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                    P.add(key + (kind, "seed"), f"must be an integer >= 0, got {seed!r}")
                for name in names:
                    if name not in self.ranges:
                        P.add(key + (kind, "parameters"), f"{name!r} is not a parameter with a range")
                used += names
                out.append(("sample", {"method": method, "n": n, "seed": seed, "parameters": list(names)}))
            else:
                P.add(key, f"unknown axis kind {kind!r} (use grid, zip or sample)")
        for name in list(self.values) + list(self.ranges):
            if used.count(name) == 0:
                P.add(("parameters", name), "is not used by any entry of 'axes'")
            elif used.count(name) > 1:
                P.add(("axes",), f"parameter {name!r} is used by more than one axis entry")
        return out

    def _parse_output(self, P) -> dict:
        out = dict(OUTPUT_DEFAULTS)
        given = self.spec.get("output") or {}
        if not isinstance(given, dict):
            P.add(("output",), "must be a mapping")
            return out
        for k, v in given.items():
            if k not in OUTPUT_DEFAULTS:
                P.add(("output", k), f"unknown key (known: {', '.join(OUTPUT_DEFAULTS)})")
            out[k] = v
        if out["dtype"] not in ("float64", "float32"):
            P.add(("output", "dtype"), f"must be float64 or float32, got {out['dtype']!r}")
        for k in ("record_every", "chunk_points"):
            v = out[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                P.add(("output", k), f"must be an integer >= 1, got {v!r}")
        w = out["metric_window"]
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0):
            P.add(("output", "metric_window"), f"must be a positive number of seconds, got {w!r}")
        return out

    def _check_values(self, base: Network, P):
        """Refuse axis values that the engine would refuse, each on its own, before any compute."""
        for name, values in self.values.items():
            path = self.paths.get(name)
            if path is None:
                continue
            distinct = _distinct(values)
            for v in distinct:
                try:
                    path.apply(base, v).validate(where=f"{path.text}={v!r}")
                except SweeperError as exc:
                    P.add(("parameters", name), str(exc))
                    break
        for name, (low, high, _log) in self.ranges.items():
            path = self.paths.get(name)
            if path is None:
                continue
            for v in (low, high):
                try:
                    path.apply(base, v).validate(where=f"{path.text}={v!r}")
                except SweeperError as exc:
                    P.add(("parameters", name, "range"), str(exc))
                    break
        swept = list(self.paths.values()) + [d[1] for d in self.derived.values()]
        if any(p is not None and p.area == "simulation" and p.field in ("dt", "t0") for p in swept):
            P.add(("parameters",), "sweeping simulation.dt or simulation.t0 is not supported: all "
                  "points of a store share one time axis (sweep simulation.tf instead)")

    # -- the network
    def base_network(self) -> Network:
        """The network before any parameter is applied (cached)."""
        if "_base" not in self.__dict__:
            self.__dict__["_base"] = self._load_base()
        return self.__dict__["_base"]

    def _load_base(self) -> Network:
        from ..io import load_network
        spec = self.spec
        if "network" in spec:
            net = spec["network"]
            if isinstance(net, dict):
                from ..io.netfile import network_from_dict
                base = network_from_dict(net, f"{self.source}: network")
            elif isinstance(net, str):
                base = load_network(self.base_dir / net)
            else:
                raise SpecError(f"'network' must be a file path, got {net!r}")
        else:
            base = self._call_builder(self._first_args)
        sim = spec.get("simulation")
        if sim:
            from dataclasses import replace
            if not isinstance(sim, dict) or any(k not in ("t0", "tf", "dt") for k in sim):
                raise SpecError(f"'simulation' takes t0, tf, dt; got {sim!r}")
            base = replace(base, simulation=replace(base.simulation, **{k: float(v) for k, v in sim.items()}))
        return base

    @cached_property
    def builder(self):
        ref = self.spec.get("builder")
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise SpecError(f"builder must be 'module:function', got {ref!r}")
        module_name, func_name = ref.split(":")
        extra = self.spec.get("builder_path")
        for folder in ([self.base_dir / extra] if extra else []) + [self.base_dir]:
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SpecError(f"cannot import builder module {module_name!r}: {exc}") from None
        func = getattr(module, func_name, None)
        if not callable(func):
            raise SpecError(f"module {module_name!r} has no function {func_name!r}")
        return func

    def _call_builder(self, params: Mapping[str, Any]) -> Network:
        args = dict(self.spec.get("builder_args") or {})
        args.update(params)
        try:
            result = self.builder(**args)
        except SweeperError:
            raise
        except Exception as exc:
            raise SpecError(f"the builder {self.spec['builder']} failed for {params}: "
                            f"{type(exc).__name__}: {exc}") from exc
        if isinstance(result, Network):
            return result
        from ..io.popnet import network_from_builders
        return network_from_builders(result, simulation=None)

    def network_for(self, point: Mapping[str, Any]) -> Network:
        """The network of one point (a mapping parameter name -> value)."""
        if "builder" in self.spec:
            by_name = {k: _py(v) for k, v in point.items()
                       if (k in self.paths and self.paths[k] is None)
                       or (k in self.derived and self.derived[k][1] is None)}
            net = self._call_builder(by_name)
            if self.spec.get("simulation"):
                from dataclasses import replace
                net = replace(net, simulation=replace(net.simulation, **{
                    k: float(v) for k, v in self.spec["simulation"].items()}))
        else:
            net = self.base_network()
        for name, path in list(self.paths.items()) + [(n, d[1]) for n, d in self.derived.items()]:
            if path is not None and name in point:
                net = path.apply(net, _py(point[name]))
        return net

    # -- points
    @property
    def size(self) -> int:
        """Number of points before constraints (computed without expanding them)."""
        n = self.replicates
        for kind, body in self.axes:
            if kind == "grid":
                n *= int(np.prod([len(self.values[k]) for k in body], dtype=object))
            elif kind == "zip":
                n *= len(self.values[body[0]])
            else:
                n *= body["n"]
        return n

    @property
    def parameter_names(self) -> list[str]:
        names = [n for kind, body in self.axes for n in (body["parameters"] if kind == "sample" else body)]
        names += list(self.derived)
        if self.replicates > 1:
            names.append("replicate")
        return names

    def points(self) -> pts.Table:
        """Every point as columns (name -> array), constraints applied, derived values added."""
        tables = []
        for kind, body in self.axes:
            if kind == "grid":
                tables.append(pts.grid({n: self.values[n] for n in body}))
            elif kind == "zip":
                tables.append(pts.zipped({n: self.values[n] for n in body}, "axes"))
            else:
                tables.append(pts.sample({n: self.ranges[n] for n in body["parameters"]},
                                         body["n"], body["method"], body["seed"]))
        if self.replicates > 1:
            tables.append({"replicate": np.arange(self.replicates, dtype=float)})
        table = pts.product(tables)
        for name, (expr, _path) in self.derived.items():
            value = expr(**{k: table[k] for k in expr.names})
            table[name] = np.broadcast_to(np.asarray(value, dtype=float), (pts.length(table),)).copy()
        if self.constraints:
            keep = np.ones(pts.length(table), dtype=bool)
            for c in self.constraints:
                keep &= np.asarray(c(**{k: table[k] for k in c.names}), dtype=bool)
            table = {k: v[keep] for k, v in table.items()}
        return {n: table[n] for n in self.parameter_names}

    # -- identity
    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def signature(self) -> str:
        """Hash of everything except the axis values: equal signatures may extend one store."""
        spec = copy.deepcopy(_plain(self.spec))
        for defn in (spec.get("parameters") or {}).values():
            if isinstance(defn, dict):
                for k in ("values", "linspace", "logspace", "arange", "range"):
                    defn.pop(k, None)
        for entry in spec.get("axes") or []:
            if isinstance(entry, dict) and isinstance(entry.get("sample"), dict):
                entry["sample"].pop("n", None)
        spec.pop("description", None)
        spec.pop("name", None)
        net = self.spec.get("network")
        if isinstance(net, str):  # the network file's content, not its name, is what counts
            spec["network"] = _file_digest(self.base_dir / net)
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or FsPath(self.source).stem)


def _distinct(values: list) -> list:
    seen, out = set(), []
    for v in values:
        k = json.dumps(v, sort_keys=True, default=str)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _file_digest(path: FsPath) -> str:
    """Digest of a network file and, for a PopNet config, every file beside it that it may use."""
    h = hashlib.sha256()
    try:
        from ..io.formats import guess_format
        fmt = guess_format(path)
        files = [path] if fmt is None or fmt.name != "popnet" else sorted(
            p for p in path.parent.rglob("*") if p.is_file() and "output" not in p.relative_to(path.parent).parts)
        for p in files:
            h.update(str(p.relative_to(path.parent)).encode())
            h.update(p.read_bytes())
    except OSError:
        return "unreadable"
    return h.hexdigest()[:16]


def _py(v):
    """numpy scalars -> Python scalars (builders and validators expect plain types)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
