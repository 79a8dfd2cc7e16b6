"""Reliability of the store itself: one writer at a time (lock) and `sweeper verify` on damage.

Real LocalCluster, real `sweeper run` processes, real Zarr stores; damage is done to the files.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.store import DONE, FAILED, SweepStore
from sweeper.sweep import Sweep, run_sweep
from sweeper.store.lock import lock_path
from sweeper.verify import verify_store

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))

SPEC = """
network: NET
simulation: {tf: 0.05}
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0, 2.0e6]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
output: {chunk_points: 2, metric_window: 0.01}
"""
MORE = SPEC.replace("2.0e6]", "2.0e6, 300.0]")  # the same sweep with one more rate: would grow the store


def write_spec(folder: Path, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(text.replace("NET", str(NET)))
    return path


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def run_cli(client, spec, store, *extra):
    return invoke("run", spec, "-o", store, "--scheduler", client.scheduler.address, "--no-progress", *extra)


def start_driver(client, spec, store, *extra) -> subprocess.Popen:
    """A real `sweeper run` process joined to the test's cluster; returns once it holds the lock."""
    proc = subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--scheduler", client.scheduler.address,
                             "--no-progress", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not lock_path(store).exists():
        assert proc.poll() is None, f"the run ended before it took the lock: {proc.communicate()}"
        assert time.time() < deadline, "no lock after 60 s"
        time.sleep(0.01)
    return proc


# --------------------------------------------------------------------------- exclusive writer
def test_second_run_is_refused_naming_the_holder_and_the_store_is_untouched(tmp_path, client):
    spec, more, store = write_spec(tmp_path), write_spec(tmp_path, MORE, "more.yaml"), tmp_path / "s.zarr"
    assert run_cli(client, spec, store).exit_code == 1  # 6 done, 2 failed (the 2e6 rate blows up)
    before = {k: v[:] for k, v in zarr.open_group(str(store), mode="r").arrays()}
    first = start_driver(client, spec, store, "--retry-failed")
    os.kill(first.pid, signal.SIGSTOP)  # a live holder, frozen while it holds the lock
    try:
        second = run_cli(client, more, store)
        during = {k: v[:] for k, v in zarr.open_group(str(store), mode="r").arrays()}
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.exit_code == 2, second.output
    line, = second.output.splitlines()  # refused before joining or starting any cluster
    assert line.startswith("sweeper: error:") and "is being written by another sweeper run" in line
    holder = json.loads(lock_path(store).read_text())
    assert f"host {socket.gethostname()}" in line and f"pid {first.pid}" in line
    assert f"started {holder['started']}" in line and holder["started"][:2] == "20"
    assert f"sweeper unlock {store}" in line
    # the refused spec would have grown the store to 10 points: nothing was touched
    assert before.keys() == during.keys() and SweepStore.open(store).npoints == 8
    for k in before:
        np.testing.assert_array_equal(before[k], during[k], err_msg=k)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1, err  # the first run goes on undisturbed (its 2 points fail again)
    assert "6 done, 2 failed, 0 pending of 8 points (2 computed" in out
    assert not lock_path(store).exists()
    assert verify_store(store) == []


def test_a_run_that_has_not_created_its_store_yet_also_holds_it(tmp_path, client):
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    first = start_driver(client, spec, store)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = run_cli(client, spec, store)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.exit_code == 2 and f"pid {first.pid}" in second.output
    out, err = first.communicate(timeout=120)
    assert "6 done, 2 failed, 0 pending of 8 points" in out, err
    assert verify_store(store) == []


def test_stale_lock_of_a_killed_run_is_cleared_with_a_message(tmp_path, client):
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    first = start_driver(client, spec, store)
    first.send_signal(signal.SIGKILL)
    first.wait()
    dead = json.loads(lock_path(store).read_text())
    assert dead["pid"] == first.pid
    result = run_cli(client, spec, store)
    assert result.exit_code == 1, result.output  # the blow-up points fail; everything else is done
    assert (f"sweeper: clearing a stale lock on {store} (host {socket.gethostname()}, pid {first.pid}, "
            f"started {dead['started']}: that process no longer exists)") in result.stderr
    assert SweepStore.open(store).counts() == {"pending": 0, "done": 6, "failed": 2}
    assert not lock_path(store).exists() and verify_store(store) == []


def test_lock_of_another_host_or_a_damaged_lock_needs_unlock(tmp_path, client):
    spec, store = write_spec(tmp_path), tmp_path / "s.zarr"
    assert run_cli(client, spec, store).exit_code == 1
    assert invoke("unlock", store).output.strip() == f"{store} was not locked"

    lock_path(store).write_text(json.dumps({"host": "node-17", "pid": 4242, "started": "2026-01-02T03:04:05+00:00"}))
    refused = run_cli(client, spec, store, "--retry-failed")
    assert refused.exit_code == 2
    assert "(host node-17, pid 4242, started 2026-01-02T03:04:05+00:00)" in refused.output
    unlocked = invoke("unlock", store)
    assert unlocked.exit_code == 0
    assert "removed the possibly live lock of host node-17, pid 4242" in unlocked.output
    assert not lock_path(store).exists()

    lock_path(store).write_text("{not json")
    refused = run_cli(client, spec, store, "--retry-failed")
    assert refused.exit_code == 2 and f"unreadable lock file {lock_path(store)}" in refused.output
    assert invoke("unlock", store).exit_code == 0
    again = run_cli(client, spec, store, "--retry-failed")
    assert again.exit_code == 1 and "6 done, 2 failed, 0 pending" in again.output
    assert verify_store(store) == []


