"""PopNet's grouping: SONATA nodes -> populations, edges -> one connection per population pair
(docs/formats.md (e)). The naming rule is in the package docstring."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import ModelError
from ...model import Connection, Dist, ExternalPopulation, Network, Rate, Simulation, name_problem
from ..sonata import MISSING, EdgePopulation, NodePopulation
from .dynamics import internal_population

Pairs = dict[tuple[int, int], tuple[EdgePopulation, int]]  # (source group, target group) -> (edges, row)


@dataclass
class _Group:
    key: Any
    node_population: str
    first: dict
    members: list[int] = field(default_factory=list)
    name: str = ""


class _Nodes:
    """The node populations, each one's node property rows and whether it is virtual."""

    def __init__(self, node_pops: Sequence[NodePopulation], group_by: str | None):
        self.group_by = group_by
        self.by_id = group_by in (None, "node_id")
        self.pops = {p.name: p for p in node_pops}
        if len(self.pops) != len(node_pops):
            dup = [p.name for p in node_pops if sum(q.name == p.name for q in node_pops) > 1][0]
            raise ModelError(f"there are several node populations named {dup!r}",
                             ", ".join(p.source for p in node_pops if p.name == dup))
        self.virtual: dict[str, bool] = {}
        self.props: dict[str, list[dict]] = {}
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
            self.virtual[pop.name] = kinds == {True}
            self.props[pop.name] = rows

    def key_of(self, row: dict, pop: NodePopulation) -> Any:
        if self.by_id:
            return row["node_id"]
        if self.group_by not in row or row[self.group_by] is None:
            raise ModelError(f"node {row['node_id']} of population {pop.name!r} has no {self.group_by!r} "
                             "property to group by", pop.types_source)
        return row[self.group_by]


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
    nodes = _Nodes(node_pops, group_by)
    internal, node_group = _internal_groups(node_pops, nodes)
    recurrent: Pairs = {}
    for ep in edge_pops:
        for end in (ep.source_population, ep.target_population):
            if end not in nodes.pops:
                raise ModelError(f"edge population {ep.name!r} refers to node population {end!r}, which no "
                                 f"nodes file defines (known: {sorted(nodes.pops)})", ep.source)
        if nodes.virtual[ep.target_population]:
            raise ModelError(f"edge population {ep.name!r} targets virtual node population "
                             f"{ep.target_population!r}; PopNet cannot connect onto virtual nodes", ep.source)
        if not nodes.virtual[ep.source_population]:
            _first_rows(ep, node_group[ep.source_population], node_group[ep.target_population], recurrent)
    external, ext_rates, ext_conns, done = _external_groups(externals, edge_pops, nodes, node_group)

    _name_groups(internal, external)
    for g in internal + external:
        if name_problem(g.name):
            raise ModelError(f"node population {g.node_population!r}, {group_by or 'node_id'} {g.key!r}: "
                             f"{name_problem(g.name)}", nodes.pops[g.node_population].types_source)
    populations: list = []
    keys: dict[str, Any] = {}
    for g in internal:
        params, where = internal_params(g.first, nodes.pops[g.node_population])
        ipop = internal_population(g.name, params, where)
        populations.append(ipop)
        if ipop.record:
            keys[g.name] = g.key
    populations += [ExternalPopulation(g.name, r) for g, r in zip(external, ext_rates)]
    connections = [_connection(ep, row, internal[s].name, internal[t].name)
                   for (s, t), (ep, row) in recurrent.items()]
    connections += [_connection(ep, row, external[s].name, internal[t].name)
                    for (s, t), (ep, row) in ext_conns.items()]
    unused = tuple(p.name for p in node_pops if nodes.virtual[p.name] and p.name not in done)
    return Network(tuple(populations), tuple(connections), simulation, name), keys, unused


def _internal_groups(node_pops: Sequence[NodePopulation], nodes: _Nodes
                     ) -> tuple[list[_Group], dict[str, dict[int, int]]]:
    """Internal groups in node order and, per node population, node_id -> group index.
    Keys are global across node files (node_id grouping never merges)."""
    internal: list[_Group] = []
    by_key: dict[Any, int] = {}
    node_group: dict[str, dict[int, int]] = {}
    for pop in node_pops:
        if nodes.virtual[pop.name]:
            continue
        mapping = node_group.setdefault(pop.name, {})
        for row in nodes.props[pop.name]:
            key = nodes.key_of(row, pop)
            gkey = (pop.name, key) if nodes.by_id else key
            if gkey not in by_key:
                by_key[gkey] = len(internal)
                internal.append(_Group(key, pop.name, row))
            internal[by_key[gkey]].members.append(row["node_id"])
            mapping[row["node_id"]] = by_key[gkey]
    return internal, node_group


def _external_groups(externals: Sequence[tuple[str, Callable]], edge_pops: Sequence[EdgePopulation],
                     nodes: _Nodes, node_group: dict[str, dict[int, int]]
                     ) -> tuple[list[_Group], list[Rate], Pairs, set[str]]:
    """External groups built per input (keys are per node population), their rates, their
    connections and the node populations the inputs used."""
    external: list[_Group] = []
    ext_conns: Pairs = {}
    ext_rates: list[Rate] = []
    done: set[str] = set()
    for pop_name, rate_fn in externals:
        if pop_name in done:
            continue
        if not nodes.virtual[pop_name]:
            raise ModelError(f"an input names node population {pop_name!r}, but its nodes are not virtual",
                             nodes.pops[pop_name].types_source)
        done.add(pop_name)
        pop = nodes.pops[pop_name]
        local: dict[Any, int] = {}
        mapping: dict[int, int] = {}
        for row in nodes.props[pop_name]:
            key = nodes.key_of(row, pop)
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
    return external, ext_rates, ext_conns, done


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
