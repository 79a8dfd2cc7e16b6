"""bmtk PopNet (DiPDE) simulation directories -> sweeper Network, and bmtk's rates file.

Follows ``shared/spec/sonata-popnet-formats.md``: config.json with manifest variables and
network/simulation children; SONATA nodes/edges grouped into populations the way PopNet
does it (``group_by`` property, first node's dynamics_params, first edge row per population
pair, keys global across internal node files, external keys per node population); csv
``pop_rates`` and ``spikes`` inputs; output ``<key> <t> <rate>`` lines.

Population names in the Network: an internal population is named by its first node's
``pop_name`` when no other population would get the same name, else by ``str(key)``
(then ``<node population>_<key>``); an external one is ``<node population>_<pop_name>``,
else ``<node population>_<key>``. :attr:`PopNetConfig.population_keys` maps each
recorded name to the key that bmtk prints in the rates file.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import ModelError
from ..model import (Connection, Dist, ExternalPopulation, InternalPopulation, Network, Rate,
                     Simulation, _validate_internal, parse_rate)
from .sonata import MISSING, EdgePopulation, NodePopulation, read_edges, read_nodes

#: Every keyword dipde's InternalPopulation accepts from a dynamics_params file.
DIPDE_KEYS = ("tau_m", "v_min", "v_max", "dv", "update_method", "approx_order", "tol", "norm",
              "record", "initial_firing_rate", "p0", "metadata", "class", "module")


@dataclass
class PopNetConfig:
    """A PopNet simulation directory read into sweeper's model."""

    path: Path
    network: Network
    rates_file: Path | None                 # where bmtk would write the rates (None: not configured)
    population_keys: dict[str, Any]         # recorded population name -> key printed in the rates file
    output_dir: Path | None
    group_by: str
    config: dict = field(repr=False)        # the merged, variable-resolved configuration
    unused_virtual_populations: tuple[str, ...] = ()  # virtual node populations no input names (dropped)


# =========================================================================== config files
_VARIABLE = re.compile(r"\$\{?\w+\}?")


