"""A NetworkBuilder with bmtk's interface that writes the SONATA files bmtk writes.

Usage mirrors ``bmtk.builder.NetworkBuilder``::

    v1 = NetworkBuilder("V1")
    v1.add_nodes(pop_name="excitatory", ei="e", model_type="population", dynamics_params="exc.json")
    v1.add_nodes(pop_name="inhibitory", ei="i", model_type="population", dynamics_params="inh.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, nsyns=20, syn_weight=0.005, delay=0.002)
    v1.build(); v1.save("network")

Ids, file names, datasets, dtypes and row order follow docs/formats.md (a):
node/edge type ids from 100 per builder, edges sorted by target with numpy's default sort
(as bmtk), both ``indices`` groups. Two deliberate differences, both for PopNet:
``syn_weight`` and ``delay`` are always written as floats (``1.0``, float64 in .h5), because
dipde refuses integers; and the types csv columns keep insertion order instead of a random
set order (bmtk's readers address columns by name).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import types
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ModelError
from .bmtk_compat import single_process
from .sonata import (EdgePopulation, NodePopulation, read_edges, read_nodes, write_edges, write_nodes,
                     write_types_csv)

FLOAT_EDGE_PROPS = ("syn_weight", "delay")
ITERATORS = ("one_to_one", "all_to_one", "one_to_all")


class Node(dict):
    """One node, read like a dict: its type's properties, its own ones and ``node_id``."""

    @property
    def node_id(self) -> int:
        return self["node_id"]

    @property
    def node_type_id(self) -> int:
        return self["node_type_id"]


class NodePool:
    """The nodes of one builder that match property filters (value, list of values or predicate)."""

    def __init__(self, network: "NetworkBuilder", **properties):
        self._network = network
        self._properties = properties

    def __iter__(self) -> Iterator[Node]:
        return (n for n in self._network._all_nodes() if _matches(n, self._properties))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def network(self) -> "NetworkBuilder":
        return self._network

    @property
    def network_name(self) -> str:
        return self._network.name

    @property
    def filter_str(self) -> str:
        """The informational query bmtk writes into edge_types.csv (``*`` = every node)."""
        if not self._properties:
            return "*"
        return "&".join(f"{k}=='{v}'" for k, v in self._properties.items())


def _matches(node: dict, props: dict) -> bool:
    for key, want in props.items():
        have = node.get(key)
        if have is None:
            return False
        if callable(want):
            if not want(have):
                return False
        elif isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class Edge:
    """One edge row: source/target node ids, its edge type's properties and its own (nsyns...)."""

    def __init__(self, source_node_id: int, target_node_id: int, edge_type_properties: dict, properties: dict):
        self.source_node_id = source_node_id
        self.target_node_id = target_node_id
        self.edge_type_properties = edge_type_properties
        self.synaptic_properties = properties

    @property
    def edge_type_id(self) -> int:
        return self.edge_type_properties["edge_type_id"]

    def __getitem__(self, key: str) -> Any:
        if key in self.synaptic_properties:
            return self.synaptic_properties[key]
        return self.edge_type_properties.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.synaptic_properties or key in self.edge_type_properties

    def __repr__(self) -> str:
        return (f"Edge({self.source_node_id} -> {self.target_node_id}, edge_type_id={self.edge_type_id}, "
                f"{self.synaptic_properties})")


class ConnectionMap:
    """One ``add_edges`` call: who connects to whom, how many synapses, and per-edge properties."""

    def __init__(self, source: NodePool, target: NodePool, rule: Any, rule_params: dict | None,
                 iterator: str, edge_type_properties: dict):
        self.source_nodes = source
        self.target_nodes = target
        self.connection_rule = rule
        self.connection_params = rule_params or {}
        self.iterator = iterator
        self.edge_type_properties = edge_type_properties
        self.properties: list[tuple[list[str], Any, dict, list]] = []

    @property
    def edge_type_id(self) -> int:
        return self.edge_type_properties["edge_type_id"]

    def add_properties(self, names: str | list[str], rule: Any = None, rule_params: dict | None = None,
                       values: Any = None, dtypes: Any = None) -> None:
        """Per-edge properties stored in the .h5, one value per synapse (rows are expanded).

        ``rule(source, target, **rule_params)`` returns the value (a tuple for several names);
        ``values`` gives them as a list in row order instead.
        """
        if (rule is None) == (values is None):
            raise ModelError("give exactly one of rule= or values=", "ConnectionMap.add_properties")
        names = [names] if isinstance(names, str) else list(names)
        dtypes = dtypes if isinstance(dtypes, (list, tuple)) else [dtypes] * len(names)
        dtypes = [np.float64 if n in FLOAT_EDGE_PROPS else d for n, d in zip(names, dtypes)]
        self.properties.append((names, values if values is not None else rule, rule_params or {}, dtypes))


