"""Running sweeps on a real LocalCluster into real Zarr stores."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.engine import simulate
from sweeper.errors import StoreError
from sweeper.store import DONE, FAILED, SweepStore
from sweeper.sweep import Sweep, open_sweep, run_sweep

from faults_gate import Gate

JOBS = Path(__file__).resolve().parents[1] / "jobs"
NET = JOBS / "networks" / "single_population.json"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))

GRID = """
network: NET
simulation: {tf: 0.03}
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
axes:
  - grid: [rate, tau]
output: {chunk_points: 2, metric_window: 0.01}
"""


def spec_file(tmp_path, text=GRID, name="spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("NET", str(NET)))
    return path


def read_store(path) -> dict:
    g = zarr.open_group(str(path), mode="r")
    return {name: g[name][:] for name in g.array_keys()}


def test_grid_sweep_equals_simulate_of_each_point(tmp_path, client):
    spec = spec_file(tmp_path)
    summary = run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    assert summary.ok and summary.computed == 6
    sweep = Sweep.from_file(spec)
    ds = open_sweep(tmp_path / "s.zarr", index=False)
    assert (ds["status"].values == DONE).all()
    for i in range(6):
        point = {"rate": float(ds["rate"].values[i]), "tau": float(ds["tau"].values[i])}
        alone = simulate(sweep.network_for(point))
        np.testing.assert_array_equal(ds["time"].values, alone.t)
        ref = alone.rates
        got = ds["rates"].values[i]
        assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))
        window = alone.t >= alone.t[-1] - 0.01 - 1e-12
        np.testing.assert_allclose(ds["mean_rate"].values[i], ref[:, window].mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(ds["final_rate"].values[i], ref[:, -1], rtol=0)


def test_sel_by_value_and_unstack(tmp_path, client):
    spec = spec_file(tmp_path)
    run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    ds = open_sweep(tmp_path / "s.zarr")
    one = ds.sel(rate=200.0, tau=0.01)
    flat = open_sweep(tmp_path / "s.zarr", index=False)
    i = int(np.flatnonzero((flat["rate"].values == 200.0) & (flat["tau"].values == 0.01))[0])
    np.testing.assert_array_equal(one["rates"].values.reshape(flat["rates"].values[i].shape),
                                  flat["rates"].values[i])
    grid = ds.unstack("point")
    assert grid["rates"].dims == ("population", "time", "rate", "tau") or set(grid["rates"].dims) == {
        "population", "time", "rate", "tau"}
    assert grid.sizes["rate"] == 3 and grid.sizes["tau"] == 2
    np.testing.assert_array_equal(
        grid["rates"].sel(rate=200.0, tau=0.01).transpose("population", "time").values, flat["rates"].values[i])


def test_store_layout_attrs_and_reopen(tmp_path, client):
    spec = spec_file(tmp_path)
    run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    st = SweepStore.open(tmp_path / "s.zarr")
    meta = st.meta
    assert meta["spec"] == spec.read_text()
    assert meta["spec_hash"] == Sweep.from_file(spec).hash
    assert meta["completed"] and meta["created"]
    assert {"numpy", "zarr", "dask", "sweeper"} <= set(meta["versions"])
    assert st.group["rates"].chunks == (2, 1, len(st.times))
    assert st.group["status"].chunks == (2,)
    assert (tmp_path / "s.zarr" / "zarr.json").read_text().count("consolidated_metadata") == 1
    before = read_store(tmp_path / "s.zarr")
    again = run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)  # nothing left to do
    assert again.computed == 0
    after = read_store(tmp_path / "s.zarr")
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_store_of_another_spec_is_refused_but_an_added_axis_value_extends(tmp_path, client):
    spec = spec_file(tmp_path)
    run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    other = spec_file(tmp_path, GRID.replace("tf: 0.03", "tf: 0.02"), "other.yaml")
    with pytest.raises(StoreError, match="was made from a different spec"):
        run_sweep(Sweep.from_file(other), tmp_path / "s.zarr", client=client)
    fewer = spec_file(tmp_path, GRID.replace("[50.0, 100.0, 200.0]", "[50.0, 100.0]"), "fewer.yaml")
    with pytest.raises(StoreError, match="may only add points"):
        run_sweep(Sweep.from_file(fewer), tmp_path / "s.zarr", client=client)
    more = spec_file(tmp_path, GRID.replace("[50.0, 100.0, 200.0]", "[50.0, 100.0, 200.0, 300.0]"), "more.yaml")
    old = open_sweep(tmp_path / "s.zarr", index=False)["rates"].values.copy()
    summary = run_sweep(Sweep.from_file(more), tmp_path / "s.zarr", client=client)
    assert summary.computed == 2 and summary.ok
    ds = open_sweep(tmp_path / "s.zarr")
    assert ds.sizes["point"] == 8
    np.testing.assert_array_equal(open_sweep(tmp_path / "s.zarr", index=False)["rates"].values[:6], old)
    fresh = run_sweep(Sweep.from_file(more), tmp_path / "fresh.zarr", client=client)
    assert fresh.ok
    a = ds.sel(rate=300.0, tau=0.02)["rates"].values
    b = open_sweep(tmp_path / "fresh.zarr").sel(rate=300.0, tau=0.02)["rates"].values
    np.testing.assert_array_equal(a, b)


BLOWUP = """
network: NET
simulation: {tf: 0.02}
parameters:
  rate: {path: inputs.bg.rate, values: [100.0, 2.0e6]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
output: {chunk_points: 3}
"""


def test_failing_points_are_recorded_and_the_rest_completes(tmp_path, client):
    spec = spec_file(tmp_path, BLOWUP)
    summary = run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    assert not summary.ok
    ds = open_sweep(tmp_path / "s.zarr", index=False)
    status = ds["status"].values
    rate = ds["rate"].values
    assert (status[rate == 100.0] == DONE).all()
    assert (status[rate == 2.0e6] == FAILED).all()
    for e in ds["error"].values[rate == 2.0e6]:
        assert "mass" in e or "finite" in e or "too large" in e, e
    assert np.isfinite(ds["rates"].values[rate == 100.0]).all()
    assert np.isnan(ds["rates"].values[rate == 2.0e6]).all()
    result = CliRunner().invoke(main, ["status", str(tmp_path / "s.zarr")])
    assert "2 pending" not in result.output and "2 failed" in result.output


def test_run_cli_exit_status_and_failure_summary(tmp_path):
    spec = spec_file(tmp_path, BLOWUP)
    proc = subprocess.run([SWEEPER, "run", str(spec), "-o", str(tmp_path / "s.zarr"), "--workers", "2",
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "2 done, 2 failed, 0 pending of 4 points" in proc.stdout
    assert "2 point(s) failed in this run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_killed_driver_then_resume_equals_uninterrupted_run(tmp_path, client):
    text = GRID.replace("[50.0, 100.0, 200.0]", "[50.0, 75.0, 100.0, 150.0, 200.0, 300.0]").replace(
        "chunk_points: 2", "chunk_points: 1").replace("tf: 0.03", "tf: 0.1")
    spec = spec_file(tmp_path, text)
    store = tmp_path / "killed.zarr"
    # the moment is an event: the run is held as it starts writing point 8's trace (tests/faults_gate.py)
    gate = Gate(tmp_path / "gate", r"/killed\.zarr/rates/c/8/")
    proc = subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=gate.env())
    gate.wait(proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker threads, at one instant
    proc.communicate()
    st = SweepStore.open(store)
    partial = st.counts()
    assert st.status(slice(8, 9))[0] != DONE and partial["done"] < 12
    summary = run_sweep(Sweep.from_file(spec), store, client=client)  # clears the stale lock, resumes
    assert summary.ok and summary.computed == 12 - partial["done"]
    full = run_sweep(Sweep.from_file(spec), tmp_path / "full.zarr", client=client)
    assert full.ok
    a, b = read_store(store), read_store(tmp_path / "full.zarr")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_show_and_plot(tmp_path, client):
    spec = spec_file(tmp_path)
    run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    runner = CliRunner()
    shown = runner.invoke(main, ["show", str(tmp_path / "s.zarr")])
    assert shown.exit_code == 0, shown.output
    assert "mean_rate[e]" in shown.output and "done" in shown.output
    out = tmp_path / "heat.png"
    plotted = runner.invoke(main, ["plot", str(tmp_path / "s.zarr"), "-o", str(out)])
    assert plotted.exit_code == 0, plotted.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    traces = tmp_path / "traces.png"
    plotted = runner.invoke(main, ["plot", str(tmp_path / "s.zarr"), "--traces", "--sel", "rate=100",
                                   "-o", str(traces)])
    assert plotted.exit_code == 0, plotted.output
    assert traces.stat().st_size > 1000
    bad = runner.invoke(main, ["plot", str(tmp_path / "s.zarr"), "-x", "nope"])
    assert bad.exit_code == 2 and "unknown parameter 'nope'" in bad.output


REFUSED_COMBINATION = """
network: NET
simulation: {tf: 0.01}
parameters:
  vmin: {path: populations.e.v_min, values: [-0.02, -0.013]}
  dv: {path: populations.e.dv, values: [0.0002, 0.0003]}
output: {chunk_points: 4}
"""


def test_a_combination_the_engine_refuses_fails_only_that_point(tmp_path, client):
    # each value alone is accepted; v_min=-0.013 with dv=0.0003 makes a degenerate last bin
    spec = spec_file(tmp_path, REFUSED_COMBINATION)
    summary = run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    ds = open_sweep(tmp_path / "s.zarr", index=False)
    bad = (ds["vmin"].values == -0.013) & (ds["dv"].values == 0.0003)
    assert (ds["status"].values[bad] == FAILED).all() and (ds["status"].values[~bad] == DONE).all()
    assert "degenerate grid" in ds["error"].values[bad][0] and "dv=0.0003" in ds["error"].values[bad][0]
    assert [f[0] for f in summary.failures] == list(np.flatnonzero(bad))


LOGSPACE = """
network: NET
simulation: {tf: 0.01}
parameters:
  rate: {path: inputs.bg.rate, logspace: [5, 40, 4]}
output: {chunk_points: 2}
"""


def test_a_store_made_before_generated_values_were_rounded_still_resumes(tmp_path, client):
    from sweeper.sweep import points as pts
    spec = spec_file(tmp_path, LOGSPACE)
    store = tmp_path / "s.zarr"
    run_sweep(Sweep.from_file(spec), store, client=client)
    assert open_sweep(store)["rate"].values.tolist() == [5.0, 10.0, 20.0, 40.0]
    # what an older sweeper wrote: numpy's own geomspace values, their ids, no 'coordinates' in attrs
    st = SweepStore.open(store, mode="r+")
    raw = np.geomspace(5, 40, 4)
    assert raw.tolist() != [5.0, 10.0, 20.0, 40.0]
    st.group["rate"][:] = raw
    st.group["point_id"][:] = pts.point_ids({"rate": raw}, ["rate"])
    meta = st.meta
    del meta["coordinates"]
    st.group.attrs["sweeper"] = meta
    st.consolidate()
    summary = run_sweep(Sweep.from_file(spec), store, client=client)
    assert summary.ok and summary.computed == 0
    from sweeper.verify import verify_store
    assert verify_store(store) == []