def load_config(path: str | Path) -> tuple[dict, dict[str, str]]:
    """Read a SONATA config, resolve its manifest and merge its network/simulation children.

    Returns the merged dict and, for messages, the file each top-level key came from.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"config file not found: {path}", str(path))
    try:
        conf = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not valid JSON: {exc}", str(path)) from None
    if not isinstance(conf, dict):
        raise ModelError("a config file must hold a JSON object", str(path))
    abs_path = os.path.abspath(path)
    variables = _manifest(conf.get("manifest", {}), abs_path)
    conf = {k: (v if k == "manifest" else _substitute(v, variables)) for k, v in conf.items()}
    origins = {k: str(path) for k in conf}
    for child in ("network", "simulation"):
        ref = conf.get(child)
        if isinstance(ref, str):
            child_path = Path(ref if ref.startswith("/") else os.path.join(os.path.dirname(abs_path), ref))
            if not child_path.is_file():
                raise ModelError(f"file not found: {child_path}", f"{path}: {child}")
            child_conf, child_origins = load_config(child_path)
            conf.update(child_conf)
            origins.update(child_origins)
    return conf, origins


def _manifest(manifest: Any, config_path: str) -> dict[str, Any]:
    """Built-in variables plus the manifest, with references between entries resolved."""
    if not isinstance(manifest, dict):
        raise ModelError(f"'manifest' must be an object, got {manifest!r}", config_path)
    now = datetime.datetime.now()
    resolved: dict[str, Any] = {
        "workingdir": os.getcwd(), "configdir": os.path.dirname(config_path), "configfname": config_path,
        "time": now.strftime("%H-%M-%S"), "date": now.strftime("%Y-%m-%d"),
        "datetime": now.strftime("%Y-%m-%d_%H-%M-%S"),
    }
    pending = {(k[1:] if k.startswith("$") else k): v for k, v in manifest.items()}
    while pending:
        progress = False
        for key in list(pending):
            value = _substitute(pending[key], resolved)
            if not (isinstance(value, str) and "$" in value):
                resolved[key] = value
                del pending[key]
                progress = True
        if not progress:
            raise ModelError(f"cannot resolve manifest variables {sorted(pending)} (unknown or cyclic references)",
                             f"{config_path}: manifest")
    return resolved


def _substitute(obj: Any, variables: dict[str, Any]) -> Any:
    """Replace ``$VAR`` / ``${VAR}`` in every string; a string that is exactly one
    variable with a non-string value becomes that value. Unknown variables stay."""
    if isinstance(obj, dict):
        return {k: _substitute(v, variables) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, variables) for v in obj]
    if not isinstance(obj, str):
        return obj
    result = obj
    for match in _VARIABLE.finditer(obj):
        token = match.group()
        name = token[2:-1] if token.startswith("${") and token.endswith("}") else token[1:]
        if name not in variables:
            continue
        value = variables[name]
        if isinstance(value, str) or len(obj) > len(token):
            result = result.replace(token, str(value))
        else:
            return value
    return result


# =========================================================================== reading a config
def read_popnet_config(path: str | Path, group_by: str | None = "node_type_id") -> PopNetConfig:
    """Read a PopNet config.json (and everything it points at) into a :class:`PopNetConfig`."""
    path = Path(path)
    conf, origins = load_config(path)

    def where(key: str) -> str:
        return f"{origins.get(key.split('.')[0].split('[')[0], str(path))}: {key}"

    target = conf.get("target_simulator")
    if target is not None and str(target).lower() != "dipde":
        raise ModelError(f"target_simulator is {target!r}; sweeper runs PopNet's DiPDE configs only",
                         where("target_simulator"))
    simulation = _simulation(conf.get("run"), where)
    components = conf.get("components") or {}
    if not isinstance(components, dict):
        raise ModelError(f"'components' must be an object, got {components!r}", where("components"))
    networks = conf.get("networks") or {}
    if not isinstance(networks, dict) or not networks.get("nodes") or not isinstance(networks["nodes"], list):
        raise ModelError("no node files: networks.nodes is missing or empty", where("networks.nodes"))
    if not isinstance(networks.get("edges") or [], list):
        raise ModelError(f"networks.edges must be a list, got {networks['edges']!r}", where("networks.edges"))

    node_pops: list[NodePopulation] = []
    for i, entry in enumerate(networks["nodes"]):
        key = f"networks.nodes[{i}]"
        nodes_file = _config_path(entry, "nodes_file", key, where)
        types_file = _config_path(entry, "node_types_file", key, where)
        node_pops.extend(read_nodes(nodes_file, types_file, where(f"{key}.nodes_file"),
                                    where(f"{key}.node_types_file")))
    edge_pops: list[EdgePopulation] = []
    for i, entry in enumerate(networks.get("edges") or []):
        key = f"networks.edges[{i}]"
        if isinstance(entry, dict) and entry.get("enabled", True) is False:
            continue
        edges_file = _config_path(entry, "edges_file", key, where)
        types_file = _config_path(entry, "edge_types_file", key, where)
        edge_pops.extend(read_edges(edges_file, types_file, where(f"{key}.edges_file"),
                                    where(f"{key}.edge_types_file")))
    _check_edge_models(edge_pops, components, where)

    params_cache: dict[str, dict] = {}

    def internal_params(first: dict, pop: NodePopulation) -> tuple[dict, str]:
        value = first.get("dynamics_params")
        if isinstance(value, dict):
            return value, f"{pop.types_source} (node_type_id {first['node_type_id']})"
        if not isinstance(value, str):
            raise ModelError(f"node type {first.get('node_type_id')} of population {pop.name!r} is a "
                             f"population model but its dynamics_params is {value!r}", pop.types_source)
        models_dir = components.get("population_models_dir")
        if not isinstance(models_dir, str):
            raise ModelError(f"{pop.types_source} names dynamics_params {value!r} but "
                             "components.population_models_dir is not set", where("components"))
        file = Path(models_dir) / value
        if str(file) not in params_cache:
            params_cache[str(file)] = _read_json(file, where("components.population_models_dir"))
        return params_cache[str(file)], str(file)

    externals = _config_inputs(conf, node_pops, group_by, where)
    net, keys, unused = popnet_network(node_pops, edge_pops, simulation=simulation, group_by=group_by,
                                       internal_params=internal_params, externals=externals,
                                       name=path.parent.name or "popnet")
    output = conf.get("output") or {}
    if not isinstance(output, dict):
        raise ModelError(f"'output' must be an object, got {output!r}", where("output"))
    output_dir = output.get("output_dir", ".")
    output_dir = Path(output_dir) if isinstance(output_dir, str) else None
    rates_file = output.get("rates_file")
    if rates_file is not None:
        if not isinstance(rates_file, str) or not rates_file:
            raise ModelError(f"rates_file must be a file name, got {rates_file!r}", where("output.rates_file"))
        rates_file = Path(rates_file)
        if not rates_file.is_absolute():
            rates_file = (output_dir or Path(".")) / rates_file
    return PopNetConfig(path=path, network=net, rates_file=rates_file, population_keys=keys,
                        output_dir=output_dir, group_by=group_by or "node_id", config=conf,
                        unused_virtual_populations=unused)


def _simulation(run: Any, where: Callable[[str], str]) -> Simulation:
    """PopNet's time grid: t0 = 0, tf = run.tstop / 1000 (tstop is in ms), dt = run.dt (seconds)."""
    if not isinstance(run, dict):
        raise ModelError("the config has no 'run' section (needs run.tstop in ms and run.dt in s)", where("run"))
    for key, unit in (("tstop", "ms"), ("dt", "s")):
        value = run.get(key)
        if value is None:
            raise ModelError(f"run.{key} ({unit}) is required", where(f"run.{key}"))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ModelError(f"run.{key} must be a number > 0 ({unit}), got {value!r}", where(f"run.{key}"))
    tf = float(run["tstop"]) / 1000.0
    dt = float(run["dt"])
    if tf / dt > 1e8:
        raise ModelError(f"tstop {run['tstop']!r} ms with dt {dt!r} s is {tf / dt:.3g} steps, too many",
                         where("run.dt"))
    return Simulation(t0=0.0, tf=tf, dt=dt)


