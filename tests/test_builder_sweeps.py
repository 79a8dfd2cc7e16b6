"""A bmtk-NetworkBuilder builder sweep (jobs/bmtk_builder_nsyn.yaml: the inhibitory nsyns, an
integer) under every launcher -- local threads, worker processes, mpiexec, `sweeper submit` on the
live Slurm, Slurm worker jobs -- gives identical stores, and the builder receives ints (it raises
TypeError otherwise, which would fail its points). The same network read from its SONATA files
gives the same traces."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from sweeper.store import DONE
from sweeper.sweep import Sweep, open_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "jobs"
SPEC = JOBS / "bmtk_builder_nsyn.yaml"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))
NSYNS = [0, 10, 20, 40]

pytestmark = pytest.mark.timeout(900)


def sh(cmd, *, env, cwd, timeout) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def assert_same_store(store, reference):
    """Every array equal, with the same dtypes; the nsyns coordinate is int64 in both."""
    got, want = zarr.open_group(str(store), mode="r"), zarr.open_group(str(reference), mode="r")
    assert sorted(got.array_keys()) == sorted(want.array_keys())
    for name in want.array_keys():
        a, b = got[name][:], want[name][:]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f" else (a == b).all(), name
    assert got["inh_nsyns"].dtype == np.int64


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, cluster_env):
    """Local threads through the CLI: the reference for the other launchers."""
    where = tmp_path_factory.mktemp("local")
    done = sh([SWEEPER, "run", SPEC, "-o", "local.zarr", "--workers", 2, "--no-progress"],
              env=cluster_env, cwd=where, timeout=400)
    assert done.returncode == 0, done.stderr
    return where / "local.zarr"


def test_local_threads_complete_with_integer_nsyns(local_store):
    status = zarr.open_group(str(local_store), mode="r")["status"][:]
    assert (status == DONE).all() and len(status) == 4
    ds = open_sweep(local_store, index=False)
    assert ds["inh_nsyns"].dtype == np.int64 and ds["inh_nsyns"].values.tolist() == NSYNS
    mean = ds["mean_rate"].sel(population="exc").values
    assert np.all(np.diff(mean) < 0)  # more inhibition, less excitatory firing


def test_worker_processes_give_the_same_store(local_store, cluster_env, tmp_path):
    done = sh([SWEEPER, "run", SPEC, "-o", "p.zarr", "--workers", 2, "--processes", "--no-progress"],
              env=cluster_env, cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr
    assert_same_store(tmp_path / "p.zarr", local_store)


@pytest.mark.mpi
def test_mpiexec_gives_the_same_store(require_mpi, local_store, cluster_env, tmp_path):
    done = sh([require_mpi, "-n", 4, SWEEPER, "run", SPEC, "-o", "mpi.zarr", "--cluster", "mpi", "--no-progress"],
              env=cluster_env, cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr
    assert "4 done, 0 failed, 0 pending of 4 points" in done.stdout
    assert_same_store(tmp_path / "mpi.zarr", local_store)


@pytest.mark.slurm
@pytest.mark.mpi
def test_sweeper_submit_gives_the_same_store(require_slurm, require_mpi, local_store, cluster_env, tmp_path):
    done = sh([SWEEPER, "submit", SPEC, "-o", "sub.zarr", "--time", "00:10:00", "--wait", "--timeout", 400],
              env=cluster_env, cwd=tmp_path, timeout=450)
    job = done.stdout.split()[0] if done.stdout.split() else "?"
    log = tmp_path / f"sub-slurm-{job}.out"
    assert done.returncode == 0, done.stderr + (log.read_text() if log.exists() else "")
    assert "4 done, 0 failed, 0 pending of 4 points" in log.read_text()
    assert_same_store(tmp_path / "sub.zarr", local_store)


@pytest.mark.slurm
def test_slurm_worker_jobs_give_the_same_store(require_slurm, local_store, cluster_env, tmp_path):
    done = sh([SWEEPER, "run", SPEC, "-o", "jq.zarr", "--cluster", "slurm", "--jobs", 2, "--interface", "lo",
               "--walltime", "00:10:00", "--no-progress"], env=cluster_env, cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr
    assert "Slurm cluster, 2 worker jobs" in done.stderr
    assert_same_store(tmp_path / "jq.zarr", local_store)


# --------------------------------------------------------------------------- builder vs SONATA files
def write_sonata(tmp_path: Path, inh_nsyns: int) -> Path:
    """The builder's network saved by bmtk, with a PopNet config that reads it as the spec does."""
    sys.path.insert(0, str(JOBS / "builders"))
    try:
        from sweeper.io.bmtk_compat import single_process
        with single_process():
            import bmtk_ei
            for b in bmtk_ei.build(inh_nsyns=inh_nsyns):
                b.save(output_dir=str(tmp_path / "network"))
    finally:
        sys.path.remove(str(JOBS / "builders"))
    shutil.copytree(JOBS / "builders" / "bmtk_components", tmp_path / "components")
    shutil.copy(JOBS / "builders" / "lgn_rates.csv", tmp_path / "lgn_rates.csv")
    nodes = [{"nodes_file": f"$NETWORK_DIR/{n}_nodes.h5", "node_types_file": f"$NETWORK_DIR/{n}_node_types.csv"}
             for n in ("V1", "LGN")]
    edges = [{"edges_file": f"$NETWORK_DIR/{s}_V1_edges.h5", "edge_types_file": f"$NETWORK_DIR/{s}_V1_edge_types.csv"}
             for s in ("V1", "LGN")]
    (tmp_path / "circuit_config.json").write_text(json.dumps({
        "manifest": {"$BASE_DIR": "${configdir}", "$NETWORK_DIR": "$BASE_DIR/network"},
        "components": {"population_models_dir": "$BASE_DIR/components"},
        "networks": {"nodes": nodes, "edges": edges}}))
    (tmp_path / "simulation_config.json").write_text(json.dumps({
        "manifest": {"$BASE_DIR": "${configdir}"}, "target_simulator": "DiPDE",
        "run": {"tstart": 0.0, "tstop": 50.0, "dt": 0.0005},
        "inputs": {"LGN_rates": {"input_type": "csv", "module": "pop_rates", "rates": "${BASE_DIR}/lgn_rates.csv",
                                 "node_set": "LGN"}}}))
    (tmp_path / "config.json").write_text(json.dumps({"network": "./circuit_config.json",
                                                      "simulation": "./simulation_config.json"}))
    return tmp_path / "config.json"