# --------------------------------------------------------------------------- sweeper verify
def _by_id(store):
    g = zarr.open_group(str(store), mode="r")
    order = np.argsort(g["point_id"][:])
    return {k: v[:][order] for k, v in g.arrays() if k not in ("time", "population")}


@pytest.mark.parametrize("killed_after", ["parameters", "per-point arrays", "id array resized"])
def test_a_run_killed_while_extending_is_repaired_by_the_next_run(tmp_path, client, killed_after):
    spec, more = write_spec(tmp_path), write_spec(tmp_path, MORE, "more.yaml")
    store, clean = tmp_path / "s.zarr", tmp_path / "clean.zarr"
    run_cli(client, spec, store)
    before = _by_id(store)
    # what SweepStore.extend leaves on disk when killed after one of its steps
    g, st = zarr.open_group(str(store), mode="r+"), SweepStore.open(store)
    n0, n1 = st.npoints, st.npoints + 2
    for name in st.parameters:
        g[name].resize((n1,))
        g[name][n0:n1] = [1.0, 2.0]
    if killed_after != "parameters":
        for name in ("rates", "mean_rate", "final_rate", "error", "status"):
            g[name].resize((n1,) + g[name].shape[1:])
    if killed_after == "id array resized":
        g["point_id"].resize((n1,))
    assert verify_store(store) != []

    repaired = run_cli(client, more, store)
    assert repaired.exit_code == 1  # the 2e6-rate points fail, as before
    assert f"sweeper: {store}: finished undoing an interrupted extension (2 partly added point(s)" in repaired.output
    assert verify_store(store) == [] and SweepStore.open(store).npoints == 10
    run_cli(client, more, clean)
    after, want = _by_id(store), _by_id(clean)
    assert after.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(after[k], want[k], err_msg=k)
    # the points computed before the interrupted extension were kept, not computed again
    assert "(2 computed" in repaired.output
    kept = np.isin(after["point_id"], before["point_id"])
    np.testing.assert_array_equal(after["rates"][kept], before["rates"])


@pytest.fixture(scope="module")
def good_store(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("verify")
    store = folder / "good.zarr"
    run_sweep(Sweep.from_file(write_spec(folder)), store, client=client)
    return store


def damaged(good: Path, tmp_path: Path, damage) -> Path:
    store = tmp_path / "damaged.zarr"
    shutil.copytree(good, store)
    damage(zarr.open_group(str(store), mode="r+", use_consolidated=False), store)
    return store


def verify_fails(store: Path, *expected: str) -> str:
    result = invoke("verify", store)
    assert result.exit_code == 1, result.output
    assert result.output.strip().endswith("problem(s)"), result.output
    for text in expected:
        assert text in result.output, (text, result.output)
    return result.output


def test_verify_accepts_a_sound_store(good_store):
    status = SweepStore.open(good_store).status()
    assert (status == DONE).sum() == 6 and (status == FAILED).sum() == 2
    result = invoke("verify", good_store)
    assert result.exit_code == 0 and result.output.strip() == f"{good_store}: OK"


def _set(g, name, index, value):
    a = g[name][:]
    a[index] = value
    g[name][:] = a


DAMAGES = {
    "NaN inside a done trace": (lambda g, s: _set(g, "rates", (0, 0, 40), np.nan),
                                ["point 0: marked done but its trace has non-finite values"]),
    "NaN over the end of a done trace": (lambda g, s: _set(g, "rates", (1, 0, slice(200, None)), np.nan),
                                         ["point 1: marked done but its trace ends at sample 200 of 251"]),
    "trace values altered": (lambda g, s: _set(g, "rates", 2, g["rates"][2] * 1.001),
                             ["point 2: mean_rate", "does not match its trace"]),
    "a metric changed": (lambda g, s: _set(g, "final_rate", (3, 0), 1.5),
                         ["point 3: final_rate [1.5] does not match its trace"]),
    "a coordinate changed": (lambda g, s: _set(g, "tau", 4, 0.03),
                             ["coordinate 'tau' of point 4 is", "the spec says", "point 4: id"]),
    "a done point without trace": (lambda g, s: _set(g, "status", 6, DONE),
                                   ["point 6: marked done but its trace is empty"]),
    "a failed point without reason": (lambda g, s: _set(g, "error", 7, ""),
                                      ["point 7: marked failed without a reason"]),
    "a rates chunk file truncated": (
        lambda g, s: (s / "rates/c/1/0/0").write_bytes((s / "rates/c/1/0/0").read_bytes()[:20]),
        ["points 2-3: chunk unreadable"]),
    "a status chunk file truncated": (
        lambda g, s: (s / "status/c/0").write_bytes((s / "status/c/0").read_bytes()[:3]),
        ["status, error or time unreadable"]),
    "a coordinate chunk deleted": (lambda g, s: (s / "rate/c/0").unlink(),
                                   ["coordinate 'rate' of point 0 is nan"]),
}


@pytest.mark.parametrize("what", list(DAMAGES))
def test_verify_reports_damage_and_exits_nonzero(good_store, tmp_path, what):
    damage, expected = DAMAGES[what]
    store = damaged(good_store, tmp_path, damage)
    verify_fails(store, *expected)
    assert verify_store(store)  # the Python API agrees