def _config_path(entry: Any, key: str, parent: str, where: Callable[[str], str]) -> Path:
    if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
        raise ModelError(f"{parent}.{key} must be a file path, got "
                         f"{entry.get(key) if isinstance(entry, dict) else entry!r}", where(f"{parent}.{key}"))
    file = Path(entry[key])
    if not file.is_file():
        raise ModelError(f"file not found: {file}", where(f"{parent}.{key}"))
    return file


def _read_json(file: Path, where: str) -> dict:
    if not file.is_file():
        raise ModelError(f"dynamics_params file not found: {file}", where)
    try:
        value = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not valid JSON: {exc}", str(file)) from None
    if not isinstance(value, dict):
        raise ModelError("a dynamics_params file must hold a JSON object", str(file))
    return value


def _check_edge_models(edge_pops: list[EdgePopulation], components: dict, where) -> None:
    """PopNet refuses to run when an edge type's dynamics_params file is missing (it never reads it)."""
    for pop in edge_pops:
        for type_id, props in pop.types.items():
            name = props.get("dynamics_params")
            if not isinstance(name, str):
                continue
            models_dir = components.get("synaptic_models_dir")
            if not isinstance(models_dir, str):
                raise ModelError(f"{pop.types_source} names dynamics_params {name!r} but "
                                 "components.synaptic_models_dir is not set", where("components"))
            if not (Path(models_dir) / name).is_file():
                raise ModelError(f"edge dynamics_params file not found: {Path(models_dir) / name} "
                                 f"(edge_type_id {type_id} of {pop.types_source})",
                                 where("components.synaptic_models_dir"))


# =========================================================================== inputs
def _config_inputs(conf: dict, node_pops: list[NodePopulation], group_by: str | None, where):
    """(node population, rate-for-group) pairs in the order of the config's inputs."""
    inputs = conf.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ModelError(f"'inputs' must be an object, got {inputs!r}", where("inputs"))
    externals = []
    for name, spec in inputs.items():
        key = f"inputs.{name}"
        if not isinstance(spec, dict):
            raise ModelError(f"an input must be an object, got {spec!r}", where(key))
        if spec.get("enabled", True) is False:
            continue
        for pop_name in _node_set_populations(spec.get("node_set"), conf, node_pops, where(f"{key}.node_set")):
            if spec.get("input_type") == "spikes":
                file = spec.get("input_file")
                if not isinstance(file, str) or not Path(file).is_file():
                    raise ModelError(f"spikes file not found: {file!r}", where(f"{key}.input_file"))
                spikes = _read_spikes(Path(file), str(spec.get("module", "")), where(f"{key}.input_file"))
                externals.append((pop_name, _spike_rate(spikes, pop_name, file, where(f"{key}.input_file"))))
            else:
                file = spec.get("rates")
                if not isinstance(file, str) or not Path(file).is_file():
                    raise ModelError(f"rates file not found: {file!r}", where(f"{key}.rates"))
                table = read_pop_rates(Path(file), where(f"{key}.rates"))
                externals.append((pop_name, _table_rate(table, pop_name, group_by, file, where(f"{key}.rates"))))
    return externals