class NetworkBuilder:
    """Build one SONATA node population and the edges it sends (see the module docstring)."""

    def __init__(self, name: str, **network_props):
        if not name:
            raise ModelError("a network needs a non-empty name", "NetworkBuilder")
        self._name = str(name)
        self._node_sets: list[tuple[int, dict, dict]] = []   # (N, per-node lists, node type properties)
        self._node_types: dict[int, dict] = {}
        self._conn_maps: list[ConnectionMap] = []
        self._nodes: list[Node] | None = None
        self._edges: list[tuple[ConnectionMap, dict]] | None = None
        self._next_type = 100
        self._next_edge_type = 100
        self._edge_type_ids: set[int] = set()
        self._explicit_ids: set[int] = set()

    # ------------------------------------------------------------------ adding
    @property
    def name(self) -> str:
        return self._name

    def add_nodes(self, N: int = 1, **properties) -> None:
        """Add N nodes of one new node type. A list/array of length N (or a generator/range)
        is a per-node property (written to the .h5); any other value is a type property."""
        if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 0:
            raise ModelError(f"N must be a whole number >= 0, got {N!r}", f"NetworkBuilder {self.name!r}.add_nodes")
        per_node, per_type = {}, {}
        for key, value in properties.items():
            if isinstance(value, (types.GeneratorType, range)):
                value = list(value)
            if isinstance(value, (list, np.ndarray)):
                if len(value) != N:
                    raise ModelError(f"property {key!r} has {len(value)} values for N={N} nodes",
                                     f"NetworkBuilder {self.name!r}.add_nodes")
                per_node[key] = value
            else:
                per_type[key] = value
        if "node_type_id" in per_node:
            raise ModelError("node_type_id must be one value per add_nodes call", f"NetworkBuilder {self.name!r}")
        if "node_id" in per_node:
            for nid in per_node["node_id"]:
                if int(nid) in self._explicit_ids:
                    raise ModelError(f"duplicate node_id {nid}", f"NetworkBuilder {self.name!r}.add_nodes")
                self._explicit_ids.add(int(nid))
        type_id = per_type.get("node_type_id")
        if type_id is None:
            while self._next_type in self._node_types:
                self._next_type += 1
            type_id = self._next_type
            self._next_type += 1
        elif type_id in self._node_types:
            raise ModelError(f"node_type_id {type_id} already exists", f"NetworkBuilder {self.name!r}.add_nodes")
        per_type = {"node_type_id": int(type_id), **{k: v for k, v in per_type.items() if k != "node_type_id"}}
        self._node_types[int(type_id)] = per_type
        self._node_sets.append((int(N), per_node, per_type))
        self._nodes = None
        self._edges = None

    def add_edges(self, source: dict | NodePool | None = None, target: dict | NodePool | None = None,
                  connection_rule: Any = 1, connection_params: dict | None = None,
                  iterator: str = "one_to_one", **edge_type_properties) -> ConnectionMap:
        """Connect source to target nodes (filter dicts or another builder's ``nodes()``).

        ``connection_rule`` is a number of synapses per pair, a function
        ``rule(source, target, **connection_params)`` returning one (0/None = no edge), or a
        matrix [n_sources, n_targets] (or bmtk's flat list). ``iterator`` passes the function
        all sources per target (``all_to_one``) or all targets per source (``one_to_all``).
        ``nsyns=`` is a synonym of ``connection_rule``; the rest are edge type properties.
        """
        if iterator not in ITERATORS:
            raise ModelError(f"unknown iterator {iterator!r} (use {', '.join(ITERATORS)})",
                             f"NetworkBuilder {self.name!r}.add_edges")
        source = source if _is_pool(source) else NodePool(self, **(source or {}))
        target = target if _is_pool(target) else NodePool(self, **(target or {}))
        if "nsyns" in edge_type_properties:
            connection_rule = edge_type_properties.pop("nsyns")
        type_id = edge_type_properties.pop("edge_type_id", None)
        if type_id is None:
            while self._next_edge_type in self._edge_type_ids:
                self._next_edge_type += 1
            type_id = self._next_edge_type
        elif type_id in self._edge_type_ids:
            raise ModelError(f"edge_type_id {type_id} already exists", f"NetworkBuilder {self.name!r}.add_edges")
        self._edge_type_ids.add(int(type_id))
        props = {"edge_type_id": int(type_id), "target_query": target.filter_str,
                 "source_query": source.filter_str, **edge_type_properties}
        cm = ConnectionMap(source, target, connection_rule, connection_params, iterator, props)
        self._conn_maps.append(cm)
        self._edges = None
        return cm

    # ------------------------------------------------------------------ building
    def build(self, force: bool = False) -> None:
        """Create the nodes (ids) and evaluate every connection rule."""
        if force:
            self._nodes = None
        self._all_nodes()
        self._edges = [(cm, self._build_edge_type(cm)) for cm in self._conn_maps]

    def _all_nodes(self) -> list[Node]:
        if self._nodes is None:
            nodes, next_id = [], 0
            for n, per_node, per_type in self._node_sets:
                ids = [int(i) for i in per_node["node_id"]] if "node_id" in per_node else []
                while len(ids) < n:
                    while next_id in self._explicit_ids:
                        next_id += 1
                    ids.append(next_id)
                    next_id += 1
                for i, nid in enumerate(ids):
                    node = Node(per_type)
                    node.update({k: v[i] for k, v in per_node.items()})
                    node["node_id"] = nid
                    nodes.append(node)
            self._nodes = nodes
        return self._nodes

    def _build_edge_type(self, cm: ConnectionMap) -> dict:
        """Rows (source-major over non-zero pairs, or one per synapse with per-edge properties)."""
        sources, targets = list(cm.source_nodes), list(cm.target_nodes)
        where = f"NetworkBuilder {self.name!r} edge_type_id {cm.edge_type_id}"
        nsyns = _nsyn_table(cm, sources, targets, where)
        src_idx, trg_idx = np.nonzero(nsyns)
        src_ids = np.array([sources[i].node_id for i in src_idx], dtype=np.uint64)
        trg_ids = np.array([targets[j].node_id for j in trg_idx], dtype=np.uint64)
        counts = nsyns[src_idx, trg_idx]
        if not cm.properties:
            return {"source": src_ids, "target": trg_ids, "columns": {"nsyns": counts.astype(np.uint32)}}
        rep_s, rep_t = np.repeat(src_idx, counts), np.repeat(trg_idx, counts)
        columns = {}
        for names, rule, params, dtypes in cm.properties:
            if isinstance(rule, (list, np.ndarray)):
                values = list(rule)
                if len(values) != len(rep_s):
                    raise ModelError(f"{len(values)} values given for {names} but there are {len(rep_s)} synapses",
                                     where)
            else:
                values = [rule(sources[i], targets[j], **params) for i, j in zip(rep_s, rep_t)]
            for k, (prop, dtype) in enumerate(zip(names, dtypes)):
                col = [v[k] for v in values] if len(names) > 1 else values
                columns[prop] = np.asarray(col, dtype=dtype) if dtype is not None else np.asarray(col)
        return {"source": np.repeat(src_ids, counts), "target": np.repeat(trg_ids, counts), "columns": columns}

    # ------------------------------------------------------------------ accessors
    def nodes(self, **properties) -> NodePool:
        """The nodes whose properties match (``net.nodes(ei='e')``)."""
        return NodePool(self, **properties)

    def edges(self, **properties) -> list[Edge]:
        """Every edge row this builder creates, in file order (sorted by target per file),
        optionally filtered by edge type or per-edge property values."""
        result = []
        for pop, types_table in self._edge_tables():
            for row in range(len(pop)):
                cols = pop.groups[int(pop.group_ids[row])]
                own = {k: v[int(pop.group_index[row])].item() for k, v in cols.items()}
                edge = Edge(int(pop.source_ids[row]), int(pop.target_ids[row]),
                            types_table[int(pop.edge_type_ids[row])], own)
                if all(edge[k] == v for k, v in properties.items()):
                    result.append(edge)
        return result

    @property
    def nnodes(self) -> int:
        return len(self._all_nodes())

    @property
    def nedges(self) -> int:
        """Number of synapses (sum of nsyns), as bmtk counts them."""
        if self._edges is None:
            self.build()
        return int(sum(np.sum(t["columns"]["nsyns"]) if "nsyns" in t["columns"] else len(t["source"])
                       for _, t in self._edges))

    # ------------------------------------------------------------------ SONATA tables
    def node_population(self) -> NodePopulation:
        """This builder's nodes as the SONATA table NetworkBuilder.save writes."""
        nodes = self._all_nodes()
        group_of: dict[tuple, int] = {}   # node sets with the same per-node columns share a group
        groups: dict[int, dict[str, list]] = {}
        gids, gindex, type_ids = [], [], []
        for n, per_node, per_type in self._node_sets:
            g = group_of.setdefault(tuple(sorted(per_node)), len(group_of))
            cols = groups.setdefault(g, {k: [] for k in per_node if k != "node_id"})
            start = sum(1 for x in gids if x == g)
            gids += [g] * n
            gindex += range(start, start + n)
            for k in cols:
                cols[k] += list(per_node[k])
            type_ids += [per_type["node_type_id"]] * n
        return NodePopulation(
            name=self.name, node_ids=np.array([n.node_id for n in nodes], dtype=np.uint64),
            node_type_ids=np.array(type_ids, dtype=np.uint64), group_ids=np.array(gids, dtype=np.uint32),
            group_index=np.array(gindex, dtype=np.uint64),
            groups={g: {k: np.asarray(v) for k, v in cols.items()} for g, cols in groups.items()},
            types={k: _csv_props(v) for k, v in self._node_types.items()},
            source=f"NetworkBuilder {self.name!r}", types_source=f"NetworkBuilder {self.name!r}")

    def _edge_pairs(self) -> list[tuple[str, str]]:
        pairs = []
        for cm in self._conn_maps:
            pair = (cm.source_nodes.network_name, cm.target_nodes.network_name)
            if pair not in pairs:
                pairs.append(pair)
        return pairs

    def _edge_tables(self) -> list[tuple[EdgePopulation, dict[int, dict]]]:
        """One collated, target-sorted EdgePopulation per (source, target) network pair."""
        if self._edges is None:
            self.build()
        out = []
        for src, trg in self._edge_pairs():
            built = [(cm, t) for cm, t in self._edges
                     if (cm.source_nodes.network_name, cm.target_nodes.network_name) == (src, trg)]
            types_table = {cm.edge_type_id: _csv_props(cm.edge_type_properties) for cm, _ in built}
            pop = _collate(f"{src}_to_{trg}", src, trg, built, types_table)
            if pop is not None:
                out.append((pop, types_table))
        return out

    # ------------------------------------------------------------------ saving
    def save(self, output_dir: str | Path = ".", force_overwrite: bool = True, compression: str | None = "gzip",
             **opts) -> None:
        """Write NAME_nodes.h5, NAME_node_types.csv and SRC_TRG_edges.h5 / _edge_types.csv."""
        self.save_nodes(output_dir=output_dir, force_overwrite=force_overwrite, compression=compression)
        self.save_edges(output_dir=output_dir, force_overwrite=force_overwrite, compression=compression)

    def save_nodes(self, nodes_file_name: str | None = None, node_types_file_name: str | None = None,
                   output_dir: str | Path = ".", force_overwrite: bool = True, compression: str | None = "gzip",
                   **opts) -> None:
        nodes_file = _out_path(nodes_file_name, output_dir, f"{self.name}_nodes.h5", force_overwrite)
        types_file = _out_path(node_types_file_name, output_dir, f"{self.name}_node_types.csv", force_overwrite)
        pop = self.node_population()
        write_nodes(nodes_file, pop, compression)
        columns = ["node_type_id"]
        for props in self._node_types.values():
            columns += [k for k in props if k not in columns]
        write_types_csv(types_file, columns, pop.types.values(), none_as="")

    def save_edges(self, edges_file_name: str | None = None, edge_types_file_name: str | None = None,
                   output_dir: str | Path = ".", src_network: str | None = None, trg_network: str | None = None,
                   force_overwrite: bool = True, compression: str | None = "gzip", **opts) -> None:
        if not self._conn_maps:
            return
        tables = {(p.source_population, p.target_population): (p, t) for p, t in self._edge_tables()}
        pairs = [(s, t) for s, t in self._edge_pairs()
                 if (src_network is None or s == src_network) and (trg_network is None or t == trg_network)]
        if edges_file_name or edge_types_file_name:
            pairs = pairs[:1]
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        for src, trg in pairs:
            maps = [cm for cm in self._conn_maps
                    if (cm.source_nodes.network_name, cm.target_nodes.network_name) == (src, trg)]
            columns = ["edge_type_id", "target_query", "source_query"]
            for cm in maps:
                columns += [k for k in cm.edge_type_properties if k not in columns]
            write_types_csv(_out_path(edge_types_file_name, output_dir, f"{src}_{trg}_edge_types.csv",
                                      force_overwrite),
                            columns, [_csv_props(cm.edge_type_properties) for cm in maps], none_as="NULL")
            if (src, trg) in tables:  # bmtk writes no .h5 when the rules made no edges
                write_edges(_out_path(edges_file_name, output_dir, f"{src}_{trg}_edges.h5", force_overwrite),
                            tables[(src, trg)][0], compression)


