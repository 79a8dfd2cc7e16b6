"""Checks of a sweep spec: each key parsed into the values a :class:`~sweeper.sweep.Sweep` holds,
every problem collected (with its file, line and key) and raised together.

The checks are methods of :class:`SpecChecks`, which :class:`~sweeper.sweep.spec.Sweep` extends;
they fill ``paths``, ``values``, ``ranges``, ``derived``, ``constraints``, ``axes``, ``replicates``
and ``output``.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import get as config
from ..errors import ExpressionError, ModelError, SweeperError
from ..expr import Expression
from ..engine.check import check_network
from ..model import Network
from . import points as pts
from .paths import ParamPath, resolve
from .problems import Problems
from .recipe import plain
from .valuetypes import settle

PARAM_KEYS = ("path", "values", "linspace", "logspace", "arange", "range", "log", "description", "type",
              "units")


def output_defaults() -> dict:
    fixed = config("sweep.chunk-points")  # "auto": tasks sized from cost when the store is made (sizing.py)
    return {"dtype": "float64", "record_every": 1, "chunk_points": 16 if fixed in (None, "auto") else int(fixed),
            "metric_window": None}


class SpecChecks:
    """Parsing and validation of the spec's keys (mixed into Sweep)."""

    spec: dict
    paths: dict[str, ParamPath | None]
    values: dict[str, list]
    ranges: dict[str, tuple[float, float, bool]]
    derived: dict[str, tuple[Expression, ParamPath | None]]

    def _try_base(self, P: Problems) -> Network | None:
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
        self._first_args = {n: plain(v) for n, v in first.items() if n not in has_path}
        base = self._try_base(P)
        if base is None:
            return None
        for name, defn in params.items():
            if isinstance(defn, dict) and defn.get("path") is not None:
                self.paths[name] = self._resolve_path(defn["path"], base, ("parameters", name), P)
                self._settle_type(name, defn, ("parameters", name), P)
        for name, defn in derived.items():
            if isinstance(defn, dict) and defn.get("path") is not None and name in self.derived:
                self.derived[name] = (self.derived[name][0],
                                      self._resolve_path(defn["path"], base, ("derived", name), P))
        return base

    def _check_builder_keys(self, P):
        """components_dir, input_rates, group_by: how a builder's NetworkBuilders become a network."""
        spec = self.spec
        for key in ("components_dir", "input_rates", "group_by"):
            if key in spec and "builder" not in spec:
                P.add((key,), "applies to a builder that returns NetworkBuilders (this spec reads 'network')")
        folder = spec.get("components_dir")
        if folder is not None and not (isinstance(folder, str) and (self.base_dir / folder).is_dir()):
            P.add(("components_dir",), f"must be a folder (relative to the spec), got {folder!r}")
        if spec.get("input_rates") is not None and not isinstance(spec["input_rates"], dict):
            P.add(("input_rates",), "must be a mapping node population -> rate (Hz, an expression in t, "
                  "{group key: rate} or a rate table file)")
        if spec.get("group_by") is not None and not isinstance(spec["group_by"], str):
            P.add(("group_by",), f"must be a node property name (default node_type_id), got {spec['group_by']!r}")

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
        self.described[name] = {"long_name": str(defn.get("description") or defn.get("path") or name),
                                "units": defn.get("units"),
                                "scale": "log" if "logspace" in defn or ("range" in defn and defn.get("log"))
                                else "linear"}
        if "range" in defn:
            if defn.get("type") not in (None, "float"):
                P.add(key + ("type",), "a parameter with a range is sampled as float; give values for "
                      f"type {defn['type']}")
            self._parse_range(name, defn, key, P)
            return
        try:
            values = pts.values_from(defn, ".".join(key), rounded=self.round_values)
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
        if defn.get("path") is None or path is not None or defn.get("type") is not None:
            self._settle_type(name, defn, key, P)

    def _settle_type(self, name, defn, key, P):
        """The axis's values as ints, floats, strings or booleans (see :mod:`.valuetypes`)."""
        if name not in self.values:
            return
        values, problem = settle(self.values[name], defn, self.paths.get(name))
        if problem:
            P.add(key + ("type",), problem)
        self.values[name] = values

    def _parse_range(self, name, defn, key, P):
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

    def _parse_derived(self, base, P) -> dict:
        derived = self.spec.get("derived") or {}
        self.derived = {}
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
            info = defn if isinstance(defn, dict) else {}
            self.described[name] = {"long_name": str(info.get("description") or f"{name} = {text}"),
                                    "units": info.get("units"), "scale": "linear"}
            known.append(name)
        self._parse_constraints(known, P)
        return derived

    def _parse_constraints(self, known, P):
        self.constraints = []
        cons = self.spec.get("constraints") or []
        if not isinstance(cons, list):
            P.add(("constraints",), "must be a list of expressions such as 'a + b > 0'")
            cons = []
        for i, text in enumerate(cons):
            try:
                self.constraints.append(Expression(str(text), known, boolean=True))
            except ExpressionError as exc:
                P.add(("constraints", i), str(exc))

    def _resolve_path(self, text, base, key, P) -> ParamPath | None:
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
        self.adaptive = None  # the adaptive axis' settings, if the spec has one (sweep.adaptive_spec)
        if axes is None:  # default: grid of every valued parameter, one sample block of the ranged ones
            out = [("grid", list(self.values))] if self.values else []
            if self.ranges:
                P.add(("parameters",), f"parameters with a range ({', '.join(self.ranges)}) need an "
                      "'axes: - sample: {method, n, seed, parameters}' (or '- adaptive: {...}') entry")
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
                parsed = self._parse_grid_axis(kind, body, key, P)
            elif kind == "sample":
                parsed = self._parse_sample_axis(body, key, P)
            elif kind == "adaptive":
                parsed = self._parse_adaptive_axis(body, key, P)
            else:
                P.add(key, f"unknown axis kind {kind!r} (use grid, zip, sample or adaptive)")
                parsed = None
            if parsed is not None:
                used += parsed[1]["parameters"] if kind in ("sample", "adaptive") else parsed[1]
                out.append(parsed)
        for name in list(self.values) + list(self.ranges):
            if used.count(name) == 0:
                P.add(("parameters", name), "is not used by any entry of 'axes'")
            elif used.count(name) > 1:
                P.add(("axes",), f"parameter {name!r} is used by more than one axis entry")
        return out

    def _parse_grid_axis(self, kind, body, key, P):
        if not isinstance(body, list) or not body or not all(isinstance(n, str) for n in body):
            P.add(key + (kind,), f"needs a non-empty list of parameter names, got {body!r}")
            return None
        for n in body:
            if n not in self.values:
                P.add(key + (kind,), f"{n!r} is not a parameter with values"
                      + (" (it has a range: use it in a sample entry)" if n in self.ranges else ""))
        if kind == "zip":
            lens = {n: len(self.values[n]) for n in body if n in self.values}
            if len(set(lens.values())) > 1:
                P.add(key + (kind,), f"zipped parameters need equal lengths, got {lens}")
        return (kind, list(body))

    def _parse_adaptive_axis(self, body, key, P):
        from .adaptive_spec import parse_axis
        if self.adaptive is not None:
            P.add(key, "a spec takes one adaptive entry (combine other axes with it as an outer product)")
            return None
        parsed = parse_axis(self, body, key, P)
        self.adaptive = parsed[1] if parsed else None
        return parsed

    def _parse_sample_axis(self, body, key, P):
        kind = "sample"
        if not isinstance(body, dict):
            P.add(key + (kind,), "needs {method, n, seed, parameters}")
            return None
        method, n, seed = body.get("method", "lhs"), body.get("n"), body.get("seed", 0)
        names = body.get("parameters") or list(self.ranges)
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            P.add(key + (kind, "parameters"), f"must be a list of parameter names, got {names!r}")
            return None
        if not isinstance(method, str) or method not in pts.SAMPLERS:
            P.add(key + (kind, "method"), f"unknown method {method!r} (use {', '.join(pts.SAMPLERS)})")
        max_axis = pts.max_axis()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            P.add(key + (kind, "n"), f"must be an integer >= 1, got {n!r}")
        elif n > max_axis:
            P.add(key + (kind, "n"), f"must be at most {max_axis:.0e}, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            P.add(key + (kind, "seed"), f"must be an integer >= 0, got {seed!r}")
        for name in names:
            if name not in self.ranges:
                P.add(key + (kind, "parameters"), f"{name!r} is not a parameter with a range")
        return ("sample", {"method": method, "n": n, "seed": seed, "parameters": list(names)})

    def _parse_output(self, P) -> dict:
        defaults = output_defaults()
        out = dict(defaults)
        given = self.spec.get("output") or {}
        if not isinstance(given, dict):
            P.add(("output",), "must be a mapping")
            return out
        for k, v in given.items():
            if k not in defaults:
                P.add(("output", k), f"unknown key (known: {', '.join(defaults)})")
            out[k] = v
        if out["dtype"] not in ("float64", "float32"):
            P.add(("output", "dtype"), f"must be float64 or float32, got {out['dtype']!r}")
        for k in ("record_every", "chunk_points"):
            v = out[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                P.add(("output", k), f"must be an integer >= 1, got {v!r}")
        w = out["metric_window"]
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < float("inf")):
            P.add(("output", "metric_window"), f"must be a positive number of seconds, got {w!r}")
        return out

    def _check_values(self, base: Network, P):
        """Refuse axis values that the engine would refuse, each on its own, before any compute."""
        for name, values in self.values.items():
            path = self.paths.get(name)
            if path is None:
                continue
            for v in _distinct(values):
                try:
                    check_network(path.apply(base, v), where=f"{path.text}={v!r}")
                except SweeperError as exc:
                    P.add(("parameters", name), str(exc))
                    break
        for name, (low, high, _log) in self.ranges.items():
            path = self.paths.get(name)
            if path is None:
                continue
            for v in (low, high):
                try:
                    check_network(path.apply(base, v), where=f"{path.text}={v!r}")
                except SweeperError as exc:
                    P.add(("parameters", name, "range"), str(exc))
                    break
        swept = list(self.paths.values()) + [d[1] for d in self.derived.values()]
        if any(p is not None and p.area == "simulation" and p.field in ("dt", "t0") for p in swept):
            P.add(("parameters",), "sweeping simulation.dt or simulation.t0 is not supported: all "
                  "points of a store share one time axis (sweep simulation.tf instead)")


def _distinct(values: list) -> list:
    seen, out = set(), []
    for v in values:
        k = json.dumps(v, sort_keys=True, default=str)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out
