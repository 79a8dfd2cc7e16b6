"""The writer lock on a shared (cluster) file system: one lock per store whatever the path, a
race-free takeover of a dead holder's lock, a lease that a live holder renews, names taken
literally, and damaged lock files reported in one line.

Runs that start together are real processes released by one barrier; waits are on events (a
file's stamp, a status), never on sleeps.
"""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import StoreError
from sweeper.store.lock import StoreLock, holder, is_stale, lock_path

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
SPEC = f"network: {NET}\nsimulation: {{tf: 0.05}}\nparameters: {{rate: {{path: inputs.bg.rate, values: [10.0, 20.0]}}}}\n"
FORK = multiprocessing.get_context("fork")

pytestmark = pytest.mark.timeout(300)


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)


def write_lock(store, age: float = 0.0, **fields) -> Path:
    path = lock_path(store)
    info = {"host": socket.gethostname(), "pid": dead_pid(), "started": "2026-01-02T03:04:05+00:00", **fields}
    path.write_text(info if isinstance(info, str) else json.dumps(info))
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def contender(store, barrier, results, release):
    barrier.wait()
    try:
        with StoreLock(store):
            results.put(("won", os.getpid()))
            release.wait(120)
    except StoreError as exc:
        results.put(("refused", str(exc)))


@pytest.mark.parametrize("stale, n", [("dead process on this host", 200), ("another host, lease expired", 50),
                                      ("damaged, lease expired", 50)])
def test_200_runs_that_find_the_same_stale_lock_exactly_one_wins(tmp_path, stale, n):
    store = tmp_path / "s.zarr"
    if stale.startswith("dead"):
        write_lock(store)
    elif stale.startswith("another"):
        write_lock(store, age=3600, host="node-17", pid=4242)
    else:
        lock_path(store).write_text('{"host": "node-17", "pid": "abc"}')
        then = time.time() - 3600
        os.utime(lock_path(store), (then, then))
    barrier, results, release = FORK.Barrier(n), FORK.Queue(), FORK.Event()
    procs = [FORK.Process(target=contender, args=(store, barrier, results, release)) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=240) for _ in range(n)]
    finally:
        release.set()
        for p in procs:
            p.join(timeout=60)
    winners = [who for what, who in outcomes if what == "won"]
    assert len(winners) == 1, f"{len(winners)} runs took the lock"
    refusals = [who for what, who in outcomes if what == "refused"]
    assert len(refusals) == n - 1
    assert all(f"is being written by another sweeper run (host {socket.gethostname()}, pid {winners[0]}," in r
               for r in refusals), refusals[:3]
    assert not lock_path(store).exists()  # the winner released it


def test_a_symlinked_path_finds_the_same_lock(tmp_path):
    real = tmp_path / "real.zarr"
    real.mkdir()
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    assert lock_path(link) == lock_path(real) == tmp_path / "real.zarr.lock"
    with StoreLock(real):
        with pytest.raises(StoreError, match=f"{link} is being written by another sweeper run"):
            StoreLock(link).__enter__()
    with StoreLock(link):
        with pytest.raises(StoreError, match="is being written by another sweeper run"):
            StoreLock(real).__enter__()
        assert json.loads(lock_path(real).read_text())["store"] == str(real)


def test_store_names_are_taken_literally(tmp_path):
    names = ["data[1].zarr", "data1.zarr", "data*.zarr", "data?.zarr"]
    locks = [StoreLock(tmp_path / name) for name in names]
    for lock in locks:  # all held at once: none is another's
        lock.__enter__()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n + ".lock" for n in names)
    for lock in locks:
        lock.__exit__(None, None, None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["", "/", ".", ".."])
def test_a_path_without_a_name_is_not_a_store(bad):
    with pytest.raises(StoreError, match="is not a store path"):
        lock_path(bad)


def test_the_holder_renews_its_lease_and_releases_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPER__CLUSTER__LOCK__RENEW_EVERY", "0.01s")
    store = tmp_path / "s.zarr"
    with StoreLock(store) as lock:
        first = os.stat(lock.path).st_mtime_ns
        then = time.time() - 30
        os.utime(lock.path, (then, then))  # as if the last renewal were long ago
        deadline = time.monotonic() + 60
        while os.stat(lock.path).st_mtime_ns <= first:  # the event: the renewer touched it
            assert time.monotonic() < deadline, "the lock was never renewed"
            time.sleep(0.001)
        info = holder(store)
        assert info["token"] == lock.token and info["pid"] == os.getpid() and not is_stale(info)
    assert not lock_path(store).exists()


