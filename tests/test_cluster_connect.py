"""sweeper.cluster.connect: a real LocalCluster, dask-mpi under mpiexec, SLURMCluster on live Slurm."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sweeper.cluster import connect, slurm_cluster_options, worker_lifetime_args
from sweeper.errors import SweeperError

DATA = Path(__file__).parent / "data" / "cluster"

pytestmark = pytest.mark.timeout(180)  # a hung daemon or job fails the test, never the suite


def whoami(x):
    return x * x, os.getpid(), os.environ.get("SLURM_JOB_ID")


def test_local_cluster_has_one_thread_per_worker_process():
    with connect("local", n_workers=2, processes=True, quiet=True) as client:
        info = client.scheduler_info()["workers"]
        assert len(info) == 2 and {w["nthreads"] for w in info.values()} == {1}
        results = client.gather(client.map(whoami, range(8)))
    assert [r[0] for r in results] == [x * x for x in range(8)]
    assert os.getpid() not in {r[1] for r in results}  # processes, not threads of this one


def test_default_local_cluster_runs_the_engine_on_worker_threads_in_parallel():
    """Threads by default: the compiled time loop releases the GIL, so two workers overlap."""
    import threading
    import time

    from sweeper.engine import simulate
    from sweeper.io import load_network

    net = load_network(Path(__file__).parent / "data" / "reference" / "cases" / "bmtk_tutorial_2pop_gmres.json")
    simulate(net)  # load the kernel once

    def spans(_):  # long enough (several networks) that the two tasks' start skew does not matter
        t = time.perf_counter()
        for _ in range(6):
            rates = simulate(net).rates
        return t, time.perf_counter(), os.getpid(), threading.get_ident(), float(rates[0, -1])

    with connect("local", n_workers=2, quiet=True) as client:
        info = client.scheduler_info()["workers"]
        assert len(info) == 2 and {w["nthreads"] for w in info.values()} == {1}
        a, b = client.gather([client.submit(spans, k, workers=[w], pure=False) for k, w in enumerate(info)])
    assert a[2] == b[2] == os.getpid() and a[3] != b[3]  # two threads of this process
    assert a[4] == b[4] == simulate(net).rates[0, -1]
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    assert overlap > 0.5 * min(a[1] - a[0], b[1] - b[0])  # they ran at the same time, not one after the other


def test_joining_a_running_scheduler():
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        with connect(scheduler=cluster.scheduler_address, quiet=True) as client:
            assert client.submit(whoami, 3).result()[0] == 9
            assert client.scheduler.address == cluster.scheduler_address


def test_a_scheduler_without_a_dashboard_is_announced_without_a_link(caplog, tmp_path, cluster_env):
    """`dask scheduler --no-dashboard`: distributed would still build a link (to port 8787)."""
    import json
    import logging
    import time

    info = tmp_path / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    proc = subprocess.Popen([dask, "scheduler", "--no-dashboard", "--host", "127.0.0.1", "--port", "0",
                             "--scheduler-file", str(info)], env=cluster_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not info.exists() or not info.read_text().strip():  # the scheduler's own event
            assert proc.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.01)
        address = json.loads(info.read_text())["address"]
        with caplog.at_level(logging.INFO, logger="sweeper.cluster"):
            with connect(scheduler=address):
                pass
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    lines = [r.getMessage() for r in caplog.records if r.name == "sweeper.cluster"]
    assert len(lines) == 1 and lines[0].endswith("; no Dask dashboard"), lines
    assert "http" not in lines[0]


def test_a_scheduler_with_a_dashboard_is_announced_with_its_link(caplog):
    import logging

    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        with caplog.at_level(logging.INFO, logger="sweeper.cluster"):
            with connect(scheduler=cluster.scheduler_address):
                pass
        port = cluster.scheduler.services["dashboard"].port
    lines = [r.getMessage() for r in caplog.records if r.name == "sweeper.cluster"]
    assert len(lines) == 1 and f"Dask dashboard: http://" in lines[0] and f":{port}/status" in lines[0], lines


@pytest.mark.parametrize("kind, kwargs, message", [
    ("cloud", {}, "unknown cluster kind 'cloud'"),
    ("mpi", {"scheduler": "tcp://127.0.0.1:8786"}, "cannot be combined with --cluster mpi"),
])
def test_wrong_choices_are_user_errors(kind, kwargs, message):
    with pytest.raises(SweeperError, match=message):
        with connect(kind, **kwargs):
            pass


@pytest.mark.parametrize("walltime, lifetime, expected", [
    ("00:30:00", None, ["--lifetime", "1620s", "--lifetime-stagger", "90s"]),   # 10% margin
    ("02:00:00", None, ["--lifetime", "6600s", "--lifetime-stagger", "300s"]),  # margin at most 10 min
    ("10", None, ["--lifetime", "540s", "--lifetime-stagger", "30s"]),          # 10 minutes, 1 min margin
    ("1-00:00:00", "23h", ["--lifetime", "82800s", "--lifetime-stagger", "1800s"]),
])
def test_workers_retire_before_their_job_walltime(walltime, lifetime, expected):
    args = worker_lifetime_args(walltime, lifetime)
    assert args == expected
    life, stagger = int(args[1][:-1]), int(args[3][:-1])
    from sweeper.cluster import _seconds
    assert life + stagger < _seconds(walltime, "walltime")


def test_worker_lifetime_must_fit_in_walltime():
    with pytest.raises(SweeperError, match="shorter than the job walltime"):
        worker_lifetime_args("00:10:00", "2h")
    with pytest.raises(SweeperError, match="--walltime: cannot read 'soon'"):
        worker_lifetime_args("soon")


def test_slurm_options_set_only_what_sweeper_needs():
    opts = slurm_cluster_options(walltime="00:20:00", queue="debug", job_extra=["--qos=low"])
    assert opts["queue"] == "debug" and opts["processes"] == 1 and opts["cores"] == 1
    assert opts["python"] == sys.executable
    assert opts["job_extra_directives"] == ["--qos=low"]
    assert "--lifetime" in opts["worker_extra_args"]
    assert "account" not in opts and "interface" not in opts  # left to the user's jobqueue config


def test_site_settings_from_the_jobqueue_config():
    import dask
    import yaml
    site = yaml.safe_load((DATA.parents[2] / "slurm" / "jobqueue.yaml").read_text())
    site["jobqueue"]["slurm"].update({"queue": "compute", "job-extra-directives": ["--qos=normal"]})
    with dask.config.set(site):
        opts = slurm_cluster_options(job_extra=["--constraint=ib"])
        assert opts["walltime"] == "01:00:00" and opts["memory"] == "2GB"
        assert opts["job_extra_directives"] == ["--qos=normal", "--constraint=ib"]
        assert "queue" not in opts  # SLURMCluster reads it from the config itself
        assert slurm_cluster_options(queue="debug", walltime="00:20:00")["walltime"] == "00:20:00"


@pytest.mark.mpi
def test_dask_mpi_under_mpiexec_computes_and_propagates_exit_status(require_mpi, cluster_env, tmp_path):
    cmd = [require_mpi, "-n", "4", sys.executable, str(DATA / "mpi_app.py")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp_path, env=cluster_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["OK", str(sum(x * x for x in range(40))), "2", "2"]

    failing = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp_path,
                             env={**cluster_env, "APP_RC": "3"})
    assert failing.returncode == 3, failing.stderr[-3000:]
    assert failing.stdout.startswith("OK")


@pytest.mark.mpi
def test_dask_mpi_needs_three_ranks(require_mpi, cluster_env, tmp_path):
    done = subprocess.run([require_mpi, "-n", "2", sys.executable, str(DATA / "mpi_app.py")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=cluster_env)
    assert done.returncode != 0
    assert "needs at least 3 MPI ranks (scheduler, client, one worker), got 2" in done.stderr


@pytest.mark.mpi
def test_mpi_mode_without_mpiexec_is_a_one_line_error(require_mpi, cluster_env, tmp_path):
    done = subprocess.run([str(Path(sys.executable).with_name("sweeper")), "run", str(DATA / "grid.yaml"),
                           "-o", "s.zarr", "--cluster", "mpi"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=cluster_env)
    assert done.returncode == 2
    assert done.stderr == ("sweeper: error: --cluster mpi: needs at least 3 MPI ranks (scheduler, client, "
                           "one worker), got 1; start it with 'mpiexec -n N' or 'srun --mpi=pmi2', N >= 3\n")
    assert not (tmp_path / "s.zarr").exists()


def squeue_jobs(name="sweeper-worker"):
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True,
                         timeout=30).stdout
    return [line.split() for line in out.splitlines()]


@pytest.mark.slurm
def test_slurm_cluster_runs_two_worker_jobs(require_slurm, tmp_path):
    with connect("slurm", jobs=2, interface="lo", walltime="00:10:00", quiet=True,
                 local_directory=str(tmp_path / "dask"), log_directory=str(tmp_path / "logs")) as client:
        client.wait_for_workers(2, timeout=60)
        # the jobs' Python cannot import this test module: use functions it can import
        squares = client.gather(client.map(pow, range(10), [2] * 10))
        job_ids = set(client.run(os.getenv, "SLURM_JOB_ID").values())
        script = client.cluster.job_script()
        running = squeue_jobs()
    assert squares == [x * x for x in range(10)]
    assert {j[0] for j in running} == job_ids and len(job_ids) == 2  # one worker per job
    assert "#SBATCH -t 00:10:00" in script
    assert "--lifetime 540s --lifetime-stagger 30s" in script and "--interface lo" in script
    # closing the cluster cancels its jobs: none stays pending or running
    assert not [j for j in squeue_jobs() if j[1] in ("PENDING", "RUNNING")]


@pytest.mark.slurm
def test_a_worker_job_slurm_refuses_is_a_one_line_error(require_slurm, tmp_path):
    from click.testing import CliRunner
    from sweeper.cli import main
    result = CliRunner().invoke(main, ["run", str(DATA / "grid.yaml"), "-o", str(tmp_path / "s.zarr"),
                                       "--cluster", "slurm", "--partition", "nosuch", "--no-progress"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "sweeper: error: --cluster slurm: Slurm refuses the worker job: invalid partition specified: "
        "nosuch allocation failure: Invalid partition name specified")
    assert not squeue_jobs()


def test_run_refuses_a_worker_lifetime_longer_than_the_walltime(tmp_path):
    """Checked before any Slurm job is submitted: one line, exit 2, no traceback."""
    from click.testing import CliRunner

    from sweeper.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text(f"network: {Path(__file__).parents[1] / 'jobs' / 'networks' / 'single_population.json'}\n"
                    "parameters: {rate: {path: inputs.bg.rate, values: [10.0, 20.0]}}\n")
    result = CliRunner().invoke(main, ["run", str(spec), "-o", str(tmp_path / "s.zarr"), "--cluster", "slurm",
                                       "--walltime", "00:10:00", "--worker-lifetime", "20m"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == ("sweeper: error: --worker-lifetime: worker lifetime '20m' must be "
                                     "positive and shorter than the job walltime '00:10:00'")