def _is_pool(obj: Any) -> bool:
    return obj is not None and not isinstance(obj, dict) and hasattr(obj, "network_name")


def _out_path(name: str | None, output_dir: str | Path, default: str, force_overwrite: bool) -> Path:
    path = Path(name) if name and os.path.isabs(name) else Path(output_dir) / (name or default)
    if path.exists() and not force_overwrite:
        raise ModelError(f"{path} exists; use force_overwrite=True", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _csv_props(props: dict) -> dict:
    """Type properties as they read back from the csv (floats for syn_weight/delay)."""
    out = dict(props)
    for key in FLOAT_EDGE_PROPS:
        if isinstance(out.get(key), (int, np.integer)) and not isinstance(out.get(key), bool):
            out[key] = float(out[key])
    return out


def _nsyn_table(cm: ConnectionMap, sources: list, targets: list, where: str) -> np.ndarray:
    """Synapse counts [n_sources, n_targets] from the connection rule."""
    rule, params, S, T = cm.connection_rule, cm.connection_params, len(sources), len(targets)
    table = np.zeros((S, T), dtype=np.uint32)
    if isinstance(rule, (list, tuple, np.ndarray)):
        arr = np.asarray(rule, dtype=object)
        if cm.iterator == "one_to_one":
            if arr.shape == (S, T) or arr.size == S * T:
                values = arr.reshape(S, T)
            else:
                raise ModelError(f"connection matrix has shape {arr.shape}; expected ({S}, {T}) or {S * T} "
                                 "values in source-major order", where)
        elif cm.iterator == "one_to_all":
            values = np.broadcast_to(arr.reshape(1, -1), (S, T)) if arr.size == T else None
        else:
            values = np.broadcast_to(arr.reshape(-1, 1), (S, T)) if arr.size == S else None
        if values is None:
            raise ModelError(f"connection list has {arr.size} values, wrong length for iterator {cm.iterator!r}",
                             where)
        for i, j in itertools.product(range(S), range(T)):
            table[i, j] = _count(values[i, j], where)
    elif callable(rule):
        if cm.iterator == "one_to_one":
            for i, j in itertools.product(range(S), range(T)):
                table[i, j] = _count(rule(sources[i], targets[j], **params), where)
        elif cm.iterator == "all_to_one":
            for j in range(T):
                vals = list(rule(sources, targets[j], **params))
                if len(vals) != S:
                    raise ModelError(f"the all_to_one rule returned {len(vals)} values for {S} sources", where)
                for i in range(S):
                    table[i, j] = _count(vals[i], where)
        else:
            for i in range(S):
                vals = list(rule(sources[i], targets, **params))
                if len(vals) != T:
                    raise ModelError(f"the one_to_all rule returned {len(vals)} values for {T} targets", where)
                for j in range(T):
                    table[i, j] = _count(vals[j], where)
    else:
        table[:, :] = _count(rule, where)
    return table


def _count(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
        raise ModelError(f"a connection rule must give a number of synapses >= 0 (or None), got {value!r}", where)
    return int(value)


def _collate(name: str, src: str, trg: str, built: list[tuple[ConnectionMap, dict]],
             types_table: dict[int, dict]) -> EdgePopulation | None:
    """Concatenate edge types, group them by their per-edge columns, and sort rows by target."""
    group_of: dict[tuple, int] = {}
    parts = []
    for cm, t in built:
        signature = tuple(sorted(f"{k}({v.dtype})" for k, v in t["columns"].items()))
        g = group_of.setdefault(signature, len(group_of))
        parts.append((cm.edge_type_id, g, t))
    n = sum(len(t["source"]) for _, _, t in parts)
    if n == 0:
        return None
    source = np.concatenate([t["source"] for _, _, t in parts]).astype(np.uint64)
    target = np.concatenate([t["target"] for _, _, t in parts]).astype(np.uint64)
    type_ids = np.concatenate([np.full(len(t["source"]), tid, np.uint32) for tid, _, t in parts])
    group_ids = np.concatenate([np.full(len(t["source"]), g, np.uint32) for _, g, t in parts])
    group_index = np.zeros(n, dtype=np.uint32)
    groups: dict[int, dict[str, np.ndarray]] = {}
    offset = 0
    for _, g, t in parts:
        size = len(t["source"])
        cols = groups.setdefault(g, {k: v[:0] for k, v in t["columns"].items()})
        start = len(next(iter(cols.values())))
        group_index[offset:offset + size] = np.arange(start, start + size)
        for k, v in t["columns"].items():
            cols[k] = np.concatenate([cols[k], v])
        offset += size
    # bmtk sorts with numpy's default argsort, skipping the sort only when all targets are equal
    if n > 1 and not np.all(target == target[0]):
        order = np.argsort(target)
        source, target = source[order], target[order]
        type_ids, group_ids, group_index = type_ids[order], group_ids[order], group_index[order]
        for g, cols in groups.items():
            rows = np.nonzero(group_ids == g)[0]
            old = group_index[rows]
            for k in cols:
                cols[k] = cols[k][old]
            group_index[rows] = np.arange(len(rows), dtype=np.uint32)
    return EdgePopulation(name=name, source_population=src, target_population=trg, source_ids=source,
                          target_ids=target, edge_type_ids=type_ids, group_ids=group_ids, group_index=group_index,
                          groups=groups, types=types_table, source=f"NetworkBuilder edges {name}",
                          types_source=f"NetworkBuilder edges {name}")


def sonata_tables(builder: Any) -> tuple[NodePopulation, list[EdgePopulation]]:
    """The SONATA tables of a sweeper NetworkBuilder, or of a bmtk one (saved to a temporary
    folder and read back, so that PopNet sees exactly what bmtk's files hold)."""
    if isinstance(builder, NetworkBuilder):
        return builder.node_population(), [p for p, _ in builder._edge_tables()]
    if not hasattr(builder, "save_nodes") or not hasattr(builder, "name"):
        raise ModelError(f"not a NetworkBuilder: {builder!r}", "network_from_builders")
    with tempfile.TemporaryDirectory(prefix="sweeper-bmtk-") as tmp, single_process():
        builder.save(output_dir=tmp)
        name = builder.name
        nodes = read_nodes(Path(tmp) / f"{name}_nodes.h5", Path(tmp) / f"{name}_node_types.csv")
        if len(nodes) != 1:
            raise ModelError(f"bmtk builder {name!r} wrote {len(nodes)} node populations", "network_from_builders")
        pairs = []
        for cm in builder.get_connections():
            pair = (cm.source_network_name, cm.target_network_name)
            if pair not in pairs:
                pairs.append(pair)
        edges = []
        for src, trg in pairs:
            h5 = Path(tmp) / f"{src}_{trg}_edges.h5"
            if h5.is_file():
                edges.extend(read_edges(h5, Path(tmp) / f"{src}_{trg}_edge_types.csv"))
        return nodes[0], edges
