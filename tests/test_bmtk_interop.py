"""Interop with real bmtk 1.2.0: its NetworkBuilder's networks run in sweeper, and its SONATA
reader reads what sweeper's builder writes. (bmtk's PopNet simulator itself needs dipde,
which is not installable; the fixtures hold its output instead.)"""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from bmtk.builder import NetworkBuilder as BmtkBuilder
from bmtk.utils.sonata import File

from sweeper.io import load_network, save_network
from sweeper.io.builder import NetworkBuilder
from sweeper.io.popnet import network_from_builders
from sweeper.model import (Connection, ConstantRate, Dist, ExternalPopulation, InternalPopulation, Network,
                           Simulation)

SMALL = {"tau_m": 0.02, "v_min": -0.01, "v_max": 0.01, "dv": 0.0005, "update_method": "approx", "record": True}


def grouping_network(Builder):
    """The popnet_grouping probe network, written with either builder class."""
    v1 = Builder("V1")
    v1.add_nodes(N=3, pop_name="excitatory", ei="e", location="VisL4", model_type="population",
                 model_template="dipde:Internal", dynamics_params="exc_model.json")
    v1.add_nodes(N=2, pop_name="inhibitory", ei="i", model_type="population",
                 model_template="dipde:Internal", dynamics_params="inh_model.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, syn_weight=0.0001, delay=0.002,
                 connection_rule=lambda s, t: 20 if (s.node_id, t.node_id) == (0, 3) else 0,
                 dynamics_params="ExcToInh.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, syn_weight=0.005, delay=0.002,
                 connection_rule=lambda s, t: 0 if (s.node_id, t.node_id) == (0, 3) else 20,
                 dynamics_params="ExcToInh.json")
    v1.add_edges(source={"ei": "i"}, target={"ei": "e"}, syn_weight=-0.002, nsyns=10, delay=0.002,
                 dynamics_params="InhToExc.json")
    lgn = Builder("LGN")
    lgn.add_nodes(N=2, pop_name="tON", ei="e", model_type="virtual")
    lgn.add_edges(target=v1.nodes(ei="e"), syn_weight=0.0025, nsyns=10, delay=0.002,
                  dynamics_params="input_ExcToExc.json")
    v1.build()
    lgn.build()
    return v1, lgn


def h5_contents(path):
    out = {"/": {k: np.asarray(v).tolist() for k, v in h5py.File(path).attrs.items()}}
    with h5py.File(path) as h5:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in obj.attrs.items()}
                out[name] = (obj.dtype.str, obj[()].tolist(), attrs)
            else:
                out[name] = "group"
        h5.visititems(visit)
    return out


def test_sweeper_builder_writes_what_bmtk_builder_writes(tmp_path):
    for Builder, d in ((BmtkBuilder, tmp_path / "bmtk"), (NetworkBuilder, tmp_path / "sweeper")):
        for b in grouping_network(Builder):
            b.save(output_dir=d)
    files = sorted(p.name for p in (tmp_path / "bmtk").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "sweeper").iterdir())
    assert len(files) == 8
    for name in files:
        a, b = tmp_path / "bmtk" / name, tmp_path / "sweeper" / name
        if name.endswith(".h5"):   # same datasets, dtypes, values, row order and attributes
            assert h5_contents(a) == h5_contents(b), name
        else:                      # bmtk's column order is a random set order; content must match
            assert a.read_bytes().endswith(b"\r\n") and b.read_bytes().endswith(b"\r\n")
            ta, tb = pd.read_csv(a, sep=" "), pd.read_csv(b, sep=" ")
            assert list(ta.columns[:1]) == list(tb.columns[:1])
            pd.testing.assert_frame_equal(ta.sort_index(axis=1), tb.sort_index(axis=1))


