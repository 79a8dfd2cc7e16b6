"""sweeper's own single-network file: the ``popdens-case/1`` schema, as JSON or YAML.

The schema is the one of the reference cases (tests/data/reference/README.md): a
``simulation`` block, ``populations`` in engine order (internal or external) and
``connections`` in engine order. Case metadata (description, units, outputs, tags,
comparison, ...) is accepted and ignored. Errors name the file, the key and the value.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExpressionError, ModelError
from . import files
from ..model import (
    INTERNAL_FIELDS, CallableRate, Connection, ConstantRate, Dist, ExpressionRate, ExternalPopulation, Network,
    Simulation, TableRate, internal_population, name_problem, parse_rate, to_float,
)

SCHEMA = "popdens-case/1"
INTERNAL_KEYS = ("name", "type") + INTERNAL_FIELDS
EXTERNAL_KEYS = ("name", "type", "rate", "metadata")
CONNECTION_KEYS = ("source", "target", "nsyn", "weights", "delays", "delay_queue_initial", "metadata")
SIMULATION_KEYS = ("t0", "dt", "tf")
YAML_SUFFIXES = (".yaml", ".yml")


# --------------------------------------------------------------------------- reading
def read_text(path: str | os.PathLike) -> Any:
    """Parse a JSON or YAML file (by suffix) into Python objects (ModelError naming the file on
    failure); the limits and checks of :mod:`sweeper.io.files` apply, and no key may repeat."""
    path = Path(path)
    text = files.read_text(path, "a network file")
    if path.suffix.lower() in YAML_SUFFIXES:
        return files.parse_yaml(text, str(path))
    return files.parse_json(text, str(path))


# the spec reader imported this private name; use sweeper.io.files.yaml_loader
_yaml_loader = files.yaml_loader


def read_network(path: str | os.PathLike) -> Network:
    """Read a network file (JSON, or YAML by suffix) and validate it."""
    path = Path(path)
    return network_from_dict(read_text(path), where=str(path), base_dir=path.parent)


def network_from_dict(doc: Any, where: str = "network", base_dir: str | os.PathLike | None = None) -> Network:
    """Build and validate a Network from the parsed schema; table files resolve against base_dir."""
    if not isinstance(doc, dict):
        raise ModelError(f"expected an object with 'simulation', 'populations' and 'connections', "
                         f"got {type(doc).__name__}", where)
    schema = doc.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ModelError(f"unknown schema {schema!r} (expected {SCHEMA!r})", f"{where}: schema")
    base = Path(base_dir) if base_dir is not None else Path(".")

    sim_doc = doc.get("simulation", {})
    if not isinstance(sim_doc, dict):
        raise ModelError(f"expected an object, got {sim_doc!r}", f"{where}: simulation")
    _no_unknown(sim_doc, SIMULATION_KEYS, f"{where}: simulation")
    defaults = Simulation()
    sim = Simulation(**{k: to_float(sim_doc.get(k, getattr(defaults, k)), f"{where}: simulation.{k}")
                        for k in SIMULATION_KEYS})

    pops_doc = doc.get("populations")
    if not isinstance(pops_doc, list) or not pops_doc:
        raise ModelError(f"expected a non-empty list of populations, got {pops_doc!r}", f"{where}: populations")
    pops = [_population(p, i, where, base) for i, p in enumerate(pops_doc)]

    conns_doc = doc.get("connections", [])
    if not isinstance(conns_doc, list):
        raise ModelError(f"expected a list of connections, got {conns_doc!r}", f"{where}: connections")
    conns = [_connection(c, i, where) for i, c in enumerate(conns_doc)]

    name = doc.get("name")
    if name is None:
        name = Path(where).stem if base_dir is not None else "network"
    if not isinstance(name, str):
        raise ModelError(f"expected a string, got {name!r}", f"{where}: name")
    net = Network(tuple(pops), tuple(conns), sim, name)
    net.validate(where)
    return net


def _no_unknown(obj: dict, allowed, where: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise ModelError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"(allowed: {', '.join(allowed)})", where)


def _population(doc: Any, i: int, where: str, base: Path):
    if not isinstance(doc, dict):
        raise ModelError(f"expected an object, got {doc!r}", f"{where}: populations[{i}]")
    name = doc.get("name")
    pw = f"{where}: populations[{i}]"
    if not isinstance(name, str) or not name:
        raise ModelError(f"needs a non-empty string 'name', got {name!r}", f"{pw}.name")
    if name_problem(name):
        raise ModelError(name_problem(name), f"{pw}.name")
    pw = f"{where}: populations[{name!r}]"
    kind = doc.get("type", "internal")
    if kind == "external":
        _no_unknown(doc, EXTERNAL_KEYS, pw)
        if "rate" not in doc:
            raise ModelError("external population needs a 'rate'", pw)
        return ExternalPopulation(name, _rate(doc["rate"], f"{pw}.rate", base))
    if kind != "internal":
        raise ModelError(f"unknown population type {kind!r} (use 'internal' or 'external')", f"{pw}.type")
    _no_unknown(doc, INTERNAL_KEYS, pw)
    return internal_population(name, doc, pw)


def _connection(doc: Any, i: int, where: str) -> Connection:
    cw = f"{where}: connections[{i}]"
    if not isinstance(doc, dict):
        raise ModelError(f"expected an object, got {doc!r}", cw)
    _no_unknown(doc, CONNECTION_KEYS, cw)
    for key in ("source", "target"):
        if not isinstance(doc.get(key), str):
            raise ModelError(f"needs a population name, got {doc.get(key)!r}", f"{cw}.{key}")
    cw = f"{cw} ({doc['source']}->{doc['target']})"
    if "nsyn" not in doc:
        raise ModelError("needs 'nsyn' (the number of presynaptic inputs per target neuron)", cw)
    nsyn = doc["nsyn"]
    nsyn = nsyn if isinstance(nsyn, int) and not isinstance(nsyn, bool) else to_float(nsyn, f"{cw}.nsyn")
    if "weights" not in doc:
        raise ModelError("needs 'weights' (a number or {'values': [...], 'probs': [...]})", cw)
    weights = Dist.parse(doc["weights"], f"{cw}.weights")
    delays = Dist.parse(doc.get("delays", 0.0), f"{cw}.delays")
    queue = doc.get("delay_queue_initial")
    if queue is not None:
        if not isinstance(queue, list):
            raise ModelError(f"expected a list of rates, got {queue!r}", f"{cw}.delay_queue_initial")
        queue = tuple(to_float(q, f"{cw}.delay_queue_initial[{k}]") for k, q in enumerate(queue))
        for k, q in enumerate(queue):
            if q < 0:
                raise ModelError(f"rate {q!r} is negative", f"{cw}.delay_queue_initial[{k}]")
    return Connection(doc["source"], doc["target"], nsyn, weights, delays, queue)


def _rate(doc: Any, where: str, base: Path):
    try:
        if isinstance(doc, dict) and doc.get("kind") == "table" and "file" in doc:
            _no_unknown(doc, ("kind", "file"), where)
            return _table_from_file(doc["file"], where, base)
        if isinstance(doc, dict):
            allowed = {"constant": ("kind", "value"), "expression": ("kind", "expr"),
                       "table": ("kind", "t", "rate")}.get(str(doc.get("kind")))
            if allowed:
                _no_unknown(doc, allowed, where)
        rate = parse_rate(doc, where)
    except ExpressionError as exc:
        raise ModelError(exc.message, f"{where}.expr" if isinstance(doc, dict) else where) from None
    if isinstance(rate, CallableRate):
        raise ModelError(f"expected a number, an expression or a {{'kind': ...}} object, got {doc!r}", where)
    return rate


def _table_from_file(file: Any, where: str, base: Path) -> TableRate:
    if not isinstance(file, str) or not file:
        raise ModelError(f"expected a file name, got {file!r}", f"{where}.file")
    path = Path(file) if Path(file).is_absolute() else base / file
    fw = f"{where}.file ({path})"
    if not os.path.lexists(path):
        raise ModelError(f"rate table file {file!r} not found", fw)
    try:
        text = files.read_text(path, "a rate table (CSV with columns t, rate)")
    except ModelError as exc:
        raise ModelError(f"cannot read rate table {file!r}: {exc.message}", fw) from None
    header, _, body = text.partition("\n")
    try:
        data = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
    except ValueError as exc:
        raise ModelError(f"cannot read rate table {file!r}: {exc}", fw) from None
    cols = [c.strip() for c in header.strip().split(",")]
    if "t" not in cols or "rate" not in cols:
        raise ModelError(f"rate table needs a header with columns 't' and 'rate', got {header.strip()!r}", fw)
    if data.size == 0:
        raise ModelError("rate table has no rows", fw)
    if data.shape[1] != len(cols):
        raise ModelError(f"rate table rows have {data.shape[1]} columns, the header has {len(cols)}", fw)
    t = data[:, cols.index("t")].tolist()
    r = data[:, cols.index("rate")].tolist()
    rate = parse_rate({"kind": "table", "t": t, "rate": r}, fw)
    return TableRate(rate.t, rate.rate, file)


# --------------------------------------------------------------------------- writing
def network_to_dict(net: Network) -> dict:
    """The schema as plain JSON-able objects (the inverse of :func:`network_from_dict`)."""
    pops = []
    for p in net.populations:
        if isinstance(p, ExternalPopulation):
            d = {"name": p.name, "type": "external", "rate": _rate_json(p.rate, p.name)}
        else:
            d = {"name": p.name, "type": "internal", "tau_m": p.tau_m.to_json(),
                 "v_min": p.v_min, "v_max": p.v_max, "dv": p.dv, "update_method": p.update_method,
                 "approx_order": p.approx_order, "tol": p.tol, "norm": _norm_json(p.norm),
                 "p0": p.p0.to_json(), "initial_firing_rate": p.initial_firing_rate}
            if not p.record:
                d["record"] = False
            if p.metadata is not None:
                d["metadata"] = p.metadata
        pops.append(d)
    conns = []
    for c in net.connections:
        d = {"source": c.source, "target": c.target, "nsyn": c.nsyn,
             "weights": c.weights.to_json(), "delays": c.delays.to_json()}
        if c.delay_queue is not None:
            d["delay_queue_initial"] = list(c.delay_queue)
        conns.append(d)
    sim = net.simulation
    return {"schema": SCHEMA, "name": net.name,
            "simulation": {"t0": sim.t0, "dt": sim.dt, "tf": sim.tf},
            "populations": pops, "connections": conns}


def _norm_json(norm: float):
    if norm == math.inf:
        return "inf"
    if norm == -math.inf:
        return "-inf"
    return norm


def _rate_json(rate, name: str) -> dict:
    if isinstance(rate, CallableRate):
        raise ModelError("a Python callable rate cannot be written to a network file; use a constant, "
                         "an expression or a table", f"populations[{name!r}].rate")
    if isinstance(rate, (ConstantRate, ExpressionRate, TableRate)):
        return rate.to_json()
    raise ModelError(f"cannot write rate {rate!r}", f"populations[{name!r}].rate")


def write_network(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` as JSON (or YAML for .yaml/.yml); table rates from files are written beside it."""
    path = Path(path)
    doc = network_to_dict(net)
    for p in net.populations:
        if isinstance(p, ExternalPopulation) and isinstance(p.rate, TableRate) and p.rate.source:
            target = Path(p.rate.source)
            if not target.is_absolute():
                target = path.parent / target
            if not target.exists() or _table_differs(target, p.rate):
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "w", encoding="utf-8") as fh:
                    fh.write("t,rate\n")
                    fh.writelines(f"{t!r},{r!r}\n" for t, r in zip(p.rate.t, p.rate.rate))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in YAML_SUFFIXES:
        import yaml
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    else:
        text = json.dumps(doc, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def _table_differs(path: Path, rate: TableRate) -> bool:
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError):
        return True
    return data.shape != (len(rate.t), 2) or data[:, 0].tolist() != list(rate.t) or \
        data[:, 1].tolist() != list(rate.rate)
