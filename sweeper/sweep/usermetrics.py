"""Metrics of the user's own: ``metrics: {NAME: {function: module:function}}`` in a spec, or a
Python callable from the API.

The function gets the time axis ``t`` [time], one point's rates ``rates`` [population, time]
(trailing NaN of a shorter run cut off) and its parameters (name -> value), and returns one
value per population.  It runs on the workers with the built-ins; one that raises marks the
point failed with its reason.  Its code identity (a hash of its source) goes into the store's
provenance (``attrs["sweeper"]["user_metrics"]``).
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import SpecError
from ..store import RESERVED
from .usercode import import_builder

KEYS = ("function", "units", "long_name")


def as_reference(func: Callable) -> str:
    """``module:function`` of a callable that workers can import by name."""
    module, name = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or "." in name:
        raise SpecError(f"a metric function must be importable by name (a module-level function of a "
                        f"module on the path), got {func!r}")
    return f"{module}:{name}"


def identity(func: Callable) -> str:
    """A hash of the function's source (or of its module's file): changes when its code does."""
    try:
        text = inspect.getsource(func).encode()
    except (OSError, TypeError):
        try:
            text = Path(inspect.getfile(func)).read_bytes()
        except (OSError, TypeError):
            text = repr(func).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def normalise(spec_metrics: Any) -> Any:
    """Callables given from Python become ``{function: module:function}`` entries."""
    if not isinstance(spec_metrics, dict):
        return spec_metrics
    out = {}
    for name, defn in spec_metrics.items():
        if callable(defn):
            defn = {"function": as_reference(defn)}
        elif isinstance(defn, dict) and callable(defn.get("function")):
            defn = dict(defn, function=as_reference(defn["function"]))
        elif isinstance(defn, str):
            defn = {"function": defn}
        out[name] = defn
    return out


def parse(spec_metrics: Any, folders: list[Path], taken: set[str], P) -> dict[str, dict]:
    """The spec's ``metrics`` mapping as name -> {function, units, long_name, identity}; every
    problem added to ``P``."""
    if spec_metrics is None:
        return {}
    if not isinstance(spec_metrics, dict):
        P.add(("metrics",), "must be a mapping NAME -> {function: module:function}")
        return {}
    out = {}
    for name, defn in spec_metrics.items():
        key = ("metrics", name)
        if not isinstance(name, str) or not name.isidentifier():
            P.add(key, f"metric names must be identifiers, got {name!r}")
            continue
        if name in RESERVED or name in taken:
            P.add(key, f"{name!r} is already a name in the store (a built-in metric, variable or parameter)")
            continue
        if not isinstance(defn, dict) or "function" not in defn:
            P.add(key, "needs 'function: module:function'")
            continue
        for k in defn:
            if k not in KEYS:
                P.add(key + (k,), f"unknown key (known: {', '.join(KEYS)})")
        try:
            func = import_builder(defn["function"], folders, what="metric function")
        except SpecError as exc:
            P.add(key + ("function",), str(exc))
            continue
        out[name] = {"function": defn["function"], "units": defn.get("units"),
                     "long_name": str(defn.get("long_name") or f"{name} ({defn['function']})"),
                     "identity": identity(func)}
    return out


def functions(user: dict[str, dict], folders: list[Path]) -> dict[str, Callable]:
    return {name: import_builder(info["function"], folders, what="metric function") for name, info in user.items()}


def compute(funcs: dict[str, Callable], times: np.ndarray, rates: np.ndarray, params: dict,
            rows: np.ndarray, errors: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each user metric for the points ``rows`` of a chunk (``rates`` [point, population, time]);
    returns the values [point, population] and a mask of points whose metric raised (their
    reason is written into ``errors``)."""
    n, npop, _ = rates.shape
    out = {name: np.full((n, npop), np.nan) for name in funcs}
    failed = np.zeros(n, dtype=bool)
    for j in rows:
        finite = np.isfinite(rates[j]).all(axis=0)
        length = len(finite) if finite.all() else int(np.argmin(finite))
        point = {k: (v[j].item() if isinstance(v[j], np.generic) else v[j]) for k, v in params.items()}
        for name, func in funcs.items():
            try:
                value = np.asarray(func(times[:length], rates[j, :, :length], point), dtype=float).reshape(-1)
                if value.shape != (npop,):
                    raise ValueError(f"returned {value.size} value(s), the store has {npop} population(s)")
            except Exception as exc:  # the user's code: its reason goes into the store
                errors[j] = f"metric {name} failed: {type(exc).__name__}: {exc}"
                failed[j] = True
                break
            out[name][j] = value
    return out, failed