def foreign_holder(store, ready, release):
    """Holds the lock as a run on another host would, renewing it."""
    socket.gethostname = lambda: "node-elsewhere"
    with StoreLock(store):
        ready.set()
        release.wait(120)


def test_a_renewing_holder_on_another_host_is_never_taken_over_and_a_silent_one_is(tmp_path, monkeypatch):
    lease = 2.0
    monkeypatch.setenv("SWEEPER__CLUSTER__LOCK__LEASE", f"{lease}s")
    monkeypatch.setenv("SWEEPER__CLUSTER__LOCK__RENEW_EVERY", "0.02s")
    store = tmp_path / "s.zarr"
    ready, release = FORK.Event(), FORK.Event()
    child = FORK.Process(target=foreign_holder, args=(store, ready, release))
    child.start()
    try:
        assert ready.wait(60)
        taken = os.stat(lock_path(store)).st_mtime
        deadline = time.monotonic() + 120
        while os.stat(lock_path(store)).st_mtime < taken + 2 * lease:  # renewed beyond two leases
            assert time.monotonic() < deadline and child.is_alive(), "the holder stopped renewing"
            time.sleep(0.005)
        with pytest.raises(StoreError, match="being written by another sweeper run \\(host node-elsewhere"):
            StoreLock(store).__enter__()
        os.kill(child.pid, signal.SIGKILL)  # it stops renewing, and its host cannot be asked
        child.join(timeout=30)
        stamp = os.stat(lock_path(store)).st_mtime
        while time.time() < stamp + lease + 0.1:  # the event: its lease has run out
            time.sleep(0.01)
        with StoreLock(store) as mine:
            assert holder(store)["token"] == mine.token
    finally:
        if child.is_alive():  # (an Event set after its waiter was killed would wait forever)
            release.set()
            child.join(timeout=30)


def _spec(tmp_path) -> Path:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    return spec


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_lock_from_another_host_whose_lease_ran_out_is_cleared_and_the_run_completes(tmp_path):
    store = tmp_path / "s.zarr"
    write_lock(store, age=3600, host="node-17", pid=4242)
    result = invoke("run", _spec(tmp_path), "-o", store, "--workers", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert ("sweeper: clearing a stale lock on " f"{store} (host node-17, pid 4242, started 2026-01-02T03:04:05+00:00: "
            "not renewed for 36") in result.output
    assert "2 done, 0 failed, 0 pending" in result.output and not lock_path(store).exists()


@pytest.mark.parametrize("content", ['{"host": "h", "pid": "abc", "started": "x"}', '{"host": 3, "pid": 1}',
                                     "[1, 2]", "\x00\xff garbage", '{"pid": 1e400}'])
def test_a_damaged_lock_file_is_one_line_everywhere(tmp_path, content):
    store = tmp_path / "s.zarr"
    spec = _spec(tmp_path)
    assert invoke("run", spec, "-o", store, "--workers", "1", "--no-progress").exit_code == 0
    lock_path(store).write_text(content)
    status = invoke("status", store)
    assert status.exit_code == 0 and f"unreadable lock file {lock_path(store)}" in status.output
    refused = invoke("run", spec, "-o", store, "--workers", "1", "--no-progress")
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.output.strip().splitlines()[-1] == (
        f"sweeper: error: {store} is being written by another sweeper run (unreadable lock file "
        f"{lock_path(store)}); if that run is dead, clear it with `sweeper unlock {store}`")
    unlocked = invoke("unlock", store)
    assert unlocked.exit_code == 0 and "removed the possibly live lock of unreadable lock file" in unlocked.output
    assert not lock_path(store).exists()


@pytest.mark.parametrize("bad", ["", "/"])
def test_run_into_a_path_without_a_name_is_one_line(tmp_path, bad):
    result = invoke("run", _spec(tmp_path), "-o", bad, "--no-progress")
    assert result.exit_code == 2
    assert result.output == f"sweeper: error: -o: {bad!r} is not a store path; give a folder to create or resume, like out/run.zarr\n"


def test_creating_a_store_with_glob_characters_leaves_another_runs_half_made_store(tmp_path):
    other = tmp_path / "data1.zarr.creating-999999"  # another run creating data1.zarr right now
    other.mkdir()
    (other / "zarr.json").write_text("{}")
    mine = tmp_path / "data[1].zarr"
    result = invoke("run", _spec(tmp_path), "-o", mine, "--workers", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (other / "zarr.json").exists() and (mine / "zarr.json").exists()
