"""The type of each axis's values: integers stay integers, strings strings, booleans booleans.

A parameter's values are settled once, when the spec is validated, so the builder call, the
point table, the store's coordinate array and ``open_sweep`` all see the same type:

- ``type: int | float | str | bool`` in the parameter's definition converts (or refuses) values;
- without it: all booleans -> bool; all strings -> str; numbers -> float, except int when every
  value is integral and the target is an integer field (``connections[..].nsyn``,
  ``approx_order``) or a builder argument written with integer values (``values: [0, 10, 20]``).
"""

from __future__ import annotations

import math

TYPES = ("int", "float", "str", "bool")

# path fields whose values are counts: integral values there are integers
INTEGER_FIELDS = {("connection", "nsyn"), ("population", "approx_order")}


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integral(v) -> bool:
    return _is_num(v) and math.isfinite(v) and float(v).is_integer()


def declared(values: list, kind: str) -> tuple[list, str | None]:
    """``values`` converted to the declared ``kind``; (values, problem)."""
    if kind not in TYPES:
        return values, f"type must be one of {', '.join(TYPES)}, got {kind!r}"
    if kind == "int":
        bad = [v for v in values if not _integral(v)]
        return ([int(v) for v in values], None) if not bad else (
            values, f"type int needs integral numbers, got {bad[0]!r}")
    if kind == "float":
        bad = [v for v in values if not _is_num(v)]
        return ([float(v) for v in values], None) if not bad else (
            values, f"type float needs numbers, got {bad[0]!r}")
    if kind == "bool":
        bad = [v for v in values if not isinstance(v, bool)]
        return (values, None) if not bad else (values, f"type bool needs true/false, got {bad[0]!r}")
    bad = [v for v in values if not isinstance(v, (str, int, float))]
    return ([str(v) for v in values], None) if not bad else (values, f"type str needs strings, got {bad[0]!r}")


def inferred(values: list, path) -> list:
    """``values`` as the type the axis has when none is declared (see the module docstring)."""
    if not values or not all(_is_num(v) for v in values):
        return values  # booleans, strings, mixtures: kept as written
    if path is None:  # a builder argument: integers when the user wrote integers
        whole = all(isinstance(v, int) for v in values)
    else:
        whole = (path.area, path.field) in INTEGER_FIELDS and all(_integral(v) for v in values)
    return [int(v) for v in values] if whole else [float(v) for v in values]


def settle(values: list, defn: dict, path) -> tuple[list, str | None]:
    """The axis values with their type settled: declared ``type`` or inferred."""
    if defn.get("type") is not None:
        return declared(values, defn["type"])
    return inferred(values, path), None
