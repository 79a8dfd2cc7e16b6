"""sweeper's NetworkBuilder: bmtk's interface and bmtk's SONATA files; network_from_builders."""

import json

import h5py
import numpy as np
import pytest

from sweeper.errors import ModelError
from sweeper.io.builder import NetworkBuilder
from sweeper.io.popnet import network_from_builders, read_popnet_config
from sweeper.model import ConstantRate, Dist, ExpressionRate, Simulation

POP = {"tau_m": 0.02, "v_min": -0.01, "v_max": 0.01, "dv": 0.001, "update_method": "approx"}


def e_i_network(n_e=1, n_i=1):
    v1 = NetworkBuilder("V1")
    v1.add_nodes(N=n_e, pop_name="exc", ei="e", location="L4", model_type="population", dynamics_params="exc.json")
    v1.add_nodes(N=n_i, pop_name="inh", ei="i", model_type="population", dynamics_params="inh.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, nsyns=20, syn_weight=0.005, delay=0.002,
                 dynamics_params="e2i.json")
    v1.add_edges(source={"ei": "i"}, target={"ei": "e"}, connection_rule=10, syn_weight=-0.002, delay=0.002,
                 dynamics_params="i2e.json")
    lgn = NetworkBuilder("LGN")
    lgn.add_nodes(N=2, pop_name="tON", ei="e", model_type="virtual")
    lgn.add_edges(target=v1.nodes(ei="e"), nsyns=10, syn_weight=0.0025, delay=0.002)
    return v1, lgn


def test_ids_file_names_and_types_csv(tmp_path):
    v1, lgn = e_i_network(n_e=3, n_i=2)
    for b in (v1, lgn):
        b.build()
        b.save(output_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "LGN_V1_edge_types.csv", "LGN_V1_edges.h5", "LGN_node_types.csv", "LGN_nodes.h5",
        "V1_V1_edge_types.csv", "V1_V1_edges.h5", "V1_node_types.csv", "V1_nodes.h5"]
    assert [n.node_id for n in v1.nodes()] == [0, 1, 2, 3, 4]
    assert [n.node_type_id for n in v1.nodes()] == [100, 100, 100, 101, 101]
    assert [n.node_type_id for n in lgn.nodes()] == [100, 100]          # restarts at 100 per builder
    assert (tmp_path / "V1_node_types.csv").read_bytes() == (
        b"node_type_id pop_name ei location model_type dynamics_params\r\n"
        b"100 exc e L4 population exc.json\r\n"
        b"101 inh i NULL population inh.json\r\n")
    assert (tmp_path / "V1_V1_edge_types.csv").read_bytes() == (
        b"edge_type_id target_query source_query syn_weight delay dynamics_params\r\n"
        b"100 ei=='i' ei=='e' 0.005 0.002 e2i.json\r\n"
        b"101 ei=='e' ei=='i' -0.002 0.002 i2e.json\r\n")
    assert (tmp_path / "LGN_V1_edge_types.csv").read_bytes() == (
        b"edge_type_id target_query source_query syn_weight delay\r\n100 ei=='e' * 0.0025 0.002\r\n")


def test_csv_quotes_spaces_writes_float_weights_and_null(tmp_path):
    net = NetworkBuilder("N")
    net.add_nodes(range_v=(0.0, 1e20), label="two words", empty=None, model_type="population")
    net.add_nodes(model_type="population")
    net.add_edges(syn_weight=1, delay=0, note=None)
    net.build()
    net.save(output_dir=tmp_path)
    assert (tmp_path / "N_node_types.csv").read_bytes() == (
        b'node_type_id range_v label empty model_type\r\n100 "(0.0, 1e+20)" "two words"  population\r\n'
        b"101 NULL NULL NULL population\r\n")
    # integer weights/delays would reach dipde as numpy ints, which it refuses
    assert (tmp_path / "N_N_edge_types.csv").read_bytes() == (
        b"edge_type_id target_query source_query syn_weight delay note\r\n100 * * 1.0 0.0 NULL\r\n")


