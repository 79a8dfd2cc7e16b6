"""One small grid sweep four ways -- local, mpiexec, `sweeper submit` on the live Slurm, SLURMCluster
worker jobs -- gives identical stores; a worker job cancelled mid-sweep loses no point."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from sweeper.store import DONE
from sweeper.sweep import Sweep, open_sweep, run_sweep

DATA = Path(__file__).parent / "data" / "cluster"
SPEC = DATA / "grid.yaml"            # 2 x 3 grid, one point per chunk
SLOW_SPEC = DATA / "slow_grid.yaml"  # 3 x 8 grid, 0.3 s per point
SWEEPER = str(Path(sys.executable).with_name("sweeper"))

pytestmark = pytest.mark.timeout(300)  # a hung daemon or job fails the test, never the suite


def sh(cmd, *, env, cwd, timeout) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def assert_same_store(store, reference):
    """Every array (traces, metrics, status, errors, ids, coordinates) equal; attrs may differ."""
    got, want = zarr.open_group(str(store), mode="r"), zarr.open_group(str(reference), mode="r")
    assert sorted(got.array_keys()) == sorted(want.array_keys())
    for name in want.array_keys():
        a, b = got[name][:], want[name][:]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert (a == b).all(), name
    ds, ref = open_sweep(store), open_sweep(reference)
    for coord in ("point_id", "w", "rate", "population", "time"):
        assert np.array_equal(ds[coord].values, ref[coord].values), coord
    np.testing.assert_array_equal(ds["rates"].values, ref["rates"].values)


def all_done(store, npoints):
    status = zarr.open_group(str(store), mode="r")["status"][:]
    assert len(status) == npoints and (status == DONE).all(), status


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, cluster_env):
    """(a) the sweep on a local Dask cluster, through the CLI: the reference for the others."""
    where = tmp_path_factory.mktemp("local")
    done = sh([SWEEPER, "run", SPEC, "-o", "local.zarr", "--workers", 2, "--no-progress"],
              env=cluster_env, cwd=where, timeout=120)
    assert done.returncode == 0, done.stderr
    return where / "local.zarr"


def test_a_local_run_completes_the_grid(local_store):
    all_done(local_store, 6)
    ds = open_sweep(local_store)
    assert sorted(set(ds["w"].values)) == [0.001, 0.002]
    assert sorted(set(ds["rate"].values)) == [50.0, 100.0, 200.0]
    assert np.isfinite(ds["rates"].values).all() and (ds["rates"].values[:, :, -1] > 0).all()


@pytest.mark.mpi
def test_b_mpiexec_gives_the_same_store(require_mpi, local_store, cluster_env, tmp_path):
    done = sh([require_mpi, "-n", 4, SWEEPER, "run", SPEC, "-o", "mpi.zarr", "--cluster", "mpi", "--no-progress"],
              env=cluster_env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "MPI cluster, 2 workers" in done.stderr
    assert_same_store(tmp_path / "mpi.zarr", local_store)


@pytest.mark.slurm
@pytest.mark.mpi
def test_c_sweeper_submit_gives_the_same_store(require_slurm, require_mpi, local_store, cluster_env, tmp_path):
    done = sh([SWEEPER, "submit", SPEC, "-o", "sub.zarr", "--time", "00:05:00", "--wait", "--timeout", 150],
              env=cluster_env, cwd=tmp_path, timeout=180)
    job = done.stdout.split()[0] if done.stdout.split() else "?"
    log = tmp_path / f"sub-slurm-{job}.out"
    assert done.returncode == 0, done.stderr + (log.read_text() if log.exists() else "")
    assert job.isdigit() and f"job {job} ended with exit status 0" in done.stderr
    assert "6 done, 0 failed, 0 pending of 6 points" in log.read_text()
    assert_same_store(tmp_path / "sub.zarr", local_store)


@pytest.mark.slurm
def test_d_slurm_worker_jobs_give_the_same_store(require_slurm, local_store, cluster_env, tmp_path):
    done = sh([SWEEPER, "run", SPEC, "-o", "jq.zarr", "--cluster", "slurm", "--jobs", 2, "--interface", "lo",
               "--walltime", "00:10:00", "--no-progress"], env=cluster_env, cwd=tmp_path, timeout=150)
    assert done.returncode == 0, done.stderr
    assert "Slurm cluster, 2 worker jobs" in done.stderr
    assert_same_store(tmp_path / "jq.zarr", local_store)
    assert len(list(tmp_path.glob("slurm-*.out"))) >= 2  # the worker jobs' logs


def worker_jobs(state="RUNNING") -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", "sweeper-worker", "-t", state, "-o", "%i"],
                         capture_output=True, text=True, timeout=30).stdout
    return out.split()


def done_count(store) -> int:
    try:
        return int((zarr.open_group(str(store), mode="r")["status"][:] == DONE).sum())
    except Exception:  # not created yet
        return 0


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_a_worker_job_cancelled_mid_sweep_loses_no_point(require_slurm, cluster_env, tmp_path):
    """Every point but the three with the first rate waits for a gate file, opened only once a
    worker job has been cancelled and its replacement submitted: whatever the machine's speed,
    the cancellation comes mid-sweep and the sweep cannot end before the replacement."""
    import shutil

    shutil.copy(DATA / "gate_builder.py", tmp_path)
    gate = tmp_path / "gate"
    text = SLOW_SPEC.read_text().replace("slow_builder:build", "gate_builder:build")
    spec = tmp_path / "gated.yaml"
    spec.write_text(text.replace("pause: 0.3", f"gate: {gate}"))
    store = tmp_path / "slow.zarr"
    cmd = [SWEEPER, "run", spec, "-o", store, "--cluster", "slurm", "--jobs", 2, "--interface", "lo",
           "--walltime", "00:10:00", "--no-progress"]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=tmp_path, env=cluster_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # a guard against a hung cluster, not a pace
        while done_count(store) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        jobs = worker_jobs()
        done_before = done_count(store)
        assert jobs and 0 < done_before <= 3, f"jobs {jobs}, {done_before} points done, run ended: {proc.poll()}"
        subprocess.run(["scancel", jobs[0]], check=True, timeout=30)
        replaced = False  # a new worker job takes the cancelled one's place
        while not replaced and proc.poll() is None and time.monotonic() < deadline:
            replaced = bool(set(worker_jobs(state="PENDING,RUNNING")) - set(jobs))
            time.sleep(0.2)
        assert replaced, f"no worker job was submitted in place of the cancelled one (run ended: {proc.poll()})"
        gate.touch()
        out, err = proc.communicate(timeout=240)
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            subprocess.run(["scancel", "--name", "sweeper-worker"], timeout=30)
    assert proc.returncode == 0, err
    assert "24 done, 0 failed, 0 pending of 24 points" in out
    all_done(store, 24)

    # every point once, with the trace it has without any cancellation
    ids = zarr.open_group(str(store), mode="r")["point_id"][:]
    assert len(set(ids.tolist())) == 24
    from distributed import Client, LocalCluster
    fast = Sweep.from_text(text.replace("pause: 0.3", "gate: ''"), base_dir=tmp_path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, \
            Client(lc) as client:
        assert run_sweep(fast, tmp_path / "reference.zarr", client=client).ok
    assert_same_store(store, tmp_path / "reference.zarr")


@pytest.mark.slurm
@pytest.mark.mpi
def test_e_a_submit_job_at_its_time_limit_stops_cleanly_and_the_resubmission_completes(
        require_slurm, require_mpi, cluster_env, tmp_path):
    """Slurm signals the batch script before the time limit (--signal); the script passes SIGTERM
    to the ranks; the sweep stops with 143 and releases the lock. Every point but the first waits
    for a gate file, so the job cannot finish before its time limit whatever the machine's speed."""
    import json
    import shutil
    import socket

    from sweeper.store.lock import lock_path

    shutil.copy(DATA / "gate_builder.py", tmp_path)
    gate = tmp_path / "gate"
    spec = tmp_path / "gated.yaml"
    spec.write_text(SLOW_SPEC.read_text().replace("slow_builder:build", "gate_builder:build")
                    .replace("pause: 0.3", f"gate: {gate}"))
    store = tmp_path / "g.zarr"
    cmd = [SWEEPER, "submit", spec, "-o", store, "--time", "1", "--wait", "--timeout", 240]
    done = sh(cmd, env=cluster_env, cwd=tmp_path, timeout=280)
    job = done.stdout.split()[0]
    log = (tmp_path / f"g-slurm-{job}.out").read_text()
    assert done.returncode == 143 and f"job {job} ended with exit status 143" in done.stderr, done.stderr + log
    assert "sweeper: stopped by SIGTERM; " in log and "Traceback" not in log, log
    assert not lock_path(store).exists()
    # the resubmission completes, also when a lock of another host whose lease ran out is found
    gate.touch()
    lock_path(store).write_text(json.dumps({"host": "node-elsewhere", "pid": 1, "started": "then"}))
    then = time.time() - 3600
    os.utime(lock_path(store), (then, then))
    again = sh(cmd[:5] + ["--time", "00:05:00", "--wait", "--timeout", 240], env=cluster_env, cwd=tmp_path, timeout=280)
    assert again.returncode == 0, again.stderr
    log = (tmp_path / f"g-slurm-{again.stdout.split()[0]}.out").read_text()
    assert "clearing a stale lock" in log and "24 done, 0 failed, 0 pending of 24 points" in log, log
    assert socket.gethostname() and not lock_path(store).exists()
