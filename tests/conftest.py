"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    """A real 2-worker LocalCluster of worker processes (workers can be killed one at a time)."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


# --- cluster environments: MPI and the one-node Slurm ---------------------------------------------
# Tests that need mpiexec or a live Slurm request `require_mpi` / `require_slurm`. Where the
# machine lacks them the tests skip with the reason, except under SWEEPER_REQUIRE_SLURM=1 (set by
# .ci/run), where a missing Slurm or MPI is a failure.

REQUIRE_SLURM = os.environ.get("SWEEPER_REQUIRE_SLURM") == "1"


def _unavailable(reason: str):
    if REQUIRE_SLURM:
        pytest.fail(f"{reason} (SWEEPER_REQUIRE_SLURM=1: required, not skipped)", pytrace=False)
    pytest.skip(reason)


def _mpi_problem() -> tuple[str | None, str | None]:
    """(mpiexec path, None) or (None, why not)."""
    for module in ("mpi4py", "dask_mpi"):
        try:
            __import__(module)
        except ImportError as exc:
            return None, f"{module} is not importable ({exc}); pip install 'sweeper[cluster]'"
    local = Path(sys.executable).with_name("mpiexec")
    exe = str(local) if local.exists() else shutil.which("mpiexec")
    if exe is None:
        return None, "mpiexec not found next to Python or on PATH; pip install mpich"
    return exe, None


def _slurm_problem() -> str | None:
    """None when the one-node cluster answers, else why not."""
    for tool in ("sbatch", "squeue", "scontrol", "scancel", "sinfo"):
        if shutil.which(tool) is None:
            return (f"{tool} not found: the Slurm tests need the one-node cluster "
                    f"(run the tests as root through `make test`, or `bash slurm/local-cluster.sh start`)")
    ours = subprocess.run(["bash", str(ROOT / "slurm" / "local-cluster.sh"), "status"],
                          capture_output=True, text=True, timeout=30).returncode == 0
    if os.environ.get("SWEEPER_SLURM") != "1" and not ours:
        return ("the project's one-node Slurm is not running (as root: `bash slurm/local-cluster.sh "
                "start`, or run the tests with `make test`); other Slurm clusters are not used")
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if states.returncode != 0:
        return f"the Slurm controller does not answer: {states.stderr.strip()}"
    if not {"idle", "mixed", "allocated"} & set(states.stdout.split()):
        return f"no Slurm node is up (sinfo: {states.stdout.strip() or 'nothing'})"
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError as exc:
        return f"dask_jobqueue is not importable ({exc}); pip install 'sweeper[cluster]'"
    return None


@pytest.fixture(scope="session")
def require_mpi() -> str:
    """The mpiexec to use; skips (or fails under SWEEPER_REQUIRE_SLURM=1) when MPI is missing."""
    exe, why = _mpi_problem()
    if why:
        _unavailable(why)
    return exe


@pytest.fixture(scope="session")
def require_slurm() -> None:
    """The live one-node Slurm cluster; skips (or fails when required) when it is not up."""
    why = _slurm_problem()
    if why:
        _unavailable(why)


@pytest.fixture(scope="session")
def cluster_env() -> dict:
    """Environment for subprocesses: this Python's bin first on PATH, quiet Dask shutdown logs."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DASK_LOGGING__DISTRIBUTED"] = "warning"
    return env


def _queue() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines() if out.returncode == 0 else []


def wait_for_empty_queue(timeout: float = 300) -> None:
    """Block until every job has left the one-node cluster's queue, in whatever state it ended
    (COMPLETING included): the event the next Slurm test needs. Fails loudly when it never does."""
    deadline = time.monotonic() + timeout
    while jobs := _queue():
        if time.monotonic() > deadline:
            pytest.fail(f"Slurm jobs still queued after {timeout:.0f} s: {jobs}", pytrace=False)
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def _slurm_queue_drained(request):
    """A Slurm test starts and ends with an empty queue, so no test sees another's jobs."""
    if request.node.get_closest_marker("slurm") is None or _slurm_problem() is not None:
        yield
        return
    wait_for_empty_queue()
    yield
    wait_for_empty_queue()
