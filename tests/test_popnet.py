"""PopNet simulation directories: config resolution, PopNet grouping, inputs, rates file, errors.

The three fixtures are real bmtk 1.2.0 PopNet directories with bmtk's own output
(tests/data/fixtures/*/expected/firing_rates.csv).
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sweeper.errors import ModelError
from sweeper.io.builder import NetworkBuilder
from sweeper.api import run_popnet as run_popnet_config
from sweeper.io.popnet import load_config, read_popnet_config, write_rates_file
from sweeper.model import ConstantRate, Dist, InternalPopulation

DATA = Path(__file__).parent / "data"
FIXTURES = DATA / "fixtures"
FIXTURE_NAMES = ["popnet_tutorial", "pop_2pops", "popnet_grouping"]


def copy_fixture(tmp_path, name):
    """A writable copy (runs write output/ next to config.json)."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def read_rates(path):
    """bmtk's rates file -> {key: (time strings, rates)} in file order."""
    out = {}
    for line in Path(path).read_text().splitlines():
        key, t, r = line.split(" ")
        ts, rs = out.setdefault(key, ([], []))
        ts.append(t)
        rs.append(float(r))
    return out


def edit_json(path, **changes):
    conf = json.loads(Path(path).read_text())
    for dotted, value in changes.items():
        node = conf
        *parents, last = dotted.split("__")
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    Path(path).write_text(json.dumps(conf))


# --------------------------------------------------------------------------- config files
def test_manifest_variables_and_child_merge(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(
        {"network": "./sub/net.json", "simulation": str(tmp_path / "sim.json"), "output": {"from": "parent"}}))
    (tmp_path / "sub" / "net.json").write_text(json.dumps({
        "manifest": {"$BASE_DIR": "${configdir}", "$NET": "$BASE_DIR/network", "$NUM": 3},
        "networks": {"nodes": [{"nodes_file": "$NET/a.h5", "n": "$NUM", "s": "x$NUM", "u": "${UNKNOWN}/q"}]},
        "output": {"from": "network"}}))
    (tmp_path / "sim.json").write_text(json.dumps({
        "manifest": {"$BASE_DIR": "${configdir}", "$OUT": "${BASE_DIR}/output"},
        "run": {"tstop": 10.0, "dt": 0.001}, "output": {"output_dir": "$OUT", "from": "simulation"}}))
    conf, origins = load_config(tmp_path / "config.json")
    entry = conf["networks"]["nodes"][0]
    assert entry["nodes_file"] == f"{tmp_path}/sub/network/a.h5"   # each child's own ${configdir}
    assert entry["n"] == 3 and entry["s"] == "x3"                    # typed when the whole string is one variable
    assert entry["u"] == "${UNKNOWN}/q"                              # unknown variables stay
    assert conf["output"] == {"output_dir": f"{tmp_path}/output", "from": "simulation"}  # simulation wins
    assert origins["run"] == str(tmp_path / "sim.json")
    assert origins["networks"] == str(tmp_path / "sub" / "net.json")


def test_cyclic_manifest_is_refused(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"manifest": {"$A": "$B/x", "$B": "$A/y"}, "run": {}}))
    with pytest.raises(ModelError, match=r"manifest.*cannot resolve manifest variables \['A', 'B'\]"):
        load_config(tmp_path / "c.json")


# --------------------------------------------------------------------------- conversion
def test_tutorial_is_the_reference_case_network():
    """The tutorial directory converts to exactly the network of the bmtk reference case."""
    cfg = read_popnet_config(FIXTURES / "popnet_tutorial" / "config.json")
    case = json.loads((DATA / "reference" / "cases" / "bmtk_tutorial_2pop_gmres.json").read_text())
    net = cfg.network
    assert [p.name for p in net.populations] == [p["name"] for p in case["populations"]]
    for pop, ref in zip(net.populations, case["populations"]):
        if ref["type"] == "external":
            assert pop.rate == ConstantRate(ref["rate"]["value"])
            continue
        assert isinstance(pop, InternalPopulation)
        assert pop.tau_m == Dist.parse(ref["tau_m"]) and pop.p0 == Dist.parse(ref["p0"])
        for key in ("v_min", "v_max", "dv", "update_method", "approx_order", "tol", "initial_firing_rate"):
            assert getattr(pop, key) == ref[key], key
        assert pop.norm == float(ref["norm"])
    assert [(c.source, c.target, c.nsyn, c.weights, c.delays) for c in net.connections] == [
        (r["source"], r["target"], r["nsyn"], Dist.parse(r["weights"]), Dist.parse(r["delays"]))
        for r in case["connections"]]
    sim = case["simulation"]
    assert (net.simulation.t0, net.simulation.tf, net.simulation.dt) == (sim["t0"], sim["tf"], sim["dt"])
    assert cfg.population_keys == {"excitatory": 100, "inhibitory": 101}
    assert cfg.rates_file == FIXTURES / "popnet_tutorial" / "output" / "firing_rates.csv"


