"""Faults during a sweep: a worker killed mid-task, the driver killed at several moments (one of
them in the middle of a chunk write), a full or read-only disk, and numerically unstable points.

Everything is real: a LocalCluster with worker processes, `sweeper run` processes killed with
SIGKILL, a tmpfs mounted by the test. Each interrupted store is compared with an uninterrupted
run of the same spec, array by array, bit for bit.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import SimulationError, StoreError
from sweeper.store import DONE, FAILED, PENDING, SweepStore
from sweeper.sweep import Sweep, open_sweep, run_sweep
from sweeper.store.lock import lock_path
from sweeper.verify import verify_store

from faults_gate import Gate

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))
REQUIRED = os.environ.get("SWEEPER_REQUIRE_SLURM") == "1"  # CI: root, so mounting must work

# 8 chunks of 2 points; each chunk takes a good fraction of a second, so kills land mid-run
SPEC = """
network: NET
simulation: {tf: 1.5}
parameters:
  rate: {path: inputs.bg.rate, values: [40.0, 80.0, 120.0, 160.0]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.015, 0.02, 0.03]}
output: {chunk_points: 2}
"""
NPOINTS, NCHUNKS = 16, 8


def write_spec(folder: Path, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(text.replace("NET", str(NET)))
    return path


def arrays(store) -> dict:
    g = zarr.open_group(str(store), mode="r")
    return {name: a[:] for name, a in g.arrays()}


def assert_same_store(store, reference):
    a, b = arrays(store), arrays(reference)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_only_correct_points(store, reference) -> dict:
    """Every done (or failed) point holds exactly the reference's trace, metrics and reason; a
    pending point holds nothing or, after a write cut short, the reference's trace."""
    st = SweepStore.open(store)
    a, ref = arrays(store), arrays(reference)
    status = a["status"]
    assert set(np.unique(status)) <= {PENDING, DONE, FAILED}
    np.testing.assert_array_equal(a["point_id"], ref["point_id"])
    finished = status != PENDING
    np.testing.assert_array_equal(status[finished], ref["status"][finished])
    for k in ("rates", "mean_rate", "final_rate", "error"):
        np.testing.assert_array_equal(a[k][finished], ref[k][finished], err_msg=k)
    for i in np.flatnonzero(~finished):
        trace = a["rates"][i]
        assert np.isnan(trace).all() or np.array_equal(trace, ref["rates"][i]), f"point {i}"
    open_sweep(store)  # and the analysis side opens it
    return st.counts()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, client):
    """The uninterrupted run every interrupted one must equal."""
    folder = tmp_path_factory.mktemp("reference")
    store = folder / "reference.zarr"
    summary = run_sweep(Sweep.from_file(write_spec(folder)), store, client=client)
    assert summary.ok and summary.computed == NPOINTS
    return store


# --------------------------------------------------------------------------- 1. worker death
@pytest.fixture
def gated_client(tmp_path, monkeypatch):
    """A 2-worker LocalCluster whose worker processes stop at the first write matching a gate."""
    from distributed import Client, LocalCluster

    def start(regex):
        gate = Gate(tmp_path / "gate", regex)
        for k, v in gate.env().items():
            if os.environ.get(k) != v:
                monkeypatch.setenv(k, v)  # the worker processes are spawned with this environment
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        made.append(cluster)
        return gate, Client(cluster)

    made = []
    yield start
    for cluster in made:
        cluster.close()


def test_worker_killed_mid_task_its_chunk_is_rerun_and_the_store_equals_an_uninterrupted_run(
        tmp_path, gated_client, reference):
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    gate, client = gated_client(r"/s\.zarr/rates/c/2/")  # chunk 2, as it starts writing its traces
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(
        summary=run_sweep(Sweep.from_file(spec), store, client=client)))
    runner.start()
    pid, path = gate.wait(alive=runner.is_alive)
    pids = client.run(os.getpid)
    assert pid in pids.values()  # a worker process is held inside chunk 2's task
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=600)
    assert not runner.is_alive(), "the run did not end after the worker was killed"
    summary = outcome["summary"]
    assert summary.ok and summary.failures == []
    assert summary.computed == NPOINTS  # chunk 2 had written nothing: its rerun computed it
    assert pid not in client.run(os.getpid).values()  # that worker process is gone ...
    client.wait_for_workers(2, timeout=120)  # ... and the nanny started a fresh one
    assert_same_store(store, reference)
    assert verify_store(store) == []


