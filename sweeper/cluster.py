"""Where a sweep's Dask tasks run: a local cluster, an MPI job (dask-mpi) or Slurm worker jobs.

``connect(kind, ...)`` is the one entry point the sweep runner uses; it yields a
``distributed.Client`` and tears everything down afterwards. ``render_sbatch``/``submit`` turn a
sweep into one Slurm allocation that runs ``sweeper run --cluster mpi`` under ``srun``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from .errors import SweeperError

KINDS = ("local", "mpi", "slurm")
LAUNCHERS = {"srun": "srun --mpi=pmi2", "mpiexec": "mpiexec"}
TEMPLATE = Path(__file__).with_name("templates") / "sweep.sbatch.template"

_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def connect(kind: str = "local", *, scheduler: str | None = None, n_workers: int | None = None,
            threads_per_worker: int = 1, jobs: int | None = None, queue: str | None = None,
            account: str | None = None, walltime: str | None = None,
            worker_lifetime: str | float | None = None, interface: str | None = None,
            local_directory: str | None = None, job_extra: Sequence[str] | None = None,
            memory: str | None = None, log_directory: str | None = None,
            processes: bool = False, quiet: bool = False) -> Iterator:
    """Yield a ``distributed.Client`` for ``kind`` ("local", "mpi" or "slurm").

    - ``scheduler=ADDRESS``: join a running scheduler (kind must be "local", the default).
    - "local": a LocalCluster of ``n_workers`` single-threaded workers (default: one per core).
      They are threads of this process unless ``processes=True``: the engine's compiled time
      loop releases the GIL, so threads run in parallel and the cluster starts in about a second
      with one import and one kernel load. Worker processes isolate crashes and GIL-bound user
      builders, at a few seconds of start-up (each imports everything and loads the kernel).
    - "mpi": call under ``mpiexec``/``srun``; rank 0 becomes the scheduler, ranks >= 2 workers, and
      only rank 1 enters the ``with`` body (the other ranks exit with status 0 once it is done).
    - "slurm": dask-jobqueue worker jobs (``jobs``, default 2); workers retire before the job's
      walltime and replacement jobs are submitted, so workers come and go while the sweep runs.
    """
    if kind not in KINDS:
        raise SweeperError(f"unknown cluster kind {kind!r}; choose one of {', '.join(KINDS)}",
                           "--cluster")
    if scheduler and kind != "local":
        raise SweeperError(f"--scheduler joins a running cluster and cannot be combined with "
                           f"--cluster {kind}", "--scheduler")
    from distributed import Client

    if scheduler:
        with Client(scheduler) as client:
            _announce(client, f"joined scheduler {scheduler}", quiet)
            yield client
    elif kind == "local":
        from dask.system import CPU_COUNT  # honours CPU affinity and cgroup limits
        from distributed import LocalCluster

        workers = n_workers or CPU_COUNT
        with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                          processes=processes, dashboard_address=":0",
                          local_directory=local_directory) as cluster, Client(cluster) as client:
            _announce(client, f"local cluster, {workers} worker {'processes' if processes else 'threads'}", quiet)
            yield client
    elif kind == "mpi":
        size = _mpi_start(interface, threads_per_worker, local_directory)
        with Client() as client:  # the scheduler address was set by dask_mpi.initialize
            client.wait_for_workers(size - 2, timeout=120)
            _announce(client, f"MPI cluster, {size - 2} workers", quiet)
            yield client
    else:
        with _slurm_cluster(jobs=jobs or 2, threads_per_worker=threads_per_worker, queue=queue,
                            account=account, walltime=walltime, worker_lifetime=worker_lifetime,
                            interface=interface, local_directory=local_directory,
                            job_extra=job_extra, memory=memory,
                            log_directory=log_directory) as cluster, Client(cluster) as client:
            _announce(client, f"Slurm cluster, {jobs or 2} worker jobs", quiet)
            yield client


def _announce(client, what: str, quiet: bool) -> None:
    if not quiet:
        _say(f"sweeper: {what}; Dask dashboard: {client.dashboard_link}")


# --- MPI ----------------------------------------------------------------------------------------

def _mpi_start(interface: str | None, threads: int, local_directory: str | None) -> int:
    """Run dask-mpi's rank roles; returns the world size on rank 1 only (other ranks exit)."""
    try:
        import dask_mpi
        from mpi4py import MPI
    except ImportError as exc:
        raise SweeperError(f"needs mpi4py and dask-mpi ({exc}); install 'sweeper[cluster]'",
                           "--cluster mpi") from None
    import logging

    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    if size < 3:
        raise SweeperError(f"needs at least 3 MPI ranks (scheduler, client, one worker), got "
                           f"{size}; start it with 'mpiexec -n N' or 'srun --mpi=pmi2', N >= 3",
                           "--cluster mpi")
    if interface is None and len(set(comm.allgather(MPI.Get_processor_name()))) == 1:
        import psutil

        # every rank on this host: keep all traffic on loopback
        interface = next((name for name in ("lo", "lo0") if name in psutil.net_if_addrs()), None)
    # Shutdown closes the connections from both ends; the resulting messages are noise.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # Plain workers, not Nanny: a nanny spawns a process that would call MPI_Init again.
    dask_mpi.initialize(interface=interface, nthreads=threads, local_directory=local_directory,
                        dashboard_address=":0", comm=comm)
    return size