def test_load_network_reads_popnet_configs():
    from sweeper.io import load_network

    path = FIXTURES / "pop_2pops" / "config.json"
    assert load_network(path) == read_popnet_config(path).network
    assert load_network(path.parent) == read_popnet_config(path).network


def test_grouping_uses_first_node_and_first_edge_row():
    """3+2 nodes become 2 populations; E->I takes the first row's weight (0.0001), not 0.005."""
    net = read_popnet_config(FIXTURES / "popnet_grouping" / "config.json").network
    assert [p.name for p in net.populations] == ["excitatory", "inhibitory", "LGN_tON"]
    conns = {(c.source, c.target): c for c in net.connections}
    assert list(conns) == [("inhibitory", "excitatory"), ("excitatory", "inhibitory"), ("LGN_tON", "excitatory")]
    assert conns[("excitatory", "inhibitory")].weights == Dist.delta(0.0001)
    assert conns[("excitatory", "inhibitory")].nsyn == 20


def test_bmtk_repo_network_files_give_the_same_network(tmp_path):
    d = copy_fixture(tmp_path, "pop_2pops")
    ours = read_popnet_config(d / "config.json").network
    conf = json.loads((d / "circuit_config.json").read_text())
    conf["manifest"]["$NETWORK_DIR"] = "$BASE_DIR/network_bmtk_repo"
    (d / "circuit_config.json").write_text(json.dumps(conf))
    repo = read_popnet_config(d / "config.json").network
    assert repo == ours
    assert [p.name for p in repo.populations] == ["excitatory", "inhibitory", "external_tON"]


def write_config(d: Path, builders, inputs, tstop=20.0, dt=0.001, **extra):
    """A minimal PopNet directory around NetworkBuilders (sweeper's builder writes bmtk's files)."""
    (d / "models").mkdir(parents=True, exist_ok=True)
    (d / "syn").mkdir(exist_ok=True)
    (d / "models" / "pop.json").write_text(json.dumps(
        {"tau_m": 0.02, "v_min": -0.01, "v_max": 0.01, "dv": 0.001, "update_method": "approx", "record": True}))
    for b in builders:
        b.build()
        b.save(output_dir=d / "network")
    nodes = [{"nodes_file": f"$BASE_DIR/network/{b.name}_nodes.h5",
              "node_types_file": f"$BASE_DIR/network/{b.name}_node_types.csv"} for b in builders]
    edges = [{"edges_file": str(p), "edge_types_file": str(p).replace("_edges.h5", "_edge_types.csv")}
             for p in sorted((d / "network").glob("*_edges.h5"))]
    conf = {"manifest": {"$BASE_DIR": "${configdir}"}, "target_simulator": "DiPDE",
            "run": {"tstop": tstop, "dt": dt},
            "components": {"population_models_dir": "$BASE_DIR/models", "synaptic_models_dir": "$BASE_DIR/syn"},
            "networks": {"nodes": nodes, "edges": edges}, "inputs": inputs,
            "output": {"output_dir": "$BASE_DIR/out", "rates_file": "rates.txt"}, **extra}
    (d / "config.json").write_text(json.dumps(conf))
    return d / "config.json"


def test_keys_are_global_across_internal_node_files(tmp_path):
    """Builders A and B both number their types from 100: PopNet merges them into one population."""
    a, b = NetworkBuilder("A"), NetworkBuilder("B")
    a.add_nodes(pop_name="a", model_type="population", dynamics_params="pop.json")
    b.add_nodes(pop_name="b", model_type="population", dynamics_params="pop.json")
    b.add_edges(target=a.nodes(), nsyns=3, syn_weight=0.002, delay=0.001)
    cfg = read_popnet_config(write_config(tmp_path, [a, b], {}))
    assert [p.name for p in cfg.network.populations] == ["a"]          # first node's pop_name
    assert [(c.source, c.target, c.nsyn) for c in cfg.network.connections] == [("a", "a", 3.0)]
    by_node = read_popnet_config(tmp_path / "config.json", group_by="node_id")
    assert list(by_node.population_keys.values()) == [0, 0]           # node ids, one population per node
    assert [(c.source, c.target) for c in by_node.network.connections] == [("b", "a")]


