"""Reading a PopNet simulation directory (config.json and everything it names) into sweeper's
model (docs/formats.md (b))."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...errors import ModelError
from ...model import Network, Simulation
from ..files import check_regular_file
from ..sonata import EdgePopulation, NodePopulation, read_edges, read_nodes
from .dynamics import read_dynamics_params
from .grouping import popnet_network
from .inputs import config_inputs
from .manifest import load_config

Where = Callable[[str], str]  # config key -> "file: key", naming the file the key came from


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
    node_pops, edge_pops = _network_files(conf, where)
    _check_edge_models(edge_pops, components, where)
    externals = config_inputs(conf, node_pops, group_by, where)
    net, keys, unused = popnet_network(node_pops, edge_pops, simulation=simulation, group_by=group_by,
                                       internal_params=_models_dir_params(components, where),
                                       externals=externals, name=path.parent.name or "popnet")
    output_dir, rates_file = _output(conf, where)
    return PopNetConfig(path=path, network=net, rates_file=rates_file, population_keys=keys,
                        output_dir=output_dir, group_by=group_by or "node_id", config=conf,
                        unused_virtual_populations=unused)


def _network_files(conf: dict, where: Where) -> tuple[list[NodePopulation], list[EdgePopulation]]:
    """The node and edge populations of every (enabled) file under ``networks``."""
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
    return node_pops, edge_pops


def _models_dir_params(components: dict, where: Where):
    """``internal_params`` for popnet_network: a node type's dynamics_params, from
    ``components.population_models_dir`` when it is a file name (each file read once)."""
    cache: dict[str, dict] = {}

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
        if str(file) not in cache:
            cache[str(file)] = read_dynamics_params(file, where("components.population_models_dir"))
        return cache[str(file)], str(file)

    return internal_params


def _output(conf: dict, where: Where) -> tuple[Path | None, Path | None]:
    """``output.output_dir`` and the rates file bmtk would write (under it when relative)."""
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
    return output_dir, rates_file


def _simulation(run: Any, where: Where) -> Simulation:
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


def _config_path(entry: Any, key: str, parent: str, where: Where) -> Path:
    if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
        raise ModelError(f"{parent}.{key} must be a file path, got "
                         f"{entry.get(key) if isinstance(entry, dict) else entry!r}", where(f"{parent}.{key}"))
    file = Path(entry[key])
    if not os.path.lexists(file):
        raise ModelError(f"file not found: {file}", where(f"{parent}.{key}"))
    try:
        check_regular_file(file, "a SONATA file")
    except ModelError as exc:
        raise ModelError(f"{file}: {exc.message}", where(f"{parent}.{key}")) from None
    return file


def _check_edge_models(edge_pops: list[EdgePopulation], components: dict, where: Where) -> None:
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


def config_files(path: str | Path) -> list[Path]:
    """Every file a PopNet config reads (the config and its children, the SONATA node/edge and
    types files, the files in the components folders, input rate/spike files, the node sets
    file), for fingerprints; missing files are left out (reading reports them)."""
    path = Path(path)
    conf, origins = load_config(path)
    files = {Path(p) for p in origins.values()}
    networks = conf.get("networks") if isinstance(conf.get("networks"), dict) else {}
    for kind, keys in (("nodes", ("nodes_file", "node_types_file")), ("edges", ("edges_file", "edge_types_file"))):
        entries = networks.get(kind) if isinstance(networks.get(kind), list) else []
        for entry in entries:
            if isinstance(entry, dict) and entry.get("enabled", True) is not False:
                files.update(Path(entry[k]) for k in keys if isinstance(entry.get(k), str))
    components = conf.get("components") if isinstance(conf.get("components"), dict) else {}
    for key in ("population_models_dir", "synaptic_models_dir"):
        folder = components.get(key)
        if isinstance(folder, str) and Path(folder).is_dir():
            files.update(p for p in Path(folder).iterdir() if p.is_file())
    inputs = conf.get("inputs") if isinstance(conf.get("inputs"), dict) else {}
    for spec in inputs.values():
        if isinstance(spec, dict) and spec.get("enabled", True) is not False:
            files.update(Path(spec[k]) for k in ("rates", "input_file") if isinstance(spec.get(k), str))
    if isinstance(conf.get("node_sets_file"), str):
        files.add(Path(conf["node_sets_file"]))
    return sorted({p.resolve() for p in files if p.is_file()})