def _node_set_populations(node_set: Any, conf: dict, node_pops: list[NodePopulation], where: str) -> list[str]:
    """The SONATA node populations a node_set names (PopNet uses whole populations)."""
    names = [p.name for p in node_pops]
    if isinstance(node_set, str) and node_set in names:
        return [node_set]
    if isinstance(node_set, str):
        sets = conf.get("node_sets")
        if sets is None and isinstance(conf.get("node_sets_file"), str):
            sets_file = Path(conf["node_sets_file"])
            if sets_file.is_file():
                sets = json.loads(sets_file.read_text())
        if not isinstance(sets, dict) or node_set not in sets:
            raise ModelError(f"node_set {node_set!r} is neither a node population ({names}) nor a named node set",
                             where)
        node_set = sets[node_set]
    if isinstance(node_set, dict):
        wanted = node_set.get("population", node_set.get("populations", names))
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        for w in wanted:
            if w not in names:
                raise ModelError(f"node population {w!r} does not exist (known: {names})", where)
        return wanted
    raise ModelError(f"node_set must be a node population name or an object, got {node_set!r}", where)


def read_pop_rates(path: Path, where: str) -> dict[Any, Any]:
    """A ``gid firing_rate`` table (space separated, header required) -> {key: rate}."""
    import pandas as pd

    try:
        df = pd.read_csv(path, sep=" ")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path} as a space-separated 'gid firing_rate' table: {exc}", where) from None
    missing = [c for c in ("gid", "firing_rate") if c not in df.columns]
    if missing:
        raise ModelError(f"{path} needs columns 'gid' and 'firing_rate' (space separated); "
                         f"found {list(df.columns)}", where)
    table = {}
    for gid, rate in zip(df["gid"].tolist(), df["firing_rate"].tolist()):
        table[_int_key(gid)] = rate
    return table


def _table_rate(table: dict, pop_name: str, group_by: str | None, file: str, where: str):
    def rate(key: Any, first: dict) -> Rate:
        if _int_key(key) not in table:
            raise ModelError(f"no rate for external population {pop_name!r} with {group_by or 'node_id'} "
                             f"{key!r} in {file} (gids there: {sorted(map(str, table))})", where)
        return _rate_value(table[_int_key(key)], f"{where} (gid {key})")
    return rate


def _rate_value(value: Any, where: str) -> Rate:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    return parse_rate(value, where)


