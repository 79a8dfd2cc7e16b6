"""A store knows which code made it: changed builder code or network files are refused by name
(accepted with --accept-changed, then in the history); parameter types survive the whole way;
builders may be Python callables, also from a notebook."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeper.errors import SpecError, StoreError
from sweeper.model import ConstantRate, Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
from sweeper.store import DONE, SweepStore
from sweeper.sweep import Sweep, open_sweep, prepare_store, run_sweep
from sweeper.sweep.provenance import read as read_history

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "jobs"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))

pytestmark = pytest.mark.timeout(900)


def sh(cmd, *, env, cwd, timeout=400) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


@pytest.fixture
def job(tmp_path):
    """A copy of the bmtk builder example (spec, builder, components, rate table) to edit."""
    shutil.copytree(JOBS / "builders", tmp_path / "builders", ignore=shutil.ignore_patterns("__pycache__"))
    spec = tmp_path / "nsyn.yaml"
    spec.write_text((JOBS / "bmtk_builder_nsyn.yaml").read_text().replace("[0, 10, 20, 40]", "[10, 20]"))
    return spec


def edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_changed_builder_line_is_refused_by_name_and_accepted_with_the_flag(job, cluster_env, tmp_path):
    run = [SWEEPER, "run", job, "-o", "s.zarr", "--workers", 1, "--no-progress"]
    assert sh(run, env=cluster_env, cwd=tmp_path).returncode == 0
    edit(tmp_path / "builders" / "bmtk_ei.py", "nsyns=5, syn_weight=0.001", "nsyns=5, syn_weight=0.0011")

    refused = sh(run, env=cluster_env, cwd=tmp_path)     # resuming with the new code
    assert refused.returncode == 2
    assert "builder builders/bmtk_ei.py changed since the store was made" in refused.stderr
    assert "--accept-changed" in refused.stderr
    edit(job, "[10, 20]", "[10, 20, 30]")
    refused = sh(run, env=cluster_env, cwd=tmp_path)     # extending with it
    assert refused.returncode == 2 and "bmtk_ei.py changed" in refused.stderr
    assert SweepStore.open(tmp_path / "s.zarr").npoints == 2

    accepted = sh(run + ["--accept-changed"], env=cluster_env, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert "3 done, 0 failed, 0 pending of 3 points (1 computed" in accepted.stdout
    history = sh([SWEEPER, "show", "s.zarr", "--history"], env=cluster_env, cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    assert "ACCEPTED: builder builders/bmtk_ei.py changed since the store was made" in history.stdout
    assert "run 1" in history.stdout and "run 2" in history.stdout and "run 3" not in history.stdout
    assert "--accept-changed" in history.stdout and "added 1 point(s)" in history.stdout
    assert sh(run, env=cluster_env, cwd=tmp_path).returncode == 0   # the new code is now the store's


def test_submit_refuses_changed_code_before_queueing_a_job(job, cluster_env, tmp_path):
    prepare_store(Sweep.from_file(job), tmp_path / "s.zarr")
    edit(tmp_path / "builders" / "bmtk_ei.py", "nsyns=10, syn_weight=0.0025", "nsyns=11, syn_weight=0.0025")
    refused = sh([SWEEPER, "submit", job, "-o", "s.zarr", "--time", "00:01:00"], env=cluster_env, cwd=tmp_path)
    assert refused.returncode == 2 and "builder builders/bmtk_ei.py changed" in refused.stderr
    assert not list(tmp_path.glob("*slurm*"))


def test_changed_rate_table_is_refused_by_name(job, tmp_path):
    sweep = Sweep.from_file(job)
    prepare_store(sweep, tmp_path / "s.zarr")
    edit(tmp_path / "builders" / "lgn_rates.csv", "100 20.0", "100 25.0")
    with pytest.raises(StoreError, match="network input builders/lgn_rates.csv changed since the store was made"):
        prepare_store(Sweep.from_file(job), tmp_path / "s.zarr")
    st = prepare_store(Sweep.from_file(job), tmp_path / "s.zarr", accept_changed=True)
    assert "builders/lgn_rates.csv" in str(st.provenance["accepted"])


def test_changed_popnet_input_file_and_imported_module_are_named(tmp_path):
    shutil.copytree(JOBS / "networks" / "popnet_tutorial", tmp_path / "net",
                    ignore=shutil.ignore_patterns("output"))
    sweep = Sweep(network="net/config.json", base_dir=tmp_path, simulation={"tf": 0.002},
                  parameters={"r": {"path": "inputs.LGN_tON.rate", "values": [10.0]}})
    prepare_store(sweep, tmp_path / "s.zarr")
    edit(tmp_path / "net" / "lgn_rates.csv", "15.0", "16.0")
    with pytest.raises(StoreError, match=r"network input net/lgn_rates.csv changed") as info:
        prepare_store(sweep, tmp_path / "s.zarr")
    assert "different spec" not in str(info.value)

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "helper.py").write_text("TF = 0.01\n")
    (tmp_path / "b" / "mod.py").write_text(
        "from helper import TF\nfrom ei_builder import build as ei\n\ndef build(g=4.0):\n    return ei(g=g, tf=TF)\n")
    shutil.copy(JOBS / "builders" / "ei_builder.py", tmp_path / "b" / "ei_builder.py")
    spec = dict(builder="mod:build", builder_path="b", parameters={"g": {"values": [4.0]}})
    prepare_store(Sweep(spec, base_dir=tmp_path), tmp_path / "b.zarr")
    edit(tmp_path / "b" / "helper.py", "0.01", "0.02")
    with pytest.raises(StoreError, match=r"builder module b/helper.py changed since the store was made"):
        prepare_store(Sweep(spec, base_dir=tmp_path), tmp_path / "b.zarr")


# --------------------------------------------------------------------------- parameter types
def tiny(n: int = 1, flag: bool = False, label: str = "a", tf: float = 0.01) -> Network:
    """One population driven by an input; refuses arguments of the wrong type."""
    if type(n) is not int or type(flag) is not bool or type(label) is not str:
        raise TypeError(f"got {type(n).__name__} n, {type(flag).__name__} flag, {type(label).__name__} label")
    e = InternalPopulation("e", tau_m=Dist.delta(0.02), v_min=-0.01, v_max=0.01, dv=0.001, update_method="approx")
    rate = 100.0 * n + (50.0 if flag else 0.0) + (25.0 if label == "b" else 0.0)
    ext = ExternalPopulation("ext", ConstantRate(rate))
    conn = Connection("ext", "e", 10, Dist.delta(0.002), Dist.delta(0.0))
    return Network((e, ext), (conn,), Simulation(0.0, tf, 0.001), name="tiny")


TYPED = {"n": {"values": [1, 2]}, "flag": {"values": [True, False]}, "label": {"values": ["a", "b"]}}


def test_callable_builder_gets_ints_bools_and_strings_in_worker_processes(tmp_path, client):
    sweep = Sweep(builder=tiny, parameters=TYPED)
    table = sweep.points()
    assert (table["n"].dtype, table["flag"].dtype, table["label"].dtype) == (np.int64, np.bool_, object)
    summary = run_sweep(sweep, tmp_path / "s.zarr", client=client)
    assert summary.ok, summary.failures
    st = SweepStore.open(tmp_path / "s.zarr")
    assert st.meta["recipe"]["builder"] == "test_provenance:tiny"
    assert st.meta["identity"]["builder"]["file"].endswith("test_provenance.py")
    ds = open_sweep(tmp_path / "s.zarr", index=False)
    assert ds["n"].dtype == np.int64 and ds["flag"].dtype == np.bool_ and ds["label"].dtype.kind in "OUT"
    assert ds["n"].values.tolist() == [1] * 4 + [2] * 4
    assert ds["flag"].values.tolist() == [True, True, False, False] * 2
    assert [str(x) for x in ds["label"].values] == ["a", "b"] * 4
    assert len(set(ds["mean_rate"].values[:, 0].round(9))) == 8
    indexed = open_sweep(tmp_path / "s.zarr")
    assert int(indexed.sel(n=2, flag=True, label="b")["status"].values) == DONE


def test_local_closure_builder_is_shipped_by_value(tmp_path, client):
    offset = 1

    def local(n: int):  # not importable by name: Dask sends its code
        return tiny(n=n + offset)

    summary = run_sweep(Sweep(builder=local, parameters={"n": {"values": [1, 2]}}), tmp_path / "c.zarr",
                        client=client)
    assert summary.ok, summary.failures
    meta = SweepStore.open(tmp_path / "c.zarr").meta
    assert meta["recipe"]["builder"].endswith("<locals>.local") and meta["recipe"]["callable_builder"]


def test_declared_and_inferred_types(tmp_path):
    net = tmp_path / "net.json"
    net.write_text(Path(JOBS / "networks" / "single_population.json").read_text())
    base = Sweep(network=str(net), parameters={"x": {"path": "simulation.tf", "values": [0.1]}}).base_network()
    conn = f"connections[{base.connections[0].source}->{base.connections[0].target}].nsyn"
    sweep = Sweep(network=str(net), parameters={
        "k": {"path": conn, "values": [5, 10]},                 # integral values into nsyn: int
        "k2": {"path": conn.replace("nsyn", "weight"), "values": [1, 2]},  # weights are floats
    }, axes=[{"zip": ["k", "k2"]}])
    table = sweep.points()
    assert table["k"].dtype == np.int64 and table["k2"].dtype == np.float64
    typed = Sweep(builder=tiny, parameters={"n": {"linspace": [1, 3, 3], "type": "int"}})
    assert typed.points()["n"].tolist() == [1, 2, 3] and typed.points()["n"].dtype == np.int64
    floats = Sweep(builder=tiny, parameters={"tf": {"values": [1, 2], "type": "float"}})
    assert floats.points()["tf"].dtype == np.float64
    with pytest.raises(SpecError, match="type int needs integral numbers, got 1.5"):
        Sweep(builder=tiny, parameters={"n": {"values": [1, 1.5], "type": "int"}})


# --------------------------------------------------------------------------- notebooks
NOTEBOOK_CELLS = [
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})",
    '''from distributed import Client, LocalCluster
from sweeper.model import ConstantRate, Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
from sweeper.sweep import Sweep, run_sweep

def build(n: int):
    if type(n) is not int:
        raise TypeError(type(n).__name__)
    e = InternalPopulation("e", tau_m=Dist.delta(0.02), v_min=-0.01, v_max=0.01, dv=0.001, update_method="approx")
    ext = ExternalPopulation("ext", ConstantRate(100.0 * n))
    return Network((e, ext), (Connection("ext", "e", 10, Dist.delta(0.002), Dist.delta(0.0)),),
                   Simulation(0.0, 0.01, 0.001))''',
    '''with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \\
        Client(lc) as client:
    summary = run_sweep(Sweep(builder=build, parameters={"n": {"values": [1, 2, 3]}}), STORE, client=client)
print("RESULT", summary.ok, summary.counts["done"])''',
]


def test_callable_builder_from_a_notebook(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    store = tmp_path / "nb.zarr"
    cells = [NOTEBOOK_CELLS[0] + f"\nSTORE = {str(store)!r}"] + NOTEBOOK_CELLS[1:]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(tmp_path))
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    assert "RESULT True 3" in out
    st = SweepStore.open(store)
    assert st.meta["recipe"]["builder"] == "__main__:build"
    assert st.meta["identity"]["builder"]["source"]       # a notebook cell: its source is hashed
    assert read_history(store)[0]["identity"]["builder"]["ref"] == "__main__:build"
    with pytest.raises(SpecError, match="given as a Python callable"):   # by name it cannot be found
        from sweeper.sweep.recipe import Recipe
        Recipe.from_dict(st.meta["recipe"]).builder_function


def test_store_without_identity_gets_one_on_its_next_run(job, tmp_path, cluster_env):
    st = prepare_store(Sweep.from_file(job), tmp_path / "s.zarr")
    meta = st.meta
    del meta["identity"]                      # as a store made before identities were kept
    st.group.attrs["sweeper"] = meta
    (tmp_path / "s.zarr" / "provenance.jsonl").unlink(missing_ok=True)
    shown = sh([SWEEPER, "show", "s.zarr", "--history"], env=cluster_env, cwd=tmp_path)
    assert shown.returncode == 0 and "no history recorded" in shown.stdout
    again = prepare_store(Sweep.from_file(job), tmp_path / "s.zarr")
    assert again.provenance["accepted"] == [] and SweepStore.open(tmp_path / "s.zarr").meta["identity"]


def test_changed_metric_function_is_refused_by_name(tmp_path, cluster_env):
    shutil.copy(JOBS / "networks" / "single_population.json", tmp_path / "net.json")
    (tmp_path / "mymetrics.py").write_text(
        "import numpy as np\n\ndef peak(t, rates, point):\n    return np.max(rates, axis=1)\n")
    spec = tmp_path / "m.yaml"
    spec.write_text("network: net.json\nsimulation: {tf: 0.01}\n"
                    "parameters:\n  r: {path: inputs.bg.rate, values: [50.0, 100.0]}\n"
                    "metrics:\n  peak: {function: 'mymetrics:peak'}\n")
    run = [SWEEPER, "run", spec, "-o", "s.zarr", "--workers", 1, "--no-progress"]
    assert sh(run, env=cluster_env, cwd=tmp_path, timeout=400).returncode == 0
    edit(tmp_path / "mymetrics.py", "np.max(rates, axis=1)", "np.max(rates, axis=1) * 1.0")
    refused = sh(run, env=cluster_env, cwd=tmp_path)
    assert refused.returncode == 2 and "metric function peak changed since the store was made" in refused.stderr


def test_adaptive_sweep_is_checked_and_has_a_history(tmp_path, cluster_env):
    shutil.copy(JOBS / "networks" / "single_population.json", tmp_path / "net.json")
    spec = tmp_path / "a.yaml"
    text = ("network: net.json\nsimulation: {tf: 0.02}\n"
            "parameters:\n  rate: {path: inputs.bg.rate, range: [20.0, 400.0]}\n"
            "axes:\n  - adaptive: {parameters: [rate], metric: mean_rate, population: e, goal: {n: N}}\n"
            "output: {chunk_points: 4}\n")
    spec.write_text(text.replace("N", "8"))
    run = [SWEEPER, "run", spec, "-o", "a.zarr", "--workers", 1, "--no-progress"]
    assert sh(run, env=cluster_env, cwd=tmp_path).returncode == 0
    edit(tmp_path / "net.json", '"tau_m": 0.02', '"tau_m": 0.021')
    spec.write_text(text.replace("N", "12"))
    refused = sh(run, env=cluster_env, cwd=tmp_path)
    assert refused.returncode == 2 and "network input net.json changed since the store was made" in refused.stderr
    accepted = sh(run + ["--accept-changed"], env=cluster_env, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    history = sh([SWEEPER, "show", "a.zarr", "--history"], env=cluster_env, cwd=tmp_path).stdout
    assert "run 2" in history and "ACCEPTED: network input net.json changed" in history


def test_adaptive_sweep_ships_a_callable_builder(tmp_path, client):
    def local(drive: float):  # defined here: only its pickled code can reach the worker processes
        return tiny(n=1).replace_population("ext", rate=ConstantRate(100.0 * drive))

    sweep = Sweep(builder=local, parameters={"drive": {"range": [0.5, 1.5]}},
                  axes=[{"adaptive": {"parameters": ["drive"], "metric": "mean_rate", "population": "e",
                                      "goal": {"n": 6}}}], output={"chunk_points": 2})
    summary = run_sweep(sweep, tmp_path / "a.zarr", client=client)
    assert summary.ok, summary.failures
    assert summary.counts["done"] >= 6 and [e["event"] for e in read_history(tmp_path / "a.zarr")] == ["start", "end"]