# --------------------------------------------------------------------------- 2. driver death
def _start(spec, store, gate=None, workers=1):
    # a real `sweeper run` with its own local cluster, in its own process group: SIGKILL of the
    # group kills the driver and its worker at the same instant, as a killed batch job would
    return subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", str(workers),
                             "--no-progress"], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=gate.env() if gate else None)


def _kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _wait_for(proc, condition, what, timeout=600):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.005)


def _pending_chunks(store) -> list[int]:
    status = SweepStore.open(store).status(slice(0, NPOINTS))
    return [i for i in range(NCHUNKS) if (status[2 * i:2 * i + 2] == PENDING).any()]


def test_driver_killed_at_several_moments_keeps_only_correct_points_and_resumes(tmp_path, client, reference):
    """Each kill happens while the run is held at a chosen write (tests/faults_gate.py): the run
    cannot finish before the kill, and a run that never reaches its moment fails the test."""
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    history = []

    # 1) while the store is being created: no half-made store is left under its name
    gate = Gate(tmp_path / "gate", r"/s\.zarr\.creating-[0-9]+/status/")
    proc = _start(spec, store, gate)
    gate.wait(proc)
    _kill(proc)
    assert glob.glob(f"{store}.creating-*") and not store.exists()
    history.append(("creating", 0))

    # 2) in the middle of a chunk write: chunk 3's traces, metrics and errors on disk, its status not
    gate = Gate(tmp_path / "gate", r"/s\.zarr/status/c/3\.")
    proc = _start(spec, store, gate)
    gate.wait(proc)
    _kill(proc)
    counts = assert_only_correct_points(store, reference)
    history.append(("mid-write of chunk 3", counts["done"]))
    rates = zarr.open_group(str(store), mode="r")["rates"][6:8]
    assert np.isfinite(rates).all()  # the traces of the interrupted chunk reached the disk ...
    assert (SweepStore.open(store).status(slice(6, 8)) == PENDING).all()  # ... uncommitted

    # 3) at other moments of the last chunk still to do: before its traces, before its metrics
    for variable in ("rates", "mean_rate"):  # (an all-empty error chunk is never written)
        last = _pending_chunks(store)[-1]
        gate = Gate(tmp_path / "gate", rf"/s\.zarr/{variable}/c/{last}[./]")
        proc = _start(spec, store, gate)
        gate.wait(proc)
        _kill(proc)
        assert counts["pending"] > 0, "the run finished before its kill moment"
        counts = assert_only_correct_points(store, reference)
        history.append((f"{variable} of chunk {last}", counts["done"]))
        assert counts["done"] < NPOINTS  # the held chunk is never committed

    # every kill left a stale lock; the resume clears it, computes only what is missing
    assert lock_path(store).exists()
    done = SweepStore.open(store).counts()["done"]
    summary = run_sweep(Sweep.from_file(spec), store, client=client)
    assert summary.ok and summary.computed == NPOINTS - done, history
    assert_same_store(store, reference)
    assert verify_store(store) == []
    assert not lock_path(store).exists()
    print("kills (moment, done points after):", history)