def _int_key(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return v
    return v


def _read_spikes(path: Path, module: str, where: str) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
    """Spike trains (SONATA .h5 or bmtk csv) -> {population or None: (node_ids, times in ms)}."""
    module = module.lower()
    if module in ("nwb",) or path.suffix == ".nwb":
        raise ModelError("NWB spike inputs are not supported; convert them to SONATA spikes (.h5) or csv", where)
    if module == "csv" or path.suffix in (".csv", ".txt"):
        import pandas as pd

        df = pd.read_csv(path, sep=" ")
        if "timestamps" not in df.columns or "node_ids" not in df.columns:
            raise ModelError(f"{path} needs columns 'timestamps' and 'node_ids' (and optionally 'population')", where)
        if "population" in df.columns:
            return {str(p): (g["node_ids"].to_numpy(np.int64), g["timestamps"].to_numpy(float))
                    for p, g in df.groupby("population", sort=False)}
        return {None: (df["node_ids"].to_numpy(np.int64), df["timestamps"].to_numpy(float))}
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            root = h5.get("spikes")
            if root is None:
                raise ModelError(f"{path} has no /spikes group", where)
            if "timestamps" in root:  # old single-population layout
                return {None: (root["node_ids"][()].astype(np.int64), root["timestamps"][()].astype(float))}
            return {name: (g["node_ids"][()].astype(np.int64), g["timestamps"][()].astype(float))
                    for name, g in root.items()}
    except OSError as exc:
        raise ModelError(f"cannot open {path} as HDF5 spikes: {exc}", where) from None


def _spike_rate(spikes: dict, pop_name: str, file: str, where: str):
    """PopNet's constant rate from spikes: 1000 * mean count of nodes that spiked / span of their spikes."""
    if pop_name in spikes:
        node_ids, times = spikes[pop_name]
    elif len(spikes) == 1:
        node_ids, times = next(iter(spikes.values()))
    else:
        raise ModelError(f"{file} has no spikes for node population {pop_name!r} (has {sorted(map(str, spikes))})",
                         where)

    def rate(key: Any, first: dict, members: Sequence[int] = ()) -> Rate:
        mask = np.isin(node_ids, np.asarray(members, dtype=np.int64))
        if not mask.any():
            raise ModelError(f"no spikes for external population {pop_name!r} key {key!r} in {file}", where)
        counts = np.unique(node_ids[mask], return_counts=True)[1]
        span = float(times[mask].max() - times[mask].min())
        if span <= 0:
            raise ModelError(f"spikes of external population {pop_name!r} key {key!r} in {file} span 0 ms; "
                             "PopNet's rate (count / span) is undefined", where)
        return parse_rate(1000.0 * float(np.mean(counts)) / span, where)
    rate.needs_members = True
    return rate


# =========================================================================== grouping
@dataclass
class _Group:
    key: Any
    node_population: str
    first: dict
    members: list[int] = field(default_factory=list)
    name: str = ""


def popnet_network(node_pops: Sequence[NodePopulation], edge_pops: Sequence[EdgePopulation], *,
                   simulation: Simulation, group_by: str | None = "node_type_id",
                   internal_params: Callable[[dict, NodePopulation], tuple[dict, str]],
                   externals: Sequence[tuple[str, Callable]], name: str = "popnet"
                   ) -> tuple[Network, dict[str, Any], tuple[str, ...]]:
    """Group SONATA nodes/edges into a Network exactly as PopNet's DiPDE builder does.

    ``internal_params(first_node_props, node_population)`` returns (dynamics_params dict, where);
    ``externals`` lists (virtual node population, rate(key, first_node_props[, members])) in
    input order. Returns the network, {recorded name: key} and the unused virtual populations.
    """
    by_id = group_by in (None, "node_id")
    pops = {p.name: p for p in node_pops}
    if len(pops) != len(node_pops):
        dup = [p.name for p in node_pops if sum(q.name == p.name for q in node_pops) > 1][0]
        raise ModelError(f"there are several node populations named {dup!r}",
                         ", ".join(p.source for p in node_pops if p.name == dup))
    virtual: dict[str, bool] = {}
    props: dict[str, list[dict]] = {}
    for pop in node_pops:
        rows = [pop.node_props(i) for i in range(len(pop))]
        kinds = set()
        for r in rows:
            if "model_type" not in r or r["model_type"] is None:
                raise ModelError(f"node {r['node_id']} of population {pop.name!r} has no model_type "
                                 "(PopNet needs 'population' or 'virtual')", pop.types_source)
            kinds.add(r["model_type"] == "virtual")
        if len(kinds) > 1:
            raise ModelError(f"node population {pop.name!r} mixes virtual and non-virtual nodes, which "
                             "PopNet cannot build; put virtual nodes in their own population", pop.source)
        virtual[pop.name] = kinds == {True}
        props[pop.name] = rows

    def key_of(row: dict, pop: NodePopulation) -> Any:
        if by_id:
            return row["node_id"]
        if group_by not in row or row[group_by] is None:
            raise ModelError(f"node {row['node_id']} of population {pop.name!r} has no {group_by!r} "
                             "property to group by", pop.types_source)
        return row[group_by]

    # -- internal populations: keys are global across node files (node_id grouping never merges)
    internal: list[_Group] = []
    by_key: dict[Any, int] = {}
    node_group: dict[str, dict[int, int]] = {}
    for pop in node_pops:
        if virtual[pop.name]:
            continue
        mapping = node_group.setdefault(pop.name, {})
        for row in props[pop.name]:
            key = key_of(row, pop)
            gkey = (pop.name, key) if by_id else key
            if gkey not in by_key:
                by_key[gkey] = len(internal)
                internal.append(_Group(key, pop.name, row))
            internal[by_key[gkey]].members.append(row["node_id"])
            mapping[row["node_id"]] = by_key[gkey]

    # -- recurrent connections: first edge row per (source, target) population pair
    recurrent: dict[tuple[int, int], tuple[EdgePopulation, int]] = {}
    for ep in edge_pops:
        for end in (ep.source_population, ep.target_population):
            if end not in pops:
                raise ModelError(f"edge population {ep.name!r} refers to node population {end!r}, which no "
                                 f"nodes file defines (known: {sorted(pops)})", ep.source)
        if virtual[ep.target_population]:
            raise ModelError(f"edge population {ep.name!r} targets virtual node population "
                             f"{ep.target_population!r}; PopNet cannot connect onto virtual nodes", ep.source)
        if not virtual[ep.source_population]:
            _first_rows(ep, node_group[ep.source_population], node_group[ep.target_population], recurrent)

    # -- external populations: built per input, keyed per node population
    external: list[_Group] = []
    ext_conns: dict[tuple[int, int], tuple[EdgePopulation, int]] = {}
    ext_rates: list[Rate] = []
    done: set[str] = set()
    for pop_name, rate_fn in externals:
        if pop_name in done:
            continue
        if not virtual[pop_name]:
            raise ModelError(f"an input names node population {pop_name!r}, but its nodes are not virtual",
                             pops[pop_name].types_source)
        done.add(pop_name)
        pop = pops[pop_name]
        local: dict[Any, int] = {}
        mapping: dict[int, int] = {}
        for row in props[pop_name]:
            key = key_of(row, pop)
            if key not in local:
                local[key] = len(external)
                external.append(_Group(key, pop_name, row))
            external[local[key]].members.append(row["node_id"])
            mapping[row["node_id"]] = local[key]
        for idx in local.values():
            g = external[idx]
            args = (g.key, g.first, g.members) if getattr(rate_fn, "needs_members", False) else (g.key, g.first)
            ext_rates.append(rate_fn(*args))
        for ep in edge_pops:
            if ep.source_population == pop_name:
                _first_rows(ep, mapping, node_group[ep.target_population], ext_conns)

    _name_groups(internal, external)
    populations: list = []
    keys: dict[str, Any] = {}
    for g in internal:
        params, where = internal_params(g.first, pops[g.node_population])
        ipop = internal_population(g.name, params, where)
        populations.append(ipop)
        if ipop.record:
            keys[g.name] = g.key
    populations += [ExternalPopulation(g.name, r) for g, r in zip(external, ext_rates)]
    connections = [_connection(ep, row, internal[s].name, internal[t].name)
                   for (s, t), (ep, row) in recurrent.items()]
    connections += [_connection(ep, row, external[s].name, internal[t].name)
                    for (s, t), (ep, row) in ext_conns.items()]
    unused = tuple(p.name for p in node_pops if virtual[p.name] and p.name not in done)
    return Network(tuple(populations), tuple(connections), simulation, name), keys, unused


def _first_rows(ep: EdgePopulation, src_map: dict[int, int], trg_map: dict[int, int],
                table: dict[tuple[int, int], tuple[EdgePopulation, int]]) -> None:
    """Add the first row of every new (source group, target group) pair, in row order."""
    if len(ep) == 0:
        return
    src = _lookup(ep.source_ids, src_map, ep, "source")
    trg = _lookup(ep.target_ids, trg_map, ep, "target")
    pairs = src * (max(trg_map.values(), default=0) + 1) + trg
    _, first = np.unique(pairs, return_index=True)
    for row in np.sort(first):
        pair = (int(src[row]), int(trg[row]))
        if pair not in table:
            table[pair] = (ep, int(row))


def _lookup(ids: np.ndarray, mapping: dict[int, int], ep: EdgePopulation, end: str) -> np.ndarray:
    uniq, inverse = np.unique(ids, return_inverse=True)
    out = np.empty(len(uniq), dtype=np.int64)
    for i, node_id in enumerate(uniq.tolist()):
        if node_id not in mapping:
            pop = ep.source_population if end == "source" else ep.target_population
            raise ModelError(f"edge population {ep.name!r} has {end} node_id {node_id}, which node population "
                             f"{pop!r} does not have", ep.source)
        out[i] = mapping[node_id]
    return out[inverse]


def _connection(ep: EdgePopulation, row: int, source: str, target: str) -> Connection:
    values = {}
    for key in ("syn_weight", "delay", "nsyns"):
        v = ep.value(key, row)
        if key == "nsyns" and (v is MISSING or v is None):
            v = 1
        if v is MISSING or v is None:
            raise ModelError(f"edge type {int(ep.edge_type_ids[row])} ({source}->{target}) has no {key}",
                             ep.types_source)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ModelError(f"{key} of edge type {int(ep.edge_type_ids[row])} ({source}->{target}) must be "
                             f"a number, got {v!r}", ep.types_source)
        values[key] = float(v)
    return Connection(source, target, values["nsyns"], Dist.delta(values["syn_weight"]), Dist.delta(values["delay"]))


def _name_groups(internal: list[_Group], external: list[_Group]) -> None:
    """Give every group a unique name (see the module docstring for the rule)."""
    def pop_name(g: _Group):
        v = g.first.get("pop_name")
        return str(v) if v is not None and str(v) != "" else None

    choices = []
    for g in internal:
        c = [pop_name(g)] if pop_name(g) else []
        choices.append(c + [str(g.key), f"{g.node_population}_{g.key}"])
    for g in external:
        c = [f"{g.node_population}_{pop_name(g)}"] if pop_name(g) else []
        choices.append(c + [f"{g.node_population}_{g.key}"])
    level = [0] * len(choices)
    while True:
        names = [c[i] for c, i in zip(choices, level)]
        clash = {n for n in names if names.count(n) > 1}
        moved = False
        for k, n in enumerate(names):
            if n in clash and level[k] + 1 < len(choices[k]):
                level[k] += 1
                moved = True
        if not clash or not moved:
            break
    seen: dict[str, int] = {}
    for g, n in zip(internal + external, names):
        seen[n] = seen.get(n, 0) + 1
        g.name = n if names.count(n) == 1 else f"{n}#{seen[n]}"


# =========================================================================== dynamics params
def internal_population(name: str, params: dict, where: str) -> InternalPopulation:
    """A dipde InternalPopulation from a dynamics_params dict; any key dipde rejects is an error."""
    for key in params:
        if key not in DIPDE_KEYS:
            raise ModelError(f"unknown dynamics_params key {key!r} (value {params[key]!r}); dipde accepts only "
                             f"{', '.join(DIPDE_KEYS)}", where)
    kw: dict[str, Any] = {}
    if "tau_m" in params:
        kw["tau_m"] = Dist.parse(params["tau_m"], f"{where}: tau_m")
    if "p0" in params:
        kw["p0"] = Dist.parse(params["p0"], f"{where}: p0")
    for key in ("v_min", "v_max", "dv", "initial_firing_rate"):
        if key in params:
            kw[key] = _number(params[key], f"{where}: {key}")
    method = params.get("update_method", "approx")
    if not isinstance(method, str):
        raise ModelError(f"update_method must be a string, got {method!r}", f"{where}: update_method")
    kw["update_method"] = method
    if "approx_order" in params:
        kw["approx_order"] = params["approx_order"]
    if "tol" in params:
        kw["tol"] = (1e-5 if method == "gmres" else 1e-12) if params["tol"] is None else \
            _number(params["tol"], f"{where}: tol")
    if "norm" in params:
        norm = params["norm"]
        if isinstance(norm, str) and norm.lower().lstrip("+-") in ("inf", "infinity"):
            norm = -math.inf if norm.startswith("-") else math.inf
        kw["norm"] = _number(norm, f"{where}: norm", finite=False)
    if "record" in params:
        if not isinstance(params["record"], bool):
            raise ModelError(f"record must be true or false, got {params['record']!r}", f"{where}: record")
        kw["record"] = params["record"]
    if "metadata" in params:
        kw["metadata"] = params["metadata"]
    pop = InternalPopulation(name, **kw)
    _validate_internal(pop, f"{where}: dynamics_params")
    return pop


def _number(v: Any, where: str, finite: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (finite and not math.isfinite(v)):
        raise ModelError(f"expected a number, got {v!r}", where)
    return float(v)


# =========================================================================== builders
def network_from_builders(builders: Iterable[Any], *, components_dir: str | Path | None = None,
                          rates: dict | None = None, simulation: Simulation | dict | None = None,
                          group_by: str | None = "node_type_id", name: str = "network") -> Network:
    """A Network from NetworkBuilders (sweeper's or bmtk's), grouped with PopNet's rules.

    Internal nodes' ``dynamics_params`` may be a dict or a file name found in ``components_dir``
    (or its ``population_models`` folder). Each virtual node population becomes external
    populations whose rate is ``rates[(node_population, key)]`` or the nodes' ``firing_rate``
    property (a number, an expression in t, or a callable). Builders are taken in the given
    order; edges in each builder's order of (source, target) network pairs.
    """
    from .builder import sonata_tables

    node_pops: list[NodePopulation] = []
    edge_pops: list[EdgePopulation] = []
    for b in builders:
        n, e = sonata_tables(b)
        node_pops.append(n)
        edge_pops.extend(e)
    rates = dict(rates or {})

    def internal_params(first: dict, pop: NodePopulation) -> tuple[dict, str]:
        value = first.get("dynamics_params")
        where = f"NetworkBuilder {pop.name!r} node_type_id {first['node_type_id']}"
        if isinstance(value, dict):
            return value, f"{where} dynamics_params"
        if not isinstance(value, str):
            raise ModelError(f"a population node needs dynamics_params (a dict or a file name), got {value!r}",
                             where)
        if components_dir is None:
            raise ModelError(f"dynamics_params {value!r} is a file name; pass components_dir=", where)
        for cand in (Path(components_dir) / value, Path(components_dir) / "population_models" / value):
            if cand.is_file():
                return _read_json(cand, where), str(cand)
        raise ModelError(f"dynamics_params file {value!r} not found in {components_dir} "
                         f"or {Path(components_dir) / 'population_models'}", where)

    def rate_for(pop_name: str):
        def rate(key: Any, first: dict) -> Rate:
            where = f"NetworkBuilder {pop_name!r} external population {key!r}"
            for k in ((pop_name, key), (pop_name, str(key))):
                if k in rates:
                    return _rate_value(rates[k], where)
            if first.get("firing_rate") is not None:
                return _rate_value(first["firing_rate"], f"{where} firing_rate")
            raise ModelError(f"no rate for external population (node population {pop_name!r}, {group_by or 'node_id'} "
                             f"{key!r}): pass rates={{({pop_name!r}, {key!r}): HZ}} or give the nodes a "
                             "firing_rate property", where)
        return rate

    if simulation is None:
        simulation = Simulation()
    elif isinstance(simulation, dict):
        simulation = Simulation(**simulation)
    virtual = [p.name for p in node_pops
               if len(p) and all(p.node_props(i).get("model_type") == "virtual" for i in range(len(p)))]
    net, _, _ = popnet_network(node_pops, edge_pops, simulation=simulation, group_by=group_by,
                               internal_params=internal_params,
                               externals=[(v, rate_for(v)) for v in virtual], name=name)
    return net


# =========================================================================== output
def write_rates_file(path: str | Path, keys: Sequence[Any], t_steps: int | Sequence[int], dt: float,
                     rates: Any) -> Path:
    """Write bmtk PopNet's rates file: ``<key> <t> <rate>`` per line, no header, grouped by key.

    ``t`` is ``str(ti * dt)`` for each step index ti (float noise included, as bmtk prints
    it); rates use Python's repr. ``rates`` is [len(keys), len(t_steps)].
    """
    steps = range(t_steps) if isinstance(t_steps, (int, np.integer)) else [int(i) for i in t_steps]
    times = [str(int(i) * float(dt)) for i in steps]
    rates = np.asarray(rates, dtype=float)
    if not len(keys):
        rates = rates.reshape(0, len(times))
    if rates.shape != (len(keys), len(times)):
        raise ValueError(f"rates has shape {rates.shape}, expected ({len(keys)}, {len(times)})")
    path = Path(path)
    with open(path, "w", newline="\n") as fh:
        for key, row in zip(keys, rates):
            k = _key_text(key)
            fh.writelines(f"{k} {t} {r!r}\n" for t, r in zip(times, row.tolist()))
    return path


def _key_text(key: Any) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    return str(key)


def run_popnet_config(path: str | Path, out: str | Path | None = None,
                      group_by: str | None = "node_type_id") -> Path:
    """Simulate a PopNet config with sweeper's engine and write bmtk's rates file.

    The file goes to ``out`` if given, else to the config's ``output.rates_file`` (under
    ``output.output_dir``), creating the folder. Returns the path written.
    """
    from ..engine import simulate

    cfg = read_popnet_config(path, group_by=group_by)
    target = Path(out) if out is not None else cfg.rates_file
    if target is None:
        raise ModelError("the config has no output.rates_file; give an output path (-o)", str(path))
    net = cfg.network.validate(str(path))
    result = simulate(net)
    target.parent.mkdir(parents=True, exist_ok=True)
    rates = [result.rate(name) for name in cfg.population_keys]
    return write_rates_file(target, list(cfg.population_keys.values()), len(result.t), net.simulation.dt, rates)