def small_builders(Builder):
    v1 = Builder("V1")
    v1.add_nodes(N=2, pop_name="exc", ei="e", model_type="population", dynamics_params="exc.json")
    v1.add_nodes(N=1, pop_name="inh", ei="i", model_type="population", dynamics_params="inh.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, nsyns=20, syn_weight=0.002, delay=0.002)
    v1.add_edges(source={"ei": "i"}, target={"ei": "e"}, nsyns=10, syn_weight=-0.001, delay=0.001)
    v1.add_edges(source={"ei": "e"}, target={"ei": "e"}, nsyns=5, syn_weight=0.001, delay=0.0)
    lgn = Builder("LGN")
    lgn.add_nodes(N=3, pop_name="tON", model_type="virtual")
    lgn.add_edges(target=v1.nodes(ei="e"), nsyns=10, syn_weight=0.0025, delay=0.002)
    return [v1, lgn]


def equivalent_network(sim):
    exc = InternalPopulation("exc", tau_m=Dist.delta(0.02), v_min=-0.01, v_max=0.01, dv=0.0005)
    inh = InternalPopulation("inh", tau_m=Dist.delta(0.01), v_min=-0.01, v_max=0.01, dv=0.0005)
    return Network(
        (exc, inh, ExternalPopulation("LGN_tON", ConstantRate(20.0))),
        (Connection("inh", "exc", 10, Dist.delta(-0.001), Dist.delta(0.001)),   # rows are target-sorted
         Connection("exc", "exc", 5, Dist.delta(0.001), Dist.delta(0.0)),
         Connection("exc", "inh", 20, Dist.delta(0.002), Dist.delta(0.002)),
         Connection("LGN_tON", "exc", 10, Dist.delta(0.0025), Dist.delta(0.002))),
        sim)


def test_bmtk_built_network_simulates_like_the_sweeper_network(tmp_path):
    from sweeper.engine import simulate

    (tmp_path / "exc.json").write_text(json.dumps(SMALL))
    (tmp_path / "inh.json").write_text(json.dumps({**SMALL, "tau_m": 0.01}))
    sim = Simulation(0.0, 0.1, 0.0005)
    kw = dict(components_dir=tmp_path, rates={("LGN", 100): 20.0}, simulation=sim)
    from_bmtk = network_from_builders(small_builders(BmtkBuilder), **kw)
    from_sweeper = network_from_builders(small_builders(NetworkBuilder), **kw)
    expected = equivalent_network(sim)
    assert from_bmtk.populations == from_sweeper.populations == expected.populations
    assert from_bmtk.connections == from_sweeper.connections == expected.connections

    save_network(expected, tmp_path / "equivalent.json")   # sweeper's own network file
    assert load_network(tmp_path / "equivalent.json") == expected
    got, want = simulate(from_bmtk), simulate(load_network(tmp_path / "equivalent.json"))
    assert list(got.names) == list(want.names) == ["exc", "inh"]
    np.testing.assert_array_equal(got.t, want.t)
    np.testing.assert_allclose(got.rates, want.rates, rtol=0, atol=1e-12)
    assert np.max(got.rates) > 1.0   # the drive does something


def test_bmtk_reads_sweeper_builder_files(tmp_path):
    v1, lgn = grouping_network(NetworkBuilder)
    extra = NetworkBuilder("X")
    extra.add_nodes(N=2, x=[0.5, 1.5], model_type="population", dynamics_params="exc_model.json")
    cm = extra.add_edges(connection_rule=lambda s, t: int(s.node_id != t.node_id), delay=0.001)
    cm.add_properties("syn_weight", rule=lambda s, t: 0.001 * (s.node_id + 1))
    for b in (v1, lgn, extra):
        b.save(output_dir=tmp_path)
    def sonata(h5, csv):  # one File per pair: type ids restart at 100 in every builder's files
        return File(data_files=str(tmp_path / h5), data_type_files=str(tmp_path / csv))

    nodes = {n.node_id: n for n in sonata("V1_nodes.h5", "V1_node_types.csv").nodes["V1"]}
    assert sorted(nodes) == [0, 1, 2, 3, 4]
    for ours in v1.nodes():
        theirs = nodes[ours.node_id]
        assert theirs.node_type_id == ours.node_type_id
        props = dict(theirs.node_type_properties)
        for key in ("pop_name", "ei", "model_type", "model_template", "dynamics_params"):
            assert props[key] == ours[key]
        assert props["location"] == ours.get("location")        # NULL reads back as None
    assert [n["x"] for n in sonata("X_nodes.h5", "X_node_types.csv").nodes["X"]] == [0.5, 1.5]

    edges = sonata("V1_V1_edges.h5", "V1_V1_edge_types.csv").edges["V1_to_V1"]
    assert (edges.source_population, edges.target_population) == ("V1", "V1")
    theirs = [(e.source_node_id, e.target_node_id, e.edge_type_id, e["nsyns"], e["syn_weight"], e["delay"],
               e["dynamics_params"]) for e in edges]
    ours = [(e.source_node_id, e.target_node_id, e.edge_type_id, e["nsyns"], e["syn_weight"], e["delay"],
             e["dynamics_params"]) for e in v1.edges()]
    assert theirs == ours and len(ours) == 12
    assert sorted(e.source_node_id for e in edges.get_target(3)) == [0, 1, 2]      # via the indices
    assert sorted(e.target_node_id for e in edges.get_source(4)) == [0, 1, 2]
    lgn_edges = sonata("LGN_V1_edges.h5", "LGN_V1_edge_types.csv").edges["LGN_to_V1"]
    assert {(e.source_node_id, e.target_node_id, e["nsyns"]) for e in lgn_edges} == \
        {(s, t, 10) for s in (0, 1) for t in (0, 1, 2)}
    per_edge = sorted((e.source_node_id, e.target_node_id, e["syn_weight"]) for e in sonata("X_X_edges.h5", "X_X_edge_types.csv").edges["X_to_X"])
    assert per_edge == [(0, 1, 0.001), (1, 0, 0.002)]


# --------------------------------------------------------------------------- bmtk and MPI (issue 12)
def test_single_process_hides_mpi_from_bmtk_and_restores_it():
    import sys

    import bmtk.builder.builder_utils as bu
    from bmtk.builder.network_adaptors import network as bmtk_network

    from sweeper.io.bmtk_compat import single_process

    before = (bu.comm, bu.mpi_rank, bu.mpi_size, bu.barrier, bmtk_network.barrier, sys.modules.get("mpi4py"))
    assert before[0] is not None, "bmtk found mpi4py at import (the case that hangs under MPI)"
    with single_process():
        with single_process():                           # re-entrant
            assert (bu.comm, bu.mpi_rank, bu.mpi_size) == (None, 0, 1)
            assert bu.barrier() is None and bmtk_network.barrier is bu.barrier
            with pytest.raises(ImportError):
                import mpi4py  # noqa: F401
        assert bu.comm is None                          # still inside the outer context
    assert (bu.comm, bu.mpi_rank, bu.mpi_size, bu.barrier, bmtk_network.barrier,
            sys.modules.get("mpi4py")) == before
    from mpi4py import MPI
    assert MPI.COMM_WORLD is bu.comm


MPI_SCRIPT = '''
import json, sys
from mpi4py import MPI
if sys.argv[1] == "imported-before":
    from bmtk.builder import NetworkBuilder           # bound to COMM_WORLD of size 2
from sweeper.io.bmtk_compat import single_process
from sweeper.io.netfile import network_to_dict
from sweeper.io.popnet import network_from_builder_result

rank = MPI.COMM_WORLD.Get_rank()
if rank == 1:                                         # one rank builds alone, as a sweep worker does
    with single_process():
        from bmtk.builder import NetworkBuilder
        sys.path.insert(0, sys.argv[3])
        from builders_for_mpi import build
        net = network_from_builder_result(build(NetworkBuilder), components_dir="components",
                                          base_dir=sys.argv[3], rates={"LGN": 20.0},
                                          simulation={"tf": 0.1, "dt": 0.0005})
    with open(sys.argv[2], "w") as fh:
        json.dump(network_to_dict(net), fh)
'''

BUILDERS_MODULE = '''
def build(Builder):
    v1 = Builder("V1")
    v1.add_nodes(N=2, pop_name="exc", ei="e", model_type="population", dynamics_params="exc.json")
    v1.add_nodes(N=1, pop_name="inh", ei="i", model_type="population", dynamics_params="inh.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, nsyns=20, syn_weight=0.002, delay=0.002)
    v1.add_edges(source={"ei": "i"}, target={"ei": "e"}, nsyns=10, syn_weight=-0.001, delay=0.001)
    v1.add_edges(source={"ei": "e"}, target={"ei": "e"}, nsyns=5, syn_weight=0.001, delay=0.0)
    lgn = Builder("LGN")
    lgn.add_nodes(N=3, pop_name="tON", model_type="virtual")
    lgn.add_edges(target=v1.nodes(ei="e"), nsyns=10, syn_weight=0.0025, delay=0.002)
    v1.build()
    lgn.build()
    return [v1, lgn]
'''


@pytest.mark.parametrize("when", ["imported-before", "imported-inside"])
def test_bmtk_builder_on_one_rank_of_an_mpi_job(tmp_path, require_mpi, when):
    """Without single_process, bmtk's add_nodes waits in an MPI allgather for ranks that never come."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from sweeper.io.netfile import network_from_dict

    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "exc.json").write_text(json.dumps(SMALL))
    (tmp_path / "components" / "inh.json").write_text(json.dumps({**SMALL, "tau_m": 0.01}))
    (tmp_path / "builders_for_mpi.py").write_text(BUILDERS_MODULE)
    (tmp_path / "run.py").write_text(MPI_SCRIPT)
    out = tmp_path / "net.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([require_mpi, "-n", "2", sys.executable, str(tmp_path / "run.py"), when, str(out),
                             str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
        pytest.fail(f"the MPI job did not finish (bmtk waited for the other rank?):\n{output}")
    assert proc.returncode == 0, output
    got = network_from_dict(json.loads(out.read_text()))
    expected = equivalent_network(Simulation(0.0, 0.1, 0.0005))
    assert got.populations == expected.populations and got.connections == expected.connections
    assert got.simulation == expected.simulation


def test_bmtk_builder_equals_its_saved_sonata_directory(tmp_path):
    """network_from_builders(bmtk builders) is the Network PopNet's reading of their saved files gives."""
    from sweeper.engine import simulate
    from sweeper.io.popnet import read_popnet_config

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "exc.json").write_text(json.dumps(SMALL))
    (tmp_path / "models" / "inh.json").write_text(json.dumps({**SMALL, "tau_m": 0.01}))
    from_builders = network_from_builders(small_builders(BmtkBuilder), components_dir=tmp_path / "models",
                                          rates={"LGN": 20.0}, simulation={"tf": 0.05, "dt": 0.0005})
    for b in small_builders(BmtkBuilder):   # a second, identical set: bmtk cannot save a builder twice
        b.build()
        b.save(output_dir=tmp_path / "network")
    (tmp_path / "lgn.csv").write_text("gid firing_rate\n100 20.0\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "manifest": {"$BASE": "${configdir}"}, "run": {"tstop": 50.0, "dt": 0.0005},
        "components": {"population_models_dir": "$BASE/models"},
        "networks": {"nodes": [{"nodes_file": f"$BASE/network/{n}_nodes.h5",
                                "node_types_file": f"$BASE/network/{n}_node_types.csv"} for n in ("V1", "LGN")],
                     "edges": [{"edges_file": f"$BASE/network/{n}_edges.h5",
                                "edge_types_file": f"$BASE/network/{n}_edge_types.csv"} for n in ("V1_V1", "LGN_V1")]},
        "inputs": {"lgn": {"input_type": "csv", "rates": "$BASE/lgn.csv", "node_set": "LGN"}}}))
    from_files = read_popnet_config(tmp_path / "config.json").network
    assert from_files.populations == from_builders.populations
    assert from_files.connections == from_builders.connections
    assert from_files.simulation == from_builders.simulation
    a, b = simulate(from_builders), simulate(from_files)
    np.testing.assert_array_equal(a.rates, b.rates)
