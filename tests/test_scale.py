"""Sweep scale: tasks sized from cost, one writer per shard, stores opened once per worker,
commands that do not import Dask, and the engine's compile announced (issue 17)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeper.errors import StoreError
from sweeper.store import DONE, SweepStore
from sweeper.store.sweepstore import file_points
from sweeper.sweep import Sweep, open_sweep, prepare_store, run_sweep, sizing
from sweeper.sweep.taskstore import task_store

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "jobs" / "networks" / "single_population.json"

pytestmark = pytest.mark.timeout(900)


def spec(tmp_path, n_rate=10, n_nsyn=10, tf=0.002, output="") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"network: {NET}\nsimulation: {{tf: {tf}}}\nparameters:\n"
                    f"  rate: {{path: inputs.bg.rate, linspace: [10, 500, {n_rate}]}}\n"
                    f"  nsyn: {{path: \"connections[bg->e].nsyn\", linspace: [1, 20, {n_nsyn}]}}\n{output}")
    return path


def files(store: Path, name: str) -> int:
    return sum(1 for p in (store / name).rglob("*") if p.is_file() and p.name != "zarr.json")


def test_tasks_are_sized_from_the_cost_of_a_point(tmp_path):
    cheap = Sweep.from_file(spec(tmp_path, 100, 100))  # 10^4 tiny points: ~0.1 ms each
    st = prepare_store(cheap, tmp_path / "cheap.zarr")
    assert st.chunk_points > 1000 and st.nchunks <= 10  # at most 1 file per 1,000 points per array
    assert files(tmp_path / "cheap.zarr", "status") == st.nchunks
    tutorial = Sweep.from_file(ROOT / "jobs" / "tutorial_weight_grid.yaml")
    probe = tutorial.base_network()
    cost = sizing.point_seconds(probe)
    assert sizing.point_seconds(cheap.base_network()) * 50 < cost  # bins x steps x method
    auto = sizing.layout(probe, 1000, 16000)
    assert auto.from_cost and 1 < auto.task_points < 1000
    assert auto.task_points * cost <= 2 * 1.5  # about sweep.task-seconds per task


def test_many_cheap_points_get_worker_processes_others_threads(tmp_path):
    many = Sweep.from_file(spec(tmp_path, 1000, 100))  # 10^5 tiny points
    processes, why = sizing.local_processes(many, 2)
    assert processes and why.startswith("100000 points of about ")
    assert sizing.local_processes(many, 1) == (False, "")  # one worker: nothing to run in parallel
    assert sizing.local_processes(Sweep.from_file(spec(tmp_path, 10, 10)), 2) == (False, "")  # few points
    tutorial = Sweep.from_text((ROOT / "jobs" / "tutorial_weight_grid.yaml").read_text()
                               .replace("linspace: [0.001, 0.008, 8]", "linspace: [0.001, 0.008, 100000]"),
                               base_dir=ROOT / "jobs")
    assert tutorial.size >= 100000 and sizing.local_processes(tutorial, 2) == (False, "")  # costly points


SWEEPER = str(Path(sys.executable).with_name("sweeper"))


def test_run_chooses_processes_by_cost_and_the_flags_override(tmp_path):
    path = spec(tmp_path, 4, 3)
    env = dict(os.environ, SWEEPER__CLUSTER__LOCAL__AUTO_PROCESSES__MIN_POINTS="10")  # 12 points count as many
    runs = {"auto": [], "threads": ["--threads"], "processes": ["--processes"]}
    err = {}
    for name, extra in runs.items():
        done = subprocess.run([SWEEPER, "run", str(path), "-o", str(tmp_path / f"{name}.zarr"), "--workers", "2",
                               "--no-progress", *extra], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        err[name] = done.stderr
    assert "sweeper: worker processes: 12 points of about " in err["auto"]
    assert "local cluster, 2 worker processes" in err["auto"] and "local cluster, 2 worker processes" in err["processes"]
    assert "local cluster, 2 worker threads" in err["threads"] and "worker processes" not in err["threads"]
    want = open_sweep(tmp_path / "threads.zarr")
    for name in ("auto", "processes"):
        got = open_sweep(tmp_path / f"{name}.zarr")
        np.testing.assert_array_equal(got["rates"].values, want["rates"].values)


def test_chunk_points_in_the_spec_overrides_the_cost(tmp_path):
    st = prepare_store(Sweep.from_file(spec(tmp_path, output="output: {chunk_points: 7}\n")), tmp_path / "s.zarr")
    assert st.chunk_points == 7 and st.group["rates"].chunks[0] == 7 and st.group["rates"].shards is None


def test_a_task_writes_one_shard_read_in_smaller_chunks(tmp_path, client, monkeypatch):
    monkeypatch.setenv("SWEEPER__STORE__CHUNK_BYTES", "4000")  # ~45 points of tiny traces per inner chunk
    monkeypatch.setenv("SWEEPER__SWEEP__MIN_TASKS", "4")
    store = tmp_path / "s.zarr"
    sweep = Sweep.from_file(spec(tmp_path, 20, 20))
    summary = run_sweep(sweep, store, client=client)
    assert summary.ok and summary.computed == 400
    st = SweepStore.open(store)
    rates = st.group["rates"]
    assert rates.shards is not None and rates.chunks[0] < rates.shards[0] == st.chunk_points
    for var in (v for v in st.variables if v.written == "task"):  # one file per task
        assert file_points(st.group[var.name]) == st.chunk_points
        assert files(store, var.name) == (st.nchunks if var.name in ("rates", "status") else files(store, var.name))
        assert files(store, var.name) <= st.nchunks  # (all-fill chunks, like error's, are not written)
    assert st.nchunks >= 2
    ds = open_sweep(store, index=False)
    assert (ds["status"].values == DONE).all() and np.isfinite(ds["rates"].values).all()
    from sweeper.verify import verify_store
    assert verify_store(store) == []


def test_several_tasks_per_shard_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPER__STORE__CHUNK_BYTES", "4000")
    monkeypatch.setenv("SWEEPER__SWEEP__MIN_TASKS", "4")
    store = tmp_path / "s.zarr"
    sweep = Sweep.from_file(spec(tmp_path, 20, 20))
    st = prepare_store(sweep, store)
    shard = file_points(st.group["rates"])
    st.set_meta(chunk_points=shard // 2)  # two tasks would now share every shard
    st.consolidate()
    with pytest.raises(StoreError, match="several tasks would write one file"):
        prepare_store(sweep, store)


def test_a_worker_opens_the_store_once_until_it_changes(tmp_path):
    store = tmp_path / "s.zarr"
    st = prepare_store(Sweep.from_file(spec(tmp_path, 3, 3)), store)
    first = task_store(str(store))
    assert task_store(str(store)) is first
    st.set_meta(note="changed")
    st.consolidate()
    again = task_store(str(store))
    assert again is not first and again.meta["note"] == "changed"


CHECK_IMPORTS = """
import sys
from click.testing import CliRunner
from sweeper.cli import main
for args in (["expand", sys.argv[1]], ["simulate", sys.argv[2], "-o", sys.argv[3]]):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
print(sorted(m for m in ("dask", "distributed") if m in sys.modules))
"""


def test_simulate_and_expand_import_neither_dask_nor_distributed(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, str(spec(tmp_path)), str(NET), str(tmp_path / "r.csv")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_first_compile_is_announced_then_cached(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    sweeper = str(Path(sys.executable).with_name("sweeper"))
    first = subprocess.run([sweeper, "warmup"], capture_output=True, text=True, env=env, timeout=800)
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert lines[0].startswith("sweeper: compiling the engine once, about ")
    assert lines[-1].startswith("sweeper: engine compiled in ")
    stamp = next((tmp_path / "numba").rglob("sweeper-engine-warm.json"))
    assert json.loads(stamp.read_text())["seconds"] > 0
    second = subprocess.run([sweeper, "warmup"], capture_output=True, text=True, env=env, timeout=800)
    assert second.returncode == 0 and "compiling" not in second.stderr
    assert second.stderr.startswith("sweeper: the engine is compiled already")