# --- Slurm worker jobs (dask-jobqueue) ----------------------------------------------------------

def _seconds(text: str | float | int, where: str) -> float:
    """Slurm/Dask durations ("1:30:00", "2-00:00:00", "45m", 90) in seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if _TIME_RE.match(s):
        days = 0
        if "-" in s:
            d, s = s.split("-", 1)
            days = int(d)
        parts = [int(p) for p in s.split(":")]
        if days:  # D-HH[:MM[:SS]]
            parts += [0] * (3 - len(parts))
            h, m, sec = parts
        else:     # MM, MM:SS or HH:MM:SS (Slurm's reading)
            h, m, sec = ([0, 0] + parts)[-3:] if len(parts) != 1 else (0, parts[0], 0)
        return float(days * 86400 + h * 3600 + m * 60 + sec)
    from dask.utils import parse_timedelta
    try:
        return float(parse_timedelta(s))
    except (ValueError, KeyError):
        raise SweeperError(f"cannot read {text!r} as a duration (HH:MM:SS or e.g. '45m')",
                           where) from None


def worker_lifetime_args(walltime: str, lifetime: str | float | None = None) -> list[str]:
    """``--lifetime``/``--lifetime-stagger`` so a worker retires before its job hits walltime.

    Default lifetime: walltime minus a margin of 10% (at least a minute, at most ten, never more
    than half the walltime); the stagger is half the margin, so no worker outlives its job.
    """
    wall = _seconds(walltime, "--walltime")
    if lifetime is None:
        margin = min(600.0, max(0.1 * wall, min(60.0, 0.5 * wall)))
        life = wall - margin
    else:
        life = _seconds(lifetime, "--worker-lifetime")
        margin = wall - life
        if life <= 0 or life >= wall:
            raise SweeperError(f"worker lifetime {lifetime!r} must be positive and shorter than "
                               f"the job walltime {walltime!r}", "--worker-lifetime")
    stagger = min(margin / 2, life / 4)
    return ["--lifetime", f"{int(life)}s", "--lifetime-stagger", f"{int(stagger)}s"]


def slurm_cluster_options(*, threads_per_worker: int = 1, queue=None, account=None, walltime=None,
                          worker_lifetime=None, interface=None, local_directory=None,
                          job_extra=None, memory=None, log_directory=None) -> dict:
    """Keyword arguments for ``SLURMCluster``: only what sweeper needs to differ from the user's
    dask-jobqueue config (``~/.config/dask/jobqueue.yaml``), which supplies everything else."""
    import dask

    conf = dask.config.get("jobqueue.slurm", {})
    walltime = walltime or conf.get("walltime") or "00:30:00"
    opts = {
        "cores": threads_per_worker,
        "processes": 1,  # one worker per job: a cancelled job loses exactly one worker
        "memory": memory or conf.get("memory") or "2GB",
        "walltime": walltime,
        "python": sys.executable,  # jobs run the same environment's Python
        "job_name": "sweeper-worker",
        "worker_extra_args": list(conf.get("worker-extra-args") or [])
        + worker_lifetime_args(walltime, worker_lifetime),
        "scheduler_options": {"dashboard_address": ":0", **(conf.get("scheduler-options") or {})},
    }
    for key, value in (("queue", queue), ("account", account), ("interface", interface),
                       ("local_directory", local_directory), ("log_directory", log_directory)):
        if value is not None:
            opts[key] = value
    if job_extra:
        opts["job_extra_directives"] = list(conf.get("job-extra-directives") or []) + list(job_extra)
    return opts


@contextlib.contextmanager
def _slurm_cluster(*, jobs: int, **options):
    if shutil.which("sbatch") is None:
        raise SweeperError("needs Slurm's sbatch on PATH (run it on a login node)",
                           "--cluster slurm")
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise SweeperError(f"needs dask-jobqueue ({exc}); install 'sweeper[cluster]'",
                           "--cluster slurm") from None
    import dask

    # Forget a departed worker after 2 s (not 15) so its replacement job is submitted sooner.
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "2s"}):
        cluster = SLURMCluster(**slurm_cluster_options(**options))
        stop = threading.Event()
        keeper = threading.Thread(target=_keep_jobs, args=(cluster, jobs, stop), daemon=True,
                                  name="sweeper-keep-jobs")
        try:
            _check_job_script(cluster.job_script())
            cluster.scale(jobs=jobs)
            keeper.start()
            yield cluster
        finally:
            stop.set()
            if keeper.is_alive():
                keeper.join(timeout=10)
            cluster.close()  # scancels the worker jobs


def _check_job_script(script: str) -> None:
    """Let Slurm vet the worker job (partition, account, limits) before any is submitted."""
    probe = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True)
    if probe.returncode != 0:
        reason = " ".join(probe.stderr.replace("sbatch: error:", "").split())
        raise SweeperError(f"Slurm refuses the worker job: {reason}", "--cluster slurm")


def _keep_jobs(cluster, jobs: int, stop: threading.Event, every: float = 2.0) -> None:
    """Submit a new worker job whenever one has ended (lifetime, walltime, scancel, lost node).

    dask-jobqueue's ``scale`` acts only when the target changes; asking again for the same number
    makes the cluster reconcile its job list, which starts jobs for the workers that left. The
    check runs on the cluster's event loop, where its bookkeeping lives.
    """
    def reconcile():
        if cluster.status.name in ("closing", "closed"):
            return
        if set(cluster.worker_spec) - set(cluster.workers):
            cluster.scale(jobs=jobs)

    while not stop.wait(every):
        cluster.loop.add_callback(reconcile)


# --- one allocation: sbatch ---------------------------------------------------------------------

def _sweeper_executable() -> str:
    exe = Path(sys.executable).with_name("sweeper")
    return str(exe) if exe.exists() else (shutil.which("sweeper") or "sweeper")


def render_sbatch(spec: str | os.PathLike, store: str | os.PathLike, nodes: int, time: str, *,
                  partition: str | None = None, account: str | None = None,
                  ntasks_per_node: int = 4, launcher: str = "srun",
                  extra: Sequence[str] = (), run_args: Sequence[str] = (),
                  output: str | os.PathLike | None = None, job_name: str | None = None,
                  workdir: str | os.PathLike | None = None,
                  template: str | os.PathLike | None = None) -> str:
    """The sbatch script that runs ``sweeper run SPEC -o STORE --cluster mpi`` in one allocation.

    ``extra`` are additional ``#SBATCH`` options (e.g. ``"--mem-per-cpu=2G"``); ``run_args`` are
    passed on to ``sweeper run``; ``launcher`` is "srun" (``srun --mpi=pmi2``), "mpiexec", or a
    command line of your own. Paths become absolute so the job runs from anywhere.
    """
    if int(nodes) < 1:
        raise SweeperError(f"must be at least 1, got {nodes}", "--nodes")
    if int(ntasks_per_node) < 1:
        raise SweeperError(f"must be at least 1, got {ntasks_per_node}", "--ntasks-per-node")
    if int(nodes) * int(ntasks_per_node) < 3:
        raise SweeperError(f"--nodes {nodes} x --ntasks-per-node {ntasks_per_node} gives "
                           f"{int(nodes) * int(ntasks_per_node)} MPI ranks; dask-mpi needs at least "
                           f"3 (scheduler, client, one worker)", "--ntasks-per-node")
    if not _TIME_RE.match(str(time).strip()):
        raise SweeperError(f"{time!r} is not a Slurm time limit (HH:MM:SS, MM:SS or D-HH:MM:SS)",
                           "--time")
    spec, store = Path(spec).resolve(), Path(store).resolve()
    workdir = Path(workdir).resolve() if workdir else Path.cwd()
    output = Path(output).resolve() if output else store.with_name(f"{store.stem}-slurm-%j.out")
    directives = [f"--partition={partition}"] if partition else []
    directives += [f"--account={account}"] if account else []
    for option in extra:
        option = option.strip()
        if not option.startswith("-") or "\n" in option:
            raise SweeperError(f"{option!r} is not an sbatch option (like --mem-per-cpu=2G)",
                               "--sbatch-option")
        directives.append(option)
    q = shlex.quote
    values = {
        "job_name": job_name or f"sweeper-{store.stem}",
        "nodes": str(int(nodes)),
        "ntasks_per_node": str(int(ntasks_per_node)),
        "time": str(time).strip(),
        "output": str(output),
        "workdir": str(workdir),
        "directives": "\n".join(f"#SBATCH {d}" for d in directives),
        "bindir": q(str(Path(sys.executable).parent)),
        "launcher": LAUNCHERS.get(launcher, launcher),
        "sweeper": q(_sweeper_executable()),
        "spec": q(str(spec)),
        "store": q(str(store)),
        "run_args": " ".join(q(a) for a in run_args),
    }
    text = Path(template or TEMPLATE).read_text()

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise SweeperError(f"unknown placeholder {{{{{key}}}}}", str(template or TEMPLATE))
        return values[key]

    empty = [key for key, value in values.items() if not value]
    for key in empty:  # a field alone on its line that renders empty takes the line with it
        text = re.sub(r"^\{\{\s*%s\s*\}\}\n" % key, "", text, flags=re.M)
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", fill, text)
    return re.sub(r" +\n", "\n", text)


def submit(spec, store, nodes: int, time: str, **options) -> str:
    """Render the sbatch script (see :func:`render_sbatch`), submit it, return the job id."""
    if shutil.which("sbatch") is None:
        raise SweeperError("sbatch not found on PATH; submit from a Slurm login node, or print "
                           "the script with --dry-run", "sweeper submit")
    script = render_sbatch(spec, store, nodes, time, **options)
    output = re.search(r"^#SBATCH --output=(.*)$", script, re.M)
    if output:  # Slurm does not create the folder; the job would fail without a trace
        Path(output.group(1)).parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["sbatch", "--parsable"], input=script, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise SweeperError(f"sbatch refused the job: {done.stderr.strip() or done.stdout.strip()}",
                           "sweeper submit")
    return done.stdout.strip().split(";")[0]


def job_state(job_id: str) -> str | None:
    """The job's state as squeue reports it (PENDING, RUNNING, ...), or None once it has left."""
    done = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], text=True,
                          capture_output=True)
    state = done.stdout.strip()
    return state or None


def wait_job(job_id: str, timeout: float | None = None, poll: float = 0.5) -> int:
    """Wait for a Slurm job to end; return its exit status (128 + signal if it was killed).

    Polls squeue, which answers sooner than ``sbatch --wait``. On timeout the job is cancelled
    and SweeperError raised.
    """
    start = time.monotonic()
    while job_state(job_id) is not None:
        if timeout is not None and time.monotonic() - start > timeout:
            subprocess.run(["scancel", str(job_id)], capture_output=True)
            raise SweeperError(f"job {job_id} still running after {timeout:g} s; cancelled it",
                               "sweeper submit --wait")
        time.sleep(poll)
    shown = subprocess.run(["scontrol", "show", "job", str(job_id)], text=True,
                           capture_output=True).stdout
    match = re.search(r"\bExitCode=(\d+):(\d+)", shown)
    if not match:
        raise SweeperError(f"cannot find the exit status of job {job_id} (scontrol keeps it "
                           f"only for MinJobAge seconds)", "sweeper submit --wait")
    code, signal = int(match.group(1)), int(match.group(2))
    return code if code or not signal else 128 + signal