def test_external_keys_are_per_node_population_and_names_stay_unique(tmp_path):
    v1, lgn, tc = NetworkBuilder("V1"), NetworkBuilder("LGN"), NetworkBuilder("TC")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params="pop.json")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params="pop.json")   # pop_name clash
    for net in (lgn, tc):
        net.add_nodes(pop_name="drive", model_type="virtual")
        net.add_edges(target=v1.nodes(node_type_id=100), nsyns=5, syn_weight=0.001, delay=0.0)
    (tmp_path / "rates.csv").write_text("gid firing_rate\n100 7.5\n")
    (tmp_path / "spikes.csv").write_text("timestamps population node_ids\n10.0 TC 0\n30.0 TC 0\n20.0 TC 0\n")
    inputs = {"lgn": {"input_type": "csv", "module": "pop_rates", "rates": "$BASE_DIR/rates.csv", "node_set": "LGN"},
              "tc": {"input_type": "spikes", "module": "csv", "input_file": "$BASE_DIR/spikes.csv",
                     "node_set": "TC"}}
    cfg = read_popnet_config(write_config(tmp_path, [v1, lgn, tc], inputs))
    pops = {p.name: p for p in cfg.network.populations}
    assert list(pops) == ["100", "101", "LGN_drive", "TC_drive"]
    assert cfg.population_keys == {"100": 100, "101": 101}
    assert pops["LGN_drive"].rate == ConstantRate(7.5)
    assert pops["TC_drive"].rate == ConstantRate(1000.0 * 3 / 20.0)   # mean count / span of spikes (ms)
    assert [(c.source, c.target) for c in cfg.network.connections] == [("LGN_drive", "100"), ("TC_drive", "100")]


def test_virtual_population_without_input_is_dropped_and_reported(tmp_path):
    v1, lgn = NetworkBuilder("V1"), NetworkBuilder("LGN")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params="pop.json")
    lgn.add_nodes(pop_name="drive", model_type="virtual")
    lgn.add_edges(target=v1.nodes(), nsyns=5, syn_weight=0.001, delay=0.0)
    cfg = read_popnet_config(write_config(tmp_path, [v1, lgn], {}))
    assert [p.name for p in cfg.network.populations] == ["e"] and cfg.network.connections == ()
    assert cfg.unused_virtual_populations == ("LGN",)


def test_unrecorded_population_is_not_a_key(tmp_path):
    v1 = NetworkBuilder("V1")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params="pop.json")
    v1.add_nodes(pop_name="quiet", model_type="population", dynamics_params="quiet.json")
    config = write_config(tmp_path, [v1], {})
    (tmp_path / "models" / "quiet.json").write_text('{"record": false, "v_min": -0.01, "v_max": 0.01, "dv": 0.001}')
    cfg = read_popnet_config(config)
    assert cfg.population_keys == {"e": 100}
    assert cfg.network.population("quiet").record is False


# --------------------------------------------------------------------------- rates file
@pytest.mark.parametrize("name", ["popnet_tutorial", "pop_2pops"])
def test_rates_file_format_is_bmtk_byte_for_byte(tmp_path, name):
    """Written from bmtk's own numbers, the file is identical to bmtk's (times as str(ti*dt))."""
    expected = FIXTURES / name / "expected" / "firing_rates.csv"
    rates = read_rates(expected)
    dt = json.loads((FIXTURES / name / "fixture.json").read_text())["dt_s"]
    n = len(next(iter(rates.values()))[1])
    out = write_rates_file(tmp_path / "r.csv", [int(k) for k in rates], n, dt, [r for _, r in rates.values()])
    assert out.read_bytes() == expected.read_bytes()


# --------------------------------------------------------------------------- simulation (engine)
def compare_with_bmtk(out: Path, expected: Path, dt: float):
    got, want = read_rates(out), read_rates(expected)
    assert list(got) == list(want)
    for key in want:
        gt, gr = got[key]
        wt, wr = want[key]
        assert [round(float(t) / dt) for t in gt] == [round(float(t) / dt) for t in wt]
        assert np.max(np.abs(np.array(gr) - np.array(wr))) <= 1e-9, key


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_runs_through_sweeper_simulate(tmp_path, name):
    from sweeper.cli import main

    d = copy_fixture(tmp_path, name)
    result = CliRunner().invoke(main, ["simulate", str(d / "config.json")])
    assert result.exit_code == 0, result.output
    dt = json.loads((d / "fixture.json").read_text())["dt_s"]
    compare_with_bmtk(d / "output" / "firing_rates.csv", d / "expected" / "firing_rates.csv", dt)