def test_ctrl_c_stops_the_run_with_a_message_keeps_its_points_and_a_rerun_resumes(tmp_path, client, reference):
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    gate = Gate(tmp_path / "gate", r"/s\.zarr/status/c/7\.")  # the last chunk never commits
    proc = subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", "2", "--processes",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=gate.env())
    gate.wait(proc)
    _wait_for(proc, lambda: SweepStore.open(store).counts()["done"] > 0, "a finished chunk")
    proc.send_signal(signal.SIGINT)  # the held worker process is ended by the cluster's close
    out, err = proc.communicate(timeout=300)
    counts = assert_only_correct_points(store, reference)
    assert proc.returncode == 130 and "Traceback" not in err, err
    # worker processes log Dask's own notes on the cancelled tasks (their log is not the CLI's)
    assert not [x for x in err.splitlines() if "WARNING" in x and "distributed." not in x], err
    assert err.splitlines()[-1] == (f"sweeper: interrupted; {store} keeps {counts['done']} done and "
                                    f"{counts['failed']} failed points ({counts['pending']} pending): run the "
                                    "same command again to resume")
    assert counts["pending"] > 0 and not lock_path(store).exists()
    summary = run_sweep(Sweep.from_file(spec), store, client=client)
    assert summary.ok and summary.computed == counts["pending"]
    assert_same_store(store, reference)


GATED = """
name: gated_grid
builder: gate_builder:build
builder_args: {gate: GATE, tf: 0.05}
parameters:
  w: {values: [0.001, 0.0015, 0.002]}
  rate: {linspace: [50.0, 200.0, 8]}
axes:
  - grid: [w, rate]
output: {chunk_points: 1, metric_window: 0.02}
"""


def gated_spec(folder: Path) -> tuple[Path, Path]:
    """24 one-point chunks; only the first point is built before the gate file appears."""
    shutil.copy(Path(__file__).parent / "data" / "cluster" / "gate_builder.py", folder)
    gate = folder / "gate"
    spec = folder / "gated.yaml"
    spec.write_text(GATED.replace("GATE", str(gate)))
    return spec, gate


@pytest.mark.parametrize("signum, code, what", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                                (signal.SIGINT, 130, "interrupted")])
def test_sigterm_or_sigint_stops_the_run_cleanly_and_the_same_command_completes_it(tmp_path, signum, code, what):
    """The moment is an event: the first point is done while every other one waits for the gate."""
    spec, gate = gated_spec(tmp_path)
    store = tmp_path / "s.zarr"
    cmd = [SWEEPER, "run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    _wait_for(proc, lambda: store.exists() and SweepStore.open(store).counts()["done"] == 1, "the first point")
    proc.send_signal(signum)
    gate.touch()  # let the chunks in flight go on: finished or abandoned, both are clean
    out, err = proc.communicate(timeout=120)
    counts = SweepStore.open(store).counts()
    assert proc.returncode == code, err
    assert "Traceback" not in err and "WARNING" not in err, err
    assert err.splitlines()[-1] == (f"sweeper: {what}; {store} keeps {counts['done']} done and 0 failed points "
                                    f"({counts['pending']} pending): run the same command again to resume")
    assert counts["pending"] >= 24 - 1 - 4  # at most the chunks in flight were finished
    assert not lock_path(store).exists()
    assert verify_store(store) == []
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"24 done, 0 failed, 0 pending of 24 points ({counts['pending']} computed" in again.stdout
    reference = tmp_path / "reference.zarr"
    assert subprocess.run([SWEEPER, "run", str(spec), "-o", str(reference), "--workers", "1", "--no-progress"],
                          capture_output=True, cwd=tmp_path, timeout=300).returncode == 0
    assert_same_store(store, reference)


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(tmp_path):
    """The first Ctrl-C's wind-down waits for the chunk in flight, whose builder waits for a gate
    that stays shut; the second Ctrl-C, sent once the first one's summary line is out, ends it."""
    spec, gate = gated_spec(tmp_path)
    store = tmp_path / "s.zarr"
    proc = subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        _wait_for(proc, lambda: store.exists() and SweepStore.open(store).counts()["done"] == 1, "the first point")
        proc.send_signal(signal.SIGINT)
        lines = []
        while not any(x.startswith("sweeper: interrupted;") for x in lines):  # the event: the first stop's line
            line = proc.stderr.readline()
            assert line, f"the run ended before its summary line: {lines}"
            lines.append(line)
        assert proc.poll() is None, "the first stop did not wait for the chunk in flight"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "sweeper: stopped at once" and "Traceback" not in "".join(lines) + err


# --------------------------------------------------------------------------- 6. disk full / read-only
@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs mounted for the test (tests run as root; root ignores chmod)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        why = f"cannot mount a tmpfs ({mounted.stderr.strip() or 'mount failed'}); needs root"
        if REQUIRED:
            pytest.fail(f"{why} (SWEEPER_REQUIRE_SLURM=1: required, not skipped)", pytrace=False)
        pytest.skip(why)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _mount(mnt, mode):
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:  # unbuffered: closing it has nothing left to write
        try:
            while f.write(block):
                pass
        except OSError:
            pass
    return filler


def _run_cli(client, spec, store):
    result = CliRunner().invoke(main, ["run", str(spec), "-o", str(store), "--scheduler", client.scheduler.address,
                                       "--no-progress"])
    return subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr)