def test_builder_and_its_sonata_files_give_identical_traces(tmp_path):
    from distributed import Client, LocalCluster

    config = write_sonata(tmp_path / "sonata", inh_nsyns=10)
    from_files = Sweep(network=str(config), simulation={"tf": 0.05, "dt": 0.0005},
                       parameters={"inh_nsyns": {"path": "connections[inh->exc].nsyn", "values": [10]}})
    from_builder = Sweep.from_text(SPEC.read_text().replace("[0, 10, 20, 40]", "[10]"), base_dir=JOBS)
    assert from_files.base_network().connections == from_builder.base_network().connections
    assert from_files.base_network().populations == from_builder.base_network().populations
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, \
            Client(lc) as client:
        assert run_sweep(from_files, tmp_path / "files.zarr", client=client).ok
        assert run_sweep(from_builder, tmp_path / "builder.zarr", client=client).ok
    a, b = open_sweep(tmp_path / "files.zarr", index=False), open_sweep(tmp_path / "builder.zarr", index=False)
    assert list(a["population"].values) == list(b["population"].values) == ["exc", "inh"]
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    np.testing.assert_array_equal(a["rates"].values, b["rates"].values)
    assert np.max(a["rates"].values) > 1.0


BUILDERS = '''
from sweeper.model import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation, parse_rate


def net(rate):
    e = InternalPopulation("e", tau_m=Dist.delta(0.02), v_min=-0.02, v_max=0.02, dv=0.0004, update_method="approx")
    conn = Connection("bg", "e", 10, Dist.delta(0.002), Dist.delta(0.001))
    return Network((ExternalPopulation("bg", parse_rate(float(rate))), e), (conn,), Simulation(0.0, 0.02, 0.0002))


def seeded(rate=100.0, replicate=0):  # a replicate changes the network (as a seed would)
    return net(rate + 10.0 * replicate)


def plain(rate=100.0):  # takes no replicate: called without it
    return net(rate)
'''


def test_builders_that_take_replicate_get_it_and_others_are_called_without(tmp_path):
    from distributed import Client, LocalCluster

    (tmp_path / "reps.py").write_text(BUILDERS)
    spec = "builder: reps:{fn}\nparameters:\n  rate: {{values: [{rates}]}}\naxes:\n  - grid: [rate]\nreplicates: {n}\n"
    sweeps = {"seeded": Sweep.from_text(spec.format(fn="seeded", rates="100.0", n=2), base_dir=tmp_path),
              "plain": Sweep.from_text(spec.format(fn="plain", rates="100.0, 110.0", n=2), base_dir=tmp_path)}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, \
            Client(lc) as client:
        for name, sweep in sweeps.items():
            assert run_sweep(sweep, tmp_path / f"{name}.zarr", client=client).ok
    seeded = open_sweep(tmp_path / "seeded.zarr")["rates"]
    plain = open_sweep(tmp_path / "plain.zarr")["rates"]
    # replicate 1 of `seeded` is the network at rate 110; `plain`'s replicates are identical
    np.testing.assert_array_equal(seeded.sel(rate=100.0, replicate=1).values, plain.sel(rate=110.0, replicate=0).values)
    np.testing.assert_array_equal(seeded.sel(rate=100.0, replicate=0).values, plain.sel(rate=100.0, replicate=1).values)
    assert not np.array_equal(seeded.sel(replicate=0).values, seeded.sel(replicate=1).values)
