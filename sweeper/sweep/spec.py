"""Sweep specs: YAML (or the same structure from Python) -> a validated :class:`Sweep`.

Every problem found in a spec is collected and reported at once, each naming the spec
file, line and key, before anything is simulated (the checks: :mod:`.validate`; the line map:
:mod:`.problems`).  A validated sweep gives its points (:meth:`Sweep.points`), the
:class:`~.recipe.Recipe` that turns a point into a network, and its identity hashes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import yaml

from ..config import get as config
from ..errors import SpecError
from ..model import Network
from . import points as pts
from .problems import Problems, yaml_lines
from . import usermetrics
from .recipe import Recipe
from .validate import SpecChecks

TOP_KEYS = ("name", "description", "network", "builder", "builder_path", "builder_args", "simulation",
            "parameters", "axes", "replicates", "derived", "constraints", "output", "metrics",
            "components_dir", "input_rates", "group_by", "warnings")


class Sweep(SpecChecks):
    """A parameter sweep over one base network.

    Build it from a YAML file (:meth:`from_file`) or from Python with the same keys::

        Sweep(network="net.json", parameters={"w": {"path": "connections[e->i].weight",
                                                    "values": [0.001, 0.002]}})
    """

    def __init__(self, spec: Mapping | None = None, *, base_dir: str | os.PathLike = ".",
                 source: str = "<sweep>", text: str | None = None, round_values: bool = True, **keys):
        if spec is not None and not isinstance(spec, Mapping):
            raise SpecError(f"a sweep spec must be a mapping of keys, got {type(spec).__name__}", source)
        spec = dict(spec or {}, **keys)
        func = spec.get("builder") if callable(spec.get("builder")) else None
        if func is not None:  # a Python callable: recorded by name, shipped to workers by Dask
            spec["builder"] = callable_ref(func)
        if isinstance(spec.get("network"), Network):
            from ..io.netfile import network_to_dict
            spec["network"] = network_to_dict(spec["network"])
        if "metrics" in spec:
            spec["metrics"] = usermetrics.normalise(spec["metrics"])
        self.spec = spec
        self.round_values = round_values
        self.base_dir = Path(base_dir).resolve()
        self.source = source
        self.text = text if text is not None else yaml.safe_dump(_plain(spec), sort_keys=False)
        self._lines = yaml_lines(self.text) if text is not None else {}
        self._first_args: dict = {}
        self._recipe = Recipe(self.base_dir, source, spec.get("network"), spec.get("builder"),
                              spec.get("builder_path"), dict(spec.get("builder_args") or {}),
                              spec.get("simulation"), components_dir=_plain(spec.get("components_dir")),
                              input_rates=_plain(spec.get("input_rates")),
                              group_by=spec.get("group_by", "node_type_id"), callable_builder=func is not None)
        if func is not None:
            self._recipe = self._recipe.with_function(func)
        self._validate()

    # -- construction
    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Sweep":
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SpecError(f"sweep spec not found: {path}") from None
        except (IsADirectoryError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read sweep spec {path}: {exc}") from None
        return cls.from_text(text, base_dir=path.resolve().parent, source=str(path))

    @classmethod
    def from_text(cls, text: str, base_dir=".", source: str = "<sweep>", round_values: bool = True) -> "Sweep":
        try:
            from ..io.netfile import _yaml_loader  # safe, and 1e-3 / 2.0e6 are floats as in JSON
            spec = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise SpecError(f"not valid YAML: {getattr(exc, 'problem', exc)}", f"{source}{line}") from None
        if not isinstance(spec, dict):
            raise SpecError(f"a sweep spec must be a mapping of keys, got {type(spec).__name__}", source)
        return cls(spec, base_dir=base_dir, source=source, text=text, round_values=round_values)

    # -- validation (collects everything, raises once)
    def _validate(self):
        spec, P = self.spec, Problems(self.source, self._lines)
        for key in spec:
            if key not in TOP_KEYS:
                P.add((key,), f"unknown key (known: {', '.join(TOP_KEYS)})")
        if ("network" in spec) == ("builder" in spec):
            P.add(("network",), "give exactly one of 'network' (a file) or 'builder' (module:function)")
            raise SpecError(P.items)

        self._check_builder_keys(P)
        # A file network is loaded first; a builder is called once with the first point's values
        # (after the parameters are parsed) and paths are then resolved against what it returned.
        is_builder = "builder" in spec
        from . import specfaults
        sim_ok = specfaults.check_simulation(spec, P)
        base = None if is_builder or not sim_ok else self._try_base(P)

        params = spec.get("parameters") or {}
        if not isinstance(params, dict) or not params:
            P.add(("parameters",), "needs at least one parameter (a mapping name -> definition)")
            params = {}
        self.paths, self.values, self.ranges, self.described = {}, {}, {}, {}
        for name, defn in params.items():
            self._parse_parameter(name, defn, base, P)
        derived = self._parse_derived(base, P)

        if is_builder and not P.items:
            base = self._builder_base(params, derived, P)
        self.axes = self._parse_axes(P)
        self.replicates = spec.get("replicates", 1)
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int) or self.replicates < 1:
            P.add(("replicates",), f"must be an integer >= 1, got {self.replicates!r}")
            self.replicates = 1
        self.output = self._parse_output(P)
        self.user_metrics = usermetrics.parse(spec.get("metrics"), self._recipe.folders,
                                              set(self.paths) | set(self.derived) | {"replicate"}, P)
        max_points = int(config("sweep.max-points"))
        if not P.items and self.size > max_points:
            P.add(("axes",), f"makes {self.size:.3g} points (before constraints); a store takes at most "
                  f"{max_points:.0e}: split the sweep")
        if base is not None and not P.items:
            self._check_values(base, P)
        if not P.items:
            specfaults.check_parameters(self, P)
        from . import plausibility
        plausibility.check_setting(spec, P)
        if base is not None and not P.items:
            specfaults.check_derived_values(self, P)
        if base is not None and not P.items:
            from .limits import check_sweep
            check_sweep(self, base, P)  # steps and memory per task, before anything runs
        if P.items:
            raise SpecError(P.items)
        if base is not None:
            self.plausibility = plausibility.report(self, base)  # warnings, not errors
        self._recipe.paths = {**self.paths, **{n: d[1] for n, d in self.derived.items()}}

    # -- the network
    @property
    def recipe(self) -> Recipe:
        """What turns a point into a network (kept in the store for the workers)."""
        return self._recipe

    def base_network(self) -> Network:
        """The network before any parameter is applied (cached)."""
        if "_base" not in self.__dict__:
            self.__dict__["_base"] = self._recipe.load_base(self._first_args)
        return self.__dict__["_base"]

    def network_for(self, point: Mapping) -> Network:
        """The network of one point (a mapping parameter name -> value)."""
        if not self._recipe.is_builder:
            self._recipe.__dict__.setdefault("_base", self.base_network())
        return self._recipe.network_for(point)

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
        names = [n for kind, body in self.axes
                 for n in (body["parameters"] if kind in ("sample", "adaptive") else body)]
        names += list(self.derived)
        if self.replicates > 1:
            names.append("replicate")
        return names

    def axis_tables(self) -> list[pts.Table]:
        """Tables to be combined by product (first slowest): one per parameter of a grid, one per
        zip and sample axis, and the replicates; an adaptive axis chooses its points while it runs
        and has none."""
        tables = []
        for kind, body in self.axes:
            if kind == "grid":  # a grid is the product of its parameters' values, last fastest
                tables += [{n: pts.as_column(list(self.values[n]))} for n in body]
            elif kind == "zip":
                tables.append(pts.zipped({n: self.values[n] for n in body}, "axes"))
            elif kind == "sample":
                tables.append(pts.sample({n: self.ranges[n] for n in body["parameters"]},
                                         body["n"], body["method"], body["seed"]))
        if self.replicates > 1:
            tables.append({"replicate": np.arange(self.replicates, dtype=np.int64)})
        return tables

    def points(self) -> pts.Table:
        """Every point as columns (name -> array), constraints applied, derived values added.

        An adaptive sweep chooses its points while it runs: :func:`.adaptive.outer_points`."""
        self._fixed_points()
        return self._finish(pts.product(self.axis_tables()))

    def point_blocks(self, rows: int = pts.BLOCK) -> Iterator[pts.Table]:
        """The rows of :meth:`points` in order, made ``rows`` at a time (constraints may keep
        fewer), so that a sweep of any size is never one table in memory."""
        self._fixed_points()
        tables = self.axis_tables()
        total = pts.product_length(tables)
        for start in range(0, total, rows):
            yield self._finish(pts.product_rows(tables, start, min(total, start + rows)))

    def _fixed_points(self) -> None:
        if self.adaptive is not None:
            raise SpecError("an adaptive sweep chooses its points while it runs; there is no fixed list "
                            "of points (`sweeper run` it, then `sweeper show` the store)", self.source)

    def _finish(self, table: pts.Table) -> pts.Table:
        """Rows of the axes' product -> points: derived values added, constraints applied."""
        for name, (expr, _path) in self.derived.items():
            value = expr(**{k: table[k] for k in expr.names})
            table[name] = np.broadcast_to(np.asarray(value, dtype=float), (pts.length(table),)).copy()
        if self.constraints:
            keep = np.ones(pts.length(table), dtype=bool)
            for c in self.constraints:
                keep &= np.asarray(c(**{k: table[k] for k in c.names}), dtype=bool)
            table = {k: v[keep] for k, v in table.items()}
        return {n: table[n] for n in self.parameter_names}

    def coordinates(self) -> dict[str, dict]:
        """Per parameter: long_name, units (given, or known from its path) and scale (log/linear),
        and whether it is an axis of the sweep or derived from the others."""
        out = {}
        for name in self.parameter_names:
            if name == "replicate":
                out[name] = {"long_name": "replicate", "units": "1", "scale": "linear", "role": "axis",
                             "axis": "replicate"}
                continue
            info = dict(self.described.get(name, {"long_name": name, "units": None, "scale": "linear"}))
            path = self.paths.get(name) if name in self.paths else self.derived[name][1]
            if info["units"] is None and path is not None:
                info["units"] = path.units
            info["role"] = "derived" if name in self.derived else "axis"
            info["axis"] = next((kind for kind, body in self.axes
                                 if name in (body["parameters"] if kind in ("sample", "adaptive") else body)), "derived")
            out[name] = info
        return out

    # -- identity
    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def _signed(self) -> dict:
        """The spec without what may change within one store (axis values, name, description)."""
        spec = copy.deepcopy(_plain(self.spec))
        for defn in (spec.get("parameters") or {}).values():
            if isinstance(defn, dict):
                for k in ("values", "linspace", "logspace", "arange", "range"):
                    defn.pop(k, None)
        for entry in spec.get("axes") or []:
            if isinstance(entry, dict) and isinstance(entry.get("sample"), dict):
                entry["sample"].pop("n", None)
            if isinstance(entry, dict) and isinstance(entry.get("adaptive"), dict):
                entry["adaptive"].pop("goal", None)  # a new goal continues the same store
        spec.pop("description", None)
        spec.pop("name", None)
        return spec

    @property
    def signature(self) -> str:
        """Hash of everything except the axis values: equal signatures may extend one store.

        The content of the network's files and of the user's code is not in it: that is the
        store's code identity (:mod:`.identity`), compared file by file on extend and resume."""
        return _digest(self._signed())

    @property
    def legacy_signature(self) -> str:
        """The signature as stores made before code identities have it (network content included)."""
        spec = self._signed()
        net = self.spec.get("network")
        if isinstance(net, str):
            spec["network"] = _file_digest(self.base_dir / net)
        return _digest(spec)

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or Path(self.source).stem)


def _digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
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


def callable_ref(func) -> str:
    """``module:qualified.name`` of a Python callable (what the store records of it)."""
    module = getattr(func, "__module__", None) or "__main__"
    return f"{module}:{getattr(func, '__qualname__', None) or getattr(func, '__name__', type(func).__name__)}"


def _plain(obj):
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