def _error_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if not x.startswith(("sweeper: joined scheduler",
                                                                      "sweeper: local cluster"))]
    assert len(lines) == 1 and lines[0].startswith("sweeper: error:"), proc.stderr
    return lines[0]


def test_disk_full_and_read_only_store_give_a_clear_error_and_keep_every_point(tmp_path, tmpfs, client, reference):
    spec = write_spec(tmp_path)
    store = tmpfs / "s.zarr"

    # a read-only place for a new store: refused before anything is computed
    _mount(tmpfs, "ro")
    proc = _run_cli(client, spec, store)
    assert proc.returncode == 2
    assert "Read-only file system" in _error_line(proc) and not store.exists()
    _mount(tmpfs, "rw")

    # the disk fills up while the sweep runs
    gate = Gate(tmp_path / "gate", r"/s\.zarr/rates/c/7/")  # the last chunk waits for the full disk
    run = subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", "2", "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                           env=gate.env())
    gate.wait(run)
    _wait_for(run, lambda: store.exists() and SweepStore.open(store).counts()["done"] >= 4, "4 done points")
    os.killpg(run.pid, signal.SIGSTOP)  # hold the run (driver and workers) while the disk fills up
    filler = _fill(tmpfs)
    os.killpg(run.pid, signal.SIGCONT)
    gate.release()
    out, err = run.communicate(timeout=300)
    proc = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    assert proc.returncode == 2, err
    line = _error_line(proc)
    assert f"cannot write to {store}: No space left on device" in line
    assert "run again to resume" in line
    counts = assert_only_correct_points(store, reference)
    assert 4 <= counts["done"] < NPOINTS and counts["failed"] == 0
    assert f"({counts['done']} done, 0 failed, {counts['pending']} pending points kept" in line
    assert not lock_path(store).exists()  # released although the disk is full

    # read-only now: refused with the reason, nothing changes
    before = arrays(store)
    _mount(tmpfs, "ro")
    proc = _run_cli(client, spec, store)
    assert proc.returncode == 2
    assert f"cannot lock {store}: Read-only file system" in _error_line(proc)
    after = arrays(store)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)

    # room again: the resume completes the store exactly
    _mount(tmpfs, "rw")
    filler.unlink()
    summary = run_sweep(Sweep.from_file(spec), store, client=client)
    assert summary.ok and summary.computed == counts["pending"]
    assert_same_store(store, reference)
    assert verify_store(store) == []


# --------------------------------------------------------------------------- 7. numerical faults
UNSTABLE = """
network: NET
simulation: {tf: 0.05, dt: DT}
parameters:
  rate: {path: inputs.bg.rate, values: [100.0, 100000.0]}
  tau: {path: populations.e.tau_m, values: [0.02, 0.0001]}
output: {chunk_points: 4}
"""