def test_nodes_h5_layout_and_per_node_properties(tmp_path):
    net = NetworkBuilder("N")
    net.add_nodes(N=2, model_type="population")
    net.add_nodes(N=3, x=[1.5, 2.5, 3.5], tag=["a", "b", "c"], model_type="population")
    net.add_nodes(N=1, model_type="virtual")
    net.save_nodes(output_dir=tmp_path)
    with h5py.File(tmp_path / "N_nodes.h5") as h5:
        assert h5.attrs["magic"] == 0x0A7A and list(h5.attrs["version"]) == [0, 1]
        grp = h5["nodes/N"]
        assert {k: grp[k].dtype.str for k in ("node_id", "node_type_id", "node_group_id", "node_group_index")} == \
            {"node_id": "<u8", "node_type_id": "<u8", "node_group_id": "<u4", "node_group_index": "<u8"}
        assert grp["node_id"][()].tolist() == [0, 1, 2, 3, 4, 5]
        assert grp["node_type_id"][()].tolist() == [100, 100, 101, 101, 101, 102]
        assert grp["node_group_id"][()].tolist() == [0, 0, 1, 1, 1, 0]
        assert grp["node_group_index"][()].tolist() == [0, 1, 0, 1, 2, 2]
        assert list(grp["0"]) == [] and sorted(grp["1"]) == ["tag", "x"]
        assert grp["1/x"][()].tolist() == [1.5, 2.5, 3.5]
        assert grp["1/tag"].asstr()[()].tolist() == ["a", "b", "c"]
    assert [n["x"] for n in net.nodes(x=lambda v: v > 2)] == [2.5, 3.5]
    assert [n.node_id for n in net.nodes(tag=["a", "c"])] == [2, 4]


def test_edges_sorted_by_target_with_consistent_indices(tmp_path):
    net = NetworkBuilder("N")
    net.add_nodes(N=6, model_type="population")
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 3, size=(6, 6))
    net.add_edges(connection_rule=lambda s, t: counts[s.node_id, t.node_id], syn_weight=0.001, delay=0.0)
    net.add_edges(connection_rule=lambda s, t: int(s.node_id == t.node_id), syn_weight=0.002, delay=0.0)
    net.save(output_dir=tmp_path)
    with h5py.File(tmp_path / "N_N_edges.h5") as h5:
        grp = h5["edges/N_to_N"]
        src, trg = grp["source_node_id"][()], grp["target_node_id"][()]
        assert grp["source_node_id"].attrs["node_population"] == "N"
        assert np.all(np.diff(trg.astype(np.int64)) >= 0)
        assert grp["0/nsyns"].dtype == np.uint32 and grp["edge_type_id"].dtype == np.uint32
        assert grp["edge_group_id"].dtype == np.uint16 and grp["edge_group_index"].dtype == np.uint32
        nsyns = grp["0/nsyns"][()][grp["edge_group_index"][()]]
        got = {(int(s), int(t), int(e)): int(n) for s, t, e, n in zip(src, trg, grp["edge_type_id"][()], nsyns)}
        want = {(s, t, 100): int(counts[s, t]) for s in range(6) for t in range(6) if counts[s, t]}
        want.update({(i, i, 101): 1 for i in range(6)})
        assert got == want
        for name, ids in (("target_to_source", trg), ("source_to_target", src)):
            id_to_range = grp[f"indices/{name}/node_id_to_range"][()]
            ranges = grp[f"indices/{name}/range_to_edge_id"][()]
            for node in range(id_to_range.shape[0]):
                a, b = id_to_range[node]
                rows = sorted(r for lo, hi in ranges[a:b] for r in range(lo, hi))
                assert rows == np.nonzero(ids == node)[0].tolist()


@pytest.mark.parametrize("rule, kwargs, expected", [
    (2, {}, {(0, 2): 2, (0, 3): 2, (1, 2): 2, (1, 3): 2}),
    (lambda s, t, k: k if t.node_id == 3 else None, {"connection_params": {"k": 4}}, {(0, 3): 4, (1, 3): 4}),
    ([[1, 0], [0, 5]], {}, {(0, 2): 1, (1, 3): 5}),
    ([1, 0, 0, 5], {}, {(0, 2): 1, (1, 3): 5}),
    (lambda sources, t: [1, 2], {"iterator": "all_to_one"}, {(0, 2): 1, (1, 2): 2, (0, 3): 1, (1, 3): 2}),
    (lambda s, targets: [0, s.node_id + 1], {"iterator": "one_to_all"}, {(0, 3): 1, (1, 3): 2}),
])
def test_connection_rules(rule, kwargs, expected):
    net = NetworkBuilder("N")
    net.add_nodes(N=2, role="src", model_type="population")
    net.add_nodes(N=2, role="trg", model_type="population")
    net.add_edges(source={"role": "src"}, target={"role": "trg"}, connection_rule=rule, syn_weight=0.1,
                  delay=0.0, **kwargs)
    net.build()
    assert {(e.source_node_id, e.target_node_id): e["nsyns"] for e in net.edges()} == expected
    assert all(e["syn_weight"] == 0.1 and e.edge_type_id == 100 for e in net.edges())
    assert net.nedges == sum(expected.values())