def test_bmtk_repo_files_run_to_bmtk_output(tmp_path):
    d = copy_fixture(tmp_path, "pop_2pops")
    conf = json.loads((d / "circuit_config.json").read_text())
    conf["manifest"]["$NETWORK_DIR"] = "$BASE_DIR/network_bmtk_repo"
    (d / "circuit_config.json").write_text(json.dumps(conf))
    out = run_popnet_config(d / "config.json", out=tmp_path / "elsewhere" / "rates.txt")
    assert out == tmp_path / "elsewhere" / "rates.txt"
    compare_with_bmtk(out, d / "expected" / "firing_rates.csv", 0.002)


# --------------------------------------------------------------------------- bad input
def bad(tmp_path, match, name="popnet_tutorial", edit=None):
    d = copy_fixture(tmp_path, name)
    if edit:
        edit(d)
    with pytest.raises(ModelError, match=match) as info:
        read_popnet_config(d / "config.json")
    return str(info.value)


def test_missing_nodes_file_names_path_and_key(tmp_path):
    msg = bad(tmp_path, "file not found", edit=lambda d: (d / "network" / "V1_nodes.h5").unlink())
    assert "circuit_config.json: networks.nodes[0].nodes_file" in msg and msg.endswith("network/V1_nodes.h5")


def test_missing_rates_input_file_names_path_and_key(tmp_path):
    msg = bad(tmp_path, "rates file not found", edit=lambda d: (d / "lgn_rates.csv").unlink())
    assert "simulation_config.json: inputs.LGN_pop_rates.rates" in msg and "lgn_rates.csv" in msg


def test_missing_dynamics_params_file(tmp_path):
    msg = bad(tmp_path, "dynamics_params file not found",
              edit=lambda d: (d / "components" / "population_models" / "inh_model.json").unlink())
    assert "components.population_models_dir" in msg and msg.endswith("population_models/inh_model.json")


def test_missing_edge_dynamics_params_file(tmp_path):
    bad(tmp_path, r"edge dynamics_params file not found: .*ExcToInh.json",
        edit=lambda d: (d / "components" / "synaptic_models" / "ExcToInh.json").unlink())


def test_missing_config_file(tmp_path):
    with pytest.raises(ModelError, match=r"config file not found: .*nope.json"):
        read_popnet_config(tmp_path / "nope.json")
    with pytest.raises(ModelError, match=r"config.json: simulation: file not found: .*sim.json"):
        (tmp_path / "config.json").write_text('{"simulation": "sim.json"}')
        read_popnet_config(tmp_path / "config.json")


def test_unknown_dynamics_params_key_names_file_and_key(tmp_path):
    def edit(d):
        p = d / "components" / "population_models" / "exc_model.json"
        p.write_text(json.dumps({**json.loads(p.read_text()), "threshold": 0.02}))
    msg = bad(tmp_path, r"unknown dynamics_params key 'threshold' \(value 0.02\)", edit=edit)
    assert msg.startswith(str(tmp_path / "popnet_tutorial" / "components" / "population_models" / "exc_model.json"))


def test_bad_dynamics_params_value_names_file_and_key(tmp_path):
    def edit(d):
        p = d / "components" / "population_models" / "inh_model.json"
        p.write_text(json.dumps({**json.loads(p.read_text()), "tau_m": -0.01}))
    msg = bad(tmp_path, r"tau_m must be > 0, got -0.01", edit=edit)
    assert "inh_model.json" in msg


def test_missing_rate_for_external_population(tmp_path):
    msg = bad(tmp_path, r"no rate for external population 'LGN' with node_type_id 100",
              edit=lambda d: (d / "lgn_rates.csv").write_text("gid firing_rate\n101 15.0\n"))
    assert "inputs.LGN_pop_rates.rates" in msg


@pytest.mark.parametrize("key, value, match", [
    ("tstop", None, r"run.tstop: run.tstop \(ms\) is required"),
    ("tstop", -5, r"run.tstop: run.tstop must be a number > 0 \(ms\), got -5"),
    ("tstop", "1500", r"run.tstop must be a number > 0 \(ms\), got '1500'"),
    ("dt", None, r"run.dt: run.dt \(s\) is required"),
    ("dt", 0, r"run.dt must be a number > 0 \(s\), got 0"),
])
def test_bad_tstop_or_dt(tmp_path, key, value, match):
    msg = bad(tmp_path, match, edit=lambda d: edit_json(d / "simulation_config.json", **{f"run__{key}": value}))
    assert "simulation_config.json" in msg


