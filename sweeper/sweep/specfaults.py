"""Spec mistakes that used to pass silently or be misreported (issue 14), each one problem
naming its key: two parameters on one field, a parameter named ``replicate`` beside
``replicates``, axis values that are mappings or lists, derived values a field cannot take,
``simulation`` values that are not numbers (checked before any builder is called)."""

from __future__ import annotations

import math

import numpy as np

from ..model import is_number


def check_simulation(spec: dict, P) -> bool:
    """``simulation: {tf: abc}`` is the spec's mistake, not the builder's; False when one is found."""
    sim = spec.get("simulation")
    if not isinstance(sim, dict):
        return True
    ok = True
    for k, v in sim.items():
        if k in ("t0", "tf", "dt") and (not is_number(v) or not math.isfinite(float(v))):
            P.add(("simulation", k), f"must be a number of seconds, got {v!r}")
            ok = False
    return ok


def check_parameters(sweep, P) -> None:
    """Fields set twice, the reserved name ``replicate``, values that cannot be axis values."""
    owner: dict[tuple, str] = {}
    swept = [(("parameters", n), n, p) for n, p in sweep.paths.items()]
    swept += [(("derived", n), n, d[1]) for n, d in sweep.derived.items()]
    for key, name, path in swept:
        if path is None:
            continue
        field = (path.area, path.target, path.field)
        if field in owner:
            P.add(key, f"sets the same field as {owner[field]!r} ({path.text}): one field, one parameter "
                  "(the other's values would be overwritten, yet kept in the store)")
        else:
            owner[field] = name
    if sweep.replicates > 1 and "replicate" in list(sweep.paths) + list(sweep.derived):
        P.add(("parameters", "replicate"), "the name 'replicate' is the replicate index that 'replicates' "
              "adds: rename the parameter")
    for name, values in sweep.values.items():
        for i, v in enumerate(values):
            if isinstance(v, (dict, list, tuple)):
                P.add(("parameters", name, "values", i), f"an axis value must be a number or a string, got "
                      f"{v!r} (a distribution cannot be one value of an axis)")
                break


def check_derived_values(sweep, P) -> None:
    """Each derived value on a path goes through the path's own check (an approx_order of 1.5 is
    refused, not truncated to 1)."""
    named = {n: d for n, d in sweep.derived.items() if d[1] is not None}
    if not named:
        return
    table = sweep.points()
    for name, (_expr, path) in named.items():
        for v in list(dict.fromkeys(np.asarray(table[name], dtype=float).tolist()))[:200]:
            problem = path.check_value(v)
            if problem is None and path.field == "approx_order" and math.isfinite(v) and v != int(v):
                problem = f"must be an integer, got {v!r}"
            if problem:
                P.add(("derived", name), f"{path.text}={v!r}: {problem}")
                break