def test_per_edge_properties_are_float64_rows_per_synapse(tmp_path):
    net = NetworkBuilder("N")
    net.add_nodes(N=2, model_type="population")
    cm = net.add_edges(source={"node_type_id": 100}, connection_rule=lambda s, t: 2 if s.node_id != t.node_id else 0,
                       delay=0.001)
    cm.add_properties("syn_weight", rule=lambda s, t: 0.001 * (1 + s.node_id), dtypes=np.float32)
    net.save(output_dir=tmp_path)
    with h5py.File(tmp_path / "N_N_edges.h5") as h5:
        grp = h5["edges/N_to_N"]
        assert list(grp["0"]) == ["syn_weight"] and grp["0/syn_weight"].dtype == np.float64
        assert grp["target_node_id"][()].tolist() == [0, 0, 1, 1]
        assert grp["0/syn_weight"][()].tolist() == [0.002, 0.002, 0.001, 0.001]


def test_builder_errors():
    net = NetworkBuilder("N")
    with pytest.raises(ModelError, match="property 'x' has 2 values for N=3 nodes"):
        net.add_nodes(N=3, x=[1, 2])
    net.add_nodes(N=2, node_type_id=7)
    with pytest.raises(ModelError, match="node_type_id 7 already exists"):
        net.add_nodes(node_type_id=7)
    net.add_edges(connection_rule=np.ones((3, 3)))
    with pytest.raises(ModelError, match=r"connection matrix has shape \(3, 3\); expected \(2, 2\)"):
        net.build()
    other = NetworkBuilder("M")
    other.add_nodes(N=2)
    other.add_edges(connection_rule=lambda s, t: -1)
    with pytest.raises(ModelError, match="edge_type_id 100: a connection rule must give a number of synapses >= 0"):
        other.build()


# --------------------------------------------------------------------------- network_from_builders
def test_network_from_builders_matches_the_saved_popnet_directory(tmp_path):
    v1, lgn = e_i_network(n_e=3, n_i=2)
    comps = tmp_path / "components"
    (comps / "population_models").mkdir(parents=True)
    (comps / "synaptic_models").mkdir()
    (comps / "population_models" / "exc.json").write_text(json.dumps(POP))
    (comps / "population_models" / "inh.json").write_text(json.dumps({**POP, "tau_m": 0.01}))
    for name in ("e2i.json", "i2e.json"):
        (comps / "synaptic_models" / name).write_text("{}")
    sim = Simulation(0.0, 0.05, 0.001)
    net = network_from_builders([v1, lgn], components_dir=comps, rates={("LGN", 100): 15.0}, simulation=sim)
    assert [p.name for p in net.populations] == ["exc", "inh", "LGN_tON"]
    assert net.population("inh").tau_m == Dist.delta(0.01)
    assert net.population("LGN_tON").rate == ConstantRate(15.0)
    assert [(c.source, c.target, c.nsyn) for c in net.connections] == [
        ("inh", "exc", 10.0), ("exc", "inh", 20.0), ("LGN_tON", "exc", 10.0)]

    for b in (v1, lgn):
        b.save(output_dir=tmp_path / "network")
    (tmp_path / "rates.csv").write_text("gid firing_rate\n100 15.0\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "manifest": {"$BASE_DIR": "${configdir}"}, "run": {"tstop": 50.0, "dt": 0.001},
        "components": {"population_models_dir": f"{comps}/population_models",
                       "synaptic_models_dir": f"{comps}/synaptic_models"},
        "networks": {"nodes": [{"nodes_file": f"$BASE_DIR/network/{n}_nodes.h5",
                                "node_types_file": f"$BASE_DIR/network/{n}_node_types.csv"} for n in ("V1", "LGN")],
                     "edges": [{"edges_file": f"$BASE_DIR/network/{n}_edges.h5",
                                "edge_types_file": f"$BASE_DIR/network/{n}_edge_types.csv"}
                               for n in ("V1_V1", "LGN_V1")]},
        "inputs": {"lgn": {"input_type": "csv", "rates": "$BASE_DIR/rates.csv", "node_set": "LGN"}},
        "output": {"output_dir": "$BASE_DIR/output", "rates_file": "rates.txt"}}))
    cfg = read_popnet_config(tmp_path / "config.json")
    assert cfg.network.populations == net.populations
    assert cfg.network.connections == net.connections
    assert cfg.network.simulation == net.simulation


