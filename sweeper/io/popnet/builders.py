"""NetworkBuilders (sweeper's or bmtk's) -> Network, grouped with PopNet's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ...errors import ModelError
from ...model import Network, Rate, Simulation
from ..builder import sonata_tables
from ..sonata import EdgePopulation, NodePopulation
from .dynamics import read_dynamics_params
from .grouping import popnet_network
from .inputs import rate_value


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
    node_pops: list[NodePopulation] = []
    edge_pops: list[EdgePopulation] = []
    for b in builders:
        n, e = sonata_tables(b)
        node_pops.append(n)
        edge_pops.extend(e)
    rates = dict(rates or {})
    if simulation is None:
        simulation = Simulation()
    elif isinstance(simulation, dict):
        simulation = Simulation(**simulation)
    virtual = [p.name for p in node_pops
               if len(p) and all(p.node_props(i).get("model_type") == "virtual" for i in range(len(p)))]
    net, _, _ = popnet_network(node_pops, edge_pops, simulation=simulation, group_by=group_by,
                               internal_params=_components_params(components_dir),
                               externals=[(v, _builder_rate(v, rates, group_by)) for v in virtual], name=name)
    return net


def _components_params(components_dir: str | Path | None):
    """``internal_params`` for popnet_network: dynamics_params as a dict, or a file name looked up
    in ``components_dir`` and its ``population_models`` folder."""
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
                return read_dynamics_params(cand, where), str(cand)
        raise ModelError(f"dynamics_params file {value!r} not found in {components_dir} "
                         f"or {Path(components_dir) / 'population_models'}", where)

    return internal_params


def _builder_rate(pop_name: str, rates: dict, group_by: str | None):
    """The rate of one external group of a virtual node population: ``rates[(pop, key)]``, else
    the nodes' ``firing_rate`` property."""
    def rate(key: Any, first: dict) -> Rate:
        where = f"NetworkBuilder {pop_name!r} external population {key!r}"
        for k in ((pop_name, key), (pop_name, str(key))):
            if k in rates:
                return rate_value(rates[k], where)
        if first.get("firing_rate") is not None:
            return rate_value(first["firing_rate"], f"{where} firing_rate")
        raise ModelError(f"no rate for external population (node population {pop_name!r}, {group_by or 'node_id'} "
                         f"{key!r}): pass rates={{({pop_name!r}, {key!r}): HZ}} or give the nodes a "
                         "firing_rate property", where)
    return rate