@pytest.mark.parametrize("dt", [0.0002, 0.005])
def test_unstable_points_fail_with_the_engine_reason_never_nan_marked_done(tmp_path, client, dt):
    from sweeper.engine import simulate

    spec = write_spec(tmp_path, UNSTABLE.replace("DT", repr(dt)))
    sweep = Sweep.from_file(spec)
    summary = run_sweep(sweep, tmp_path / "s.zarr", client=client)
    ds = open_sweep(tmp_path / "s.zarr", index=False)
    status, errors = ds["status"].values, ds["error"].values
    rates, mean, final = ds["rates"].values, ds["mean_rate"].values, ds["final_rate"].values
    rate, tau = ds["rate"].values, ds["tau"].values
    stable = (rate == 100.0) & (tau == 0.02) & (dt < 0.001)  # dt = 5 ms is far too large for every point
    assert (status[stable] == DONE).all() and np.isfinite(rates[stable]).all()
    assert (status[~stable] == FAILED).all() and (~stable).sum() == (3 if dt < 0.001 else 4)
    for i in np.flatnonzero(~stable):
        assert np.isnan(rates[i]).all() and np.isnan(mean[i]).all() and np.isnan(final[i]).all()
        with pytest.raises(SimulationError) as raised:  # the stored reason is the engine's own
            simulate(sweep.network_for({"rate": rate[i], "tau": tau[i]}))
        assert errors[i] == str(raised.value)
        assert "probability mass not conserved" in errors[i] or "dt*||J|| is too large" in errors[i]
    mass = "probability mass not conserved (|sum(p) - 1| >= 1e-12): dt is too large"
    assert all(mass in e for e in errors[~stable]) if dt < 0.001 else mass in errors[(rate == 100.0) & (tau == 0.02)][0]
    assert not summary.ok and len(summary.failures) == (~stable).sum()
    assert verify_store(tmp_path / "s.zarr") == []
    shown = CliRunner().invoke(main, ["status", str(tmp_path / "s.zarr")])
    assert f"{(~stable).sum()} failed" in shown.output and "probability mass not conserved" in shown.output


def test_plot_and_unlock_on_a_read_only_file_system_are_one_line(tmp_path, tmpfs, client):
    spec = write_spec(tmp_path, SPEC.replace("values: [0.01, 0.015, 0.02, 0.03]", "values: [0.01, 0.02]"))
    store = tmpfs / "s.zarr"
    assert run_sweep(Sweep.from_file(spec), store, client=client).ok
    lock_path(store).write_text('{"host": "node-17", "pid": 4242, "started": "then"}')
    _mount(tmpfs, "ro")
    try:
        for args, message in [(["plot", store], f"sweeper: error: {tmpfs}/s.png: Read-only file system"),
                              (["plot", store, "-x", "rate", "-y", "tau", "-o", tmpfs / "p.png"],
                               f"sweeper: error: {tmpfs}/p.png: Read-only file system"),
                              (["unlock", store], f"sweeper: error: cannot unlock {store}: Read-only file system")]:
            result = CliRunner().invoke(main, [str(a) for a in args])
            assert result.exit_code == 2 and "Traceback" not in result.output, result.output
            assert result.output.strip().splitlines()[-1] == message
        assert lock_path(store).exists()
    finally:
        _mount(tmpfs, "rw")


# --------------------------------------------------------------------------- 1b. a dead MPI rank
@pytest.mark.mpi
def test_a_dead_mpi_worker_rank_ends_the_job_keeps_finished_points_and_the_same_command_completes(
        tmp_path, require_mpi, cluster_env, reference):
    """MPICH (from PyPI) cannot keep the other ranks alive when one dies, not even with
    ``-disable-auto-cleanup`` (its fault-tolerance mode aborts in MPI_Init), so the statement in
    docs/reliability.md is the other branch: the job ends with mpiexec's message and a non-zero
    status, no finished point is lost, and the same command resumes and completes the store."""
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    gate = Gate(tmp_path / "gate", r"/s\.zarr/rates/c/2/")  # a worker rank, as chunk 2 starts writing
    command = [require_mpi, "-n", "4", SWEEPER, "run", str(spec), "-o", str(store), "--cluster", "mpi",
               "--no-progress"]
    proc = subprocess.Popen(command, env=gate.env(cluster_env), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pid, _ = gate.wait(proc)
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode != 0
    assert "BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES" in out + err  # Hydra: stdout
    counts = assert_only_correct_points(store, reference)  # nothing wrong was kept
    assert counts["pending"] >= 2  # chunk 2 at least: its worker died before writing it

    again = subprocess.run(command, env=cluster_env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert "clearing a stale lock" in again.stderr
    assert_same_store(store, reference)
    assert verify_store(store) == []