def test_network_from_builders_inline_params_and_firing_rate_property():
    v1 = NetworkBuilder("V1")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params=dict(POP, record=True))
    bg = NetworkBuilder("BG")
    bg.add_nodes(pop_name="noise", model_type="virtual", firing_rate="10 + 5*sin(t)")
    bg.add_nodes(pop_name="tonic", model_type="virtual", firing_rate=3.0)
    bg.add_edges(target=v1.nodes(), nsyns=4, syn_weight=0.001, delay=0.0)
    net = network_from_builders([v1, bg], simulation={"t0": 0.0, "tf": 0.01, "dt": 0.001})
    assert net.population("BG_noise").rate == ExpressionRate("10 + 5*sin(t)")
    assert net.population("BG_tonic").rate == ConstantRate(3.0)
    assert [c.source for c in net.connections] == ["BG_noise", "BG_tonic"]
    net = network_from_builders([v1, bg], rates={("BG", 101): 8.0}, group_by="node_id")
    assert [p.name for p in net.populations] == ["e", "BG_noise", "BG_tonic"]


def test_network_from_builders_errors(tmp_path):
    v1 = NetworkBuilder("V1")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params=POP)
    lgn = NetworkBuilder("LGN")
    lgn.add_nodes(pop_name="tON", model_type="virtual")
    lgn.add_edges(target=v1.nodes(), nsyns=1, syn_weight=0.001, delay=0.0)
    with pytest.raises(ModelError, match=r"no rate for external population \(node population 'LGN', "
                                         r"node_type_id 100\): pass rates="):
        network_from_builders([v1, lgn])
    bad = NetworkBuilder("V1")
    bad.add_nodes(model_type="population", dynamics_params=dict(POP, v_rest=0.0))
    with pytest.raises(ModelError, match="dynamics_params: unknown dynamics_params key 'v_rest'"):
        network_from_builders([bad])
    files = NetworkBuilder("V1")
    files.add_nodes(model_type="population", dynamics_params="missing.json")
    with pytest.raises(ModelError, match="dynamics_params file 'missing.json' not found in"):
        network_from_builders([files], components_dir=tmp_path)


# --------------------------------------------------------------------------- what a sweep spec passes (issue 12)
def test_network_from_builder_result_takes_the_forms_a_spec_writes(tmp_path):
    from sweeper.io.popnet import network_from_builder_result

    comps = tmp_path / "components"
    (comps / "population_models").mkdir(parents=True)
    (comps / "population_models" / "exc.json").write_text(json.dumps(POP))
    (comps / "population_models" / "inh.json").write_text(json.dumps({**POP, "tau_m": 0.01}))
    (tmp_path / "lgn.csv").write_text("gid firing_rate\n100 15.0\n")
    v1, lgn = e_i_network()
    reference = network_from_builders([v1, lgn], components_dir=comps, rates={("LGN", 100): 15.0},
                                      simulation=Simulation(0.0, 0.05, 0.001))
    spec_like = dict(components_dir="components", base_dir=tmp_path, simulation={"tf": 0.05, "dt": 0.001})
    for rates in ({"LGN": 15.0}, {"LGN": {100: 15.0}}, {"LGN": {"100": 15}}, {"LGN": "lgn.csv"},
                  {"LGN": {"file": "lgn.csv"}}):
        got = network_from_builder_result([v1, lgn], rates=rates, **spec_like)
        assert got == reference, rates
    assert network_from_builder_result(reference) is reference
    one = NetworkBuilder("V1")
    one.add_nodes(pop_name="e", model_type="population", dynamics_params=POP)
    assert [p.name for p in network_from_builder_result(one).populations] == ["e"]   # a single builder


def test_network_from_builder_result_errors(tmp_path):
    from sweeper.io.popnet import network_from_builder_result

    v1, lgn = e_i_network()
    comps = dict(components_dir=tmp_path)
    with pytest.raises(ModelError, match=r"network_from_builders: expected a sweeper Network, a NetworkBuilder or a "
                                         r"list of NetworkBuilders \(sweeper's or bmtk's\), got dict"):
        network_from_builder_result({"v1": v1})
    with pytest.raises(ModelError, match=r"rates: rates name node population\(s\) \['V2'\] that are not virtual"):
        network_from_builder_result([v1, lgn], rates={"V2": 1.0}, **comps)
    with pytest.raises(ModelError, match=r"simulation: unknown key\(s\) \['tstop'\] \(allowed: t0, tf, dt"):
        network_from_builder_result([v1, lgn], simulation={"tstop": 1500}, **comps)
    with pytest.raises(ModelError, match=r"simulation.tf: expected a number, got 'abc'"):
        network_from_builder_result([v1, lgn], simulation={"tf": "abc"}, **comps)
    with pytest.raises(ModelError, match=r"in a sweep spec: the components_dir key"):
        network_from_builder_result([v1, lgn], rates={"LGN": 1.0})
    with pytest.raises(ModelError, match=r"rates file not found: '.*missing.csv'"):
        network_from_builder_result([v1, lgn], rates={"LGN": "missing.csv"}, base_dir=tmp_path, **comps)