def test_other_target_simulator_is_refused(tmp_path):
    bad(tmp_path, "target_simulator is 'SSN'",
        edit=lambda d: edit_json(d / "simulation_config.json", target_simulator="SSN"))


def test_mixed_virtual_population_is_refused(tmp_path):
    v1 = NetworkBuilder("V1")
    v1.add_nodes(model_type="population", dynamics_params="pop.json")
    v1.add_nodes(model_type="virtual")
    with pytest.raises(ModelError, match="mixes virtual and non-virtual nodes"):
        read_popnet_config(write_config(tmp_path, [v1], {}))


def test_unknown_node_set(tmp_path):
    bad(tmp_path, r"inputs.LGN_pop_rates.node_set: node_set 'XYZ' is neither a node population",
        edit=lambda d: edit_json(d / "simulation_config.json", inputs__LGN_pop_rates__node_set="XYZ"))


def test_cli_reports_popnet_errors_in_one_line(tmp_path):
    from sweeper.cli import main

    d = copy_fixture(tmp_path, "popnet_tutorial")
    (d / "network" / "LGN_V1_edges.h5").unlink()
    result = CliRunner().invoke(main, ["simulate", str(d / "config.json")])
    assert result.exit_code == 2
    assert "networks.edges[1].edges_file: file not found" in result.output
    assert "Traceback" not in result.output


def test_spikes_h5_input(tmp_path):
    """SONATA spikes: 2 nodes spiking 2 and 4 times over 50 ms -> 1000 * 3 / 50 Hz."""
    v1, lgn = NetworkBuilder("V1"), NetworkBuilder("LGN")
    v1.add_nodes(pop_name="e", model_type="population", dynamics_params="pop.json")
    lgn.add_nodes(N=3, pop_name="drive", model_type="virtual")
    lgn.add_edges(target=v1.nodes(), nsyns=5, syn_weight=0.001, delay=0.0)
    with h5py.File(tmp_path / "spikes.h5", "w") as h5:
        h5["spikes/LGN/node_ids"] = np.array([0, 1, 0, 1, 1, 1])
        h5["spikes/LGN/timestamps"] = np.array([10.0, 12.0, 20.0, 30.0, 50.0, 60.0])
    inputs = {"lgn": {"input_type": "spikes", "module": "sonata", "input_file": "$BASE_DIR/spikes.h5",
                      "node_set": {"population": "LGN"}}}
    cfg = read_popnet_config(write_config(tmp_path, [v1, lgn], inputs))
    assert cfg.network.population("LGN_drive").rate == ConstantRate(1000.0 * 3 / 50.0)


# --------------------------------------------------------------------------- mistakes that used to give tracebacks (issue 14)
def test_config_naming_itself_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"network": "config.json", "run": {"tstop": 1, "dt": 0.001}}))
    with pytest.raises(ModelError, match=r"config.json: network: .*config.json includes itself "
                                         r"\(config.json -> config.json\)"):
        read_popnet_config(tmp_path / "config.json")
    (tmp_path / "a.json").write_text(json.dumps({"network": "b.json"}))
    (tmp_path / "b.json").write_text(json.dumps({"simulation": "a.json"}))
    with pytest.raises(ModelError, match=r"b.json: simulation: .*includes itself \(a.json -> b.json -> a.json\)"):
        read_popnet_config(tmp_path / "a.json")


def test_doubling_manifest_is_refused_before_memory_runs_out(tmp_path):
    manifest = {"$A0": "x" * 10}
    manifest.update({f"$A{i}": f"$A{i - 1}$A{i - 1}" for i in range(1, 60)})
    (tmp_path / "config.json").write_text(json.dumps({"manifest": manifest, "run": {"tstop": 1, "dt": 0.001}}))
    with pytest.raises(ModelError, match=r"config.json: manifest.A\d+: expanding \$A\d+ makes a string of \d+ "
                                         r"characters, more than 1048576 \(io.manifest-max-chars\)"):
        load_config(tmp_path / "config.json")


