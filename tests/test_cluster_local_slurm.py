"""slurm/local-cluster.sh against the live one-node cluster: idempotent start, clean stop."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"
STARTED = Path("/run/sweeper-slurm/started-by-script")
SLURM_PROCESSES = {"slurmctld", "slurmd", "slurmstepd", "slurmscriptd"}

pytestmark = pytest.mark.timeout(180)  # a hung daemon or job fails the test, never the suite


def cluster(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=120)


def processes() -> dict[int, str]:
    """pid -> "comm cmdline" of every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:  # ended meanwhile
                continue
            found[int(entry.name)] = f"{comm} {cmdline}"
    return found


def recorded() -> dict[str, int]:
    return {name: int(pid) for name, pid in (line.split() for line in STARTED.read_text().splitlines())}


@pytest.mark.slurm
def test_start_is_idempotent_and_stop_leaves_no_daemon(require_slurm):
    if not STARTED.exists() or not recorded():
        pytest.skip("the running Slurm was not started by slurm/local-cluster.sh; not stopping it")
    before = recorded()
    assert set(before) == {"munged", "slurmctld", "slurmd"}
    try:
        again = cluster("start")
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr and recorded() == before

        job = subprocess.run(["sbatch", "--parsable", "--wrap", "sleep 61.5"], capture_output=True,
                             text=True, timeout=30)
        assert job.returncode == 0, job.stderr

        stopped = cluster("stop")
        assert stopped.returncode == 0, stopped.stderr
        left = processes()
        assert not [p for p in before.values() if p in left], "a daemon the script started is still running"
        assert not [cmd for cmd in left.values() if cmd.split()[0] in SLURM_PROCESSES]
        assert not [cmd for cmd in left.values() if "sleep 61.5" in cmd], "the job outlived the cluster"
        assert cluster("status").returncode == 3
        assert not STARTED.exists()
        assert cluster("stop").returncode == 0  # nothing to stop: still fine
    finally:
        restarted = cluster("start")
    assert restarted.returncode == 0, restarted.stderr
    assert cluster("status").returncode == 0
    assert set(recorded()) == {"munged", "slurmctld", "slurmd"}
