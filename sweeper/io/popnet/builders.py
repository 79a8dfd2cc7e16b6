"""NetworkBuilders (sweeper's or bmtk's) -> Network, grouped with PopNet's rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ...errors import ModelError
from ...model import Network, Rate, Simulation, to_float
from ..builder import sonata_tables
from ..sonata import EdgePopulation, NodePopulation
from .dynamics import read_dynamics_params
from .grouping import popnet_network
from .inputs import rate_value, read_pop_rates

Where = "network_from_builders"


def network_from_builders(builders: Iterable[Any] | Any, *, components_dir: str | Path | None = None,
                          rates: Mapping | None = None, simulation: Simulation | Mapping | None = None,
                          group_by: str | None = "node_type_id", name: str = "network",
                          base_dir: str | Path | None = None) -> Network:
    """A Network from NetworkBuilders (sweeper's or bmtk's), grouped with PopNet's rules.

    ``builders`` is one builder or an iterable of them, taken in order; edges come in each
    builder's order of (source, target) network pairs. Internal nodes' ``dynamics_params`` may
    be a dict or a file name found in ``components_dir`` (or its ``population_models`` folder).
    Each virtual node population becomes external populations; their rates come from ``rates``
    (see :func:`normalize_rates`: per node population, per group key, or a PopNet ``gid
    firing_rate`` table) or else from the nodes' ``firing_rate`` property. ``simulation`` is a
    Simulation or a mapping of ``t0``/``tf``/``dt`` (s). Relative ``components_dir`` and rate
    table paths resolve against ``base_dir`` (the spec's folder). bmtk builders are saved and
    read back under :func:`sweeper.io.bmtk_compat.single_process`.
    """
    base = Path(base_dir) if base_dir is not None else None
    if components_dir is not None:
        components_dir = _resolve(components_dir, base, "components_dir")
    per_key, per_pop = normalize_rates(rates, base)
    node_pops: list[NodePopulation] = []
    edge_pops: list[EdgePopulation] = []
    for b in _builder_list(builders):
        n, e = sonata_tables(b)
        node_pops.append(n)
        edge_pops.extend(e)
    virtual = [p.name for p in node_pops
               if len(p) and all(p.node_props(i).get("model_type") == "virtual" for i in range(len(p)))]
    named = {pop for pop, _ in per_key} | set(per_pop)
    unknown = sorted((u for u in named if u not in virtual), key=str)
    if unknown:
        raise ModelError(f"rates name node population(s) {unknown} that are not virtual node populations of "
                         f"the builders (virtual: {virtual})", f"{Where}: rates")
    net, _, _ = popnet_network(node_pops, edge_pops, simulation=simulation_of(simulation),
                               group_by=group_by, internal_params=_components_params(components_dir),
                               externals=[(v, _builder_rate(v, per_key, per_pop, group_by)) for v in virtual],
                               name=name)
    return net


def network_from_builder_result(result: Any, **options: Any) -> Network:
    """What a sweep's builder function returned, as a Network: a sweeper Network as it is, or
    one or more NetworkBuilders (sweeper's or bmtk's) through :func:`network_from_builders`
    with ``options`` (components_dir, rates, simulation, group_by, name, base_dir)."""
    if isinstance(result, Network):
        return result
    return network_from_builders(result, **options)


def _builder_list(builders: Any) -> list:
    if _is_builder(builders):
        return [builders]
    if isinstance(builders, (list, tuple)) and builders and all(_is_builder(b) for b in builders):
        return list(builders)
    raise ModelError(f"expected a sweeper Network, a NetworkBuilder or a list of NetworkBuilders "
                     f"(sweeper's or bmtk's), got {_describe(builders)}", Where)


def _is_builder(obj: Any) -> bool:
    from ..builder import NetworkBuilder
    return isinstance(obj, NetworkBuilder) or (hasattr(obj, "save_nodes") and hasattr(obj, "name"))


def _describe(obj: Any) -> str:
    text = repr(obj)
    return f"{type(obj).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def simulation_of(simulation: Simulation | Mapping | None) -> Simulation:
    """A Simulation from None (the defaults), a Simulation, or a mapping of t0/tf/dt in seconds."""
    if simulation is None:
        return Simulation()
    if isinstance(simulation, Simulation):
        return simulation
    if not isinstance(simulation, Mapping):
        raise ModelError(f"expected {{t0, tf, dt}} in seconds, got {simulation!r}", f"{Where}: simulation")
    unknown = [k for k in simulation if k not in ("t0", "tf", "dt")]
    if unknown:
        raise ModelError(f"unknown key(s) {unknown} (allowed: t0, tf, dt, in seconds)", f"{Where}: simulation")
    defaults = Simulation()
    return Simulation(**{k: to_float(simulation.get(k, getattr(defaults, k)), f"{Where}: simulation.{k}")
                         for k in ("t0", "tf", "dt")})


def normalize_rates(rates: Mapping | None, base: Path | None = None
                    ) -> tuple[dict[tuple[Any, Any], Any], dict[Any, Any]]:
    """External rates in the forms a Python caller or a spec can write, as (per key, per population).

    - ``{("LGN", 100): 15.0}``: node population and group key (the Python form);
    - ``{"LGN": 15.0}``: every group of node population LGN (a number, an expression in t, a
      ``{"kind": ...}`` rate or a callable);
    - ``{"LGN": {100: 15.0}}``: per group key (keys may be written as strings);
    - ``{"LGN": {"file": "lgn_rates.csv"}}`` or ``{"LGN": "lgn_rates.csv"}``: a PopNet
      ``gid firing_rate`` table, gid = group key.
    """
    per_key: dict[tuple[Any, Any], Any] = {}
    per_pop: dict[Any, Any] = {}
    if rates is None:
        return per_key, per_pop
    if not isinstance(rates, Mapping):
        raise ModelError(f"expected a mapping of node population -> rate, got {rates!r}", f"{Where}: rates")
    for pop, value in rates.items():
        where = f"{Where}: rates[{pop!r}]"
        if isinstance(pop, tuple) and len(pop) == 2:
            per_key[pop] = value
        elif not isinstance(pop, str):
            raise ModelError(f"expected a node population name or a (population, key) pair, got {pop!r}", where)
        elif _is_table(value):
            file = value["file"] if isinstance(value, Mapping) else value
            table = read_pop_rates(_resolve(file, base, where), where)
            per_key.update({(pop, k): v for k, v in table.items()})
        elif isinstance(value, Mapping) and "kind" not in value:
            per_key.update({(pop, k): v for k, v in value.items()})
        else:
            per_pop[pop] = value
    return per_key, per_pop


def _is_table(value: Any) -> bool:
    if isinstance(value, Mapping):
        return set(value) == {"file"}
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith((".csv", ".txt"))


def _resolve(path: Any, base: Path | None, where: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ModelError(f"expected a path, got {path!r}", where)
    p = Path(path)
    return p if p.is_absolute() or base is None else base / p


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
            raise ModelError(f"dynamics_params {value!r} is a file name; pass components_dir= (in a sweep "
                             "spec: the components_dir key)", where)
        for cand in (Path(components_dir) / value, Path(components_dir) / "population_models" / value):
            if cand.is_file():
                return read_dynamics_params(cand, where), str(cand)
        raise ModelError(f"dynamics_params file {value!r} not found in {components_dir} "
                         f"or {Path(components_dir) / 'population_models'}", where)

    return internal_params


def _builder_rate(pop_name: str, per_key: dict, per_pop: dict, group_by: str | None):
    """The rate of one external group of a virtual node population: ``rates[(pop, key)]``, else
    ``rates[pop]``, else the nodes' ``firing_rate`` property."""
    def rate(key: Any, first: dict) -> Rate:
        where = f"NetworkBuilder {pop_name!r} external population {key!r}"
        for k in ((pop_name, key), (pop_name, str(key))):
            if k in per_key:
                return rate_value(per_key[k], where)
        if pop_name in per_pop:
            return rate_value(per_pop[pop_name], where)
        if first.get("firing_rate") is not None:
            return rate_value(first["firing_rate"], f"{where} firing_rate")
        raise ModelError(f"no rate for external population (node population {pop_name!r}, {group_by or 'node_id'} "
                         f"{key!r}): pass rates={{({pop_name!r}, {key!r}): HZ}} (in a sweep spec: input_rates: "
                         f"{{{pop_name}: HZ}}) or give the nodes a firing_rate property", where)
    return rate