def test_broken_node_sets_file_names_the_file(tmp_path):
    def edit(d):
        edit_json(d / "simulation_config.json", inputs__LGN_pop_rates__node_set="lgn")
        (d / "node_sets.json").write_text("{broken")
    msg = bad(tmp_path, r"node_sets.json: invalid JSON at line 1, column 2", edit=edit)
    assert "Traceback" not in msg

    def edit_pop(d):
        edit_json(d / "simulation_config.json", inputs__LGN_pop_rates__node_set="lgn")
        (d / "node_sets.json").write_text(json.dumps({"lgn": {"population": 5}}))
    bad(tmp_path / "b", r"inputs.LGN_pop_rates.node_set: a node set's population must be a name or a list of "
                        r"names, got 5", edit=edit_pop)


def test_string_node_ids_are_refused(tmp_path):
    def edit(d):
        with h5py.File(d / "network" / "LGN_nodes.h5", "r+") as h5:
            grp = h5["nodes"]["LGN"]
            n = len(grp["node_id"])
            del grp["node_id"]
            grp.create_dataset("node_id", data=[f"n{i}" for i in range(n)], dtype=h5py.string_dtype())
    msg = bad(tmp_path, r"LGN_nodes.h5: /nodes/LGN/node_id must hold integer ids, got object values such as",
              edit=edit)
    assert "\n" not in msg


def test_string_node_ids_in_a_spikes_csv_are_refused(tmp_path):
    d = copy_fixture(tmp_path, "popnet_tutorial")
    (d / "spikes.csv").write_text("timestamps node_ids\n1.0 a\n3.0 b\n")
    edit_json(d / "simulation_config.json",
              inputs__LGN_pop_rates={"input_type": "spikes", "module": "csv", "node_set": "LGN",
                                     "input_file": str(d / "spikes.csv")})
    with pytest.raises(ModelError, match=r"inputs.LGN_pop_rates.input_file: .*spikes.csv: node_ids must be numbers"):
        read_popnet_config(d / "config.json")


def test_rates_input_that_is_a_directory_or_fifo(tmp_path):
    import os
    d = copy_fixture(tmp_path, "popnet_tutorial")
    (d / "rates_dir").mkdir()
    os.mkfifo(d / "rates_fifo")
    for name, why in (("rates_dir", "is a directory"), ("rates_fifo", "is not a regular file")):
        edit_json(d / "simulation_config.json", inputs__LGN_pop_rates__rates=str(d / name))
        with pytest.raises(ModelError, match=rf"inputs.LGN_pop_rates.rates: rates file '.*{name}' {why}"):
            read_popnet_config(d / "config.json")


def test_output_rates_file_that_is_a_directory(tmp_path):
    from sweeper.cli import main

    d = copy_fixture(tmp_path, "popnet_tutorial")
    (d / "output" / "firing_rates.csv").mkdir(parents=True)
    with pytest.raises(ModelError, match=r"config.json: .*firing_rates.csv is a directory; output.rates_file must "
                                         r"name a file"):
        run_popnet_config(d / "config.json")
    res = CliRunner().invoke(main, ["simulate", str(d), "-o", str(d / "output")])
    assert res.exit_code == 2 and res.stderr == f"sweeper: error: {d / 'output'}: is a directory; -o must name a file\n"


def test_bad_pop_name_is_refused(tmp_path):
    v1 = NetworkBuilder("V1")
    v1.add_nodes(pop_name="e\nx", model_type="population", dynamics_params="pop.json")
    with pytest.raises(ModelError, match=r"V1_node_types.csv: node population 'V1', node_type_id 100: a population "
                                         r"name must be one line without control characters, got 'e\\nx'"):
        read_popnet_config(write_config(tmp_path, [v1], {}))


def test_input_files_list_what_the_config_reads(tmp_path):
    from sweeper.io.formats import guess_format, input_digest

    d = copy_fixture(tmp_path, "popnet_tutorial")
    (d / "stray.bin").write_bytes(b"\0" * 1000)          # not an input: does not change the fingerprint
    files = guess_format(d).input_files(d)
    names = {str(p.relative_to(d.resolve())) for p in files}
    assert {"config.json", "circuit_config.json", "simulation_config.json", "lgn_rates.csv", "node_sets.json",
            "network/V1_nodes.h5", "network/LGN_V1_edge_types.csv",
            "components/population_models/exc_model.json"} <= names
    assert "stray.bin" not in names and not any(n.startswith("expected/") for n in names)
    before = input_digest(d)
    (d / "stray.bin").write_bytes(b"\1" * 1000)
    assert input_digest(d) == before
    (d / "lgn_rates.csv").write_text("gid firing_rate\n100 16.0\n")
    assert input_digest(d) != before
