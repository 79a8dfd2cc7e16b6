"""Slurm worker jobs as the cluster (dask-jobqueue's SLURMCluster), kept topped up while a sweep runs."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading

from .. import config
from ..errors import SweeperError
from .base import ClusterKind
from .durations import seconds

JOB_NAME = "sweeper-worker"


def worker_lifetime_args(walltime: str, lifetime: str | float | None = None) -> list[str]:
    """``--lifetime``/``--lifetime-stagger`` so a worker retires before its job hits walltime.

    Default lifetime: walltime minus a margin (``cluster.worker-lifetime`` in sweeper.yaml: 10%,
    at least a minute, at most ten, never more than half the walltime); the stagger is half the
    margin, so no worker outlives its job.
    """
    wall = seconds(walltime, "--walltime")
    if lifetime is None:
        lo = seconds(config.get("cluster.worker-lifetime.min-margin"), "cluster.worker-lifetime.min-margin")
        hi = seconds(config.get("cluster.worker-lifetime.max-margin"), "cluster.worker-lifetime.max-margin")
        fraction = float(config.get("cluster.worker-lifetime.margin"))
        margin = min(hi, max(fraction * wall, min(lo, 0.5 * wall)))
        life = wall - margin
    else:
        life = seconds(lifetime, "--worker-lifetime")
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
    dask-jobqueue config (``~/.config/dask/jobqueue.yaml``), which supplies everything else.

    Each value: the explicit argument, else the jobqueue config, else ``cluster.slurm`` in
    sweeper.yaml.
    """
    import dask

    conf = dask.config.get("jobqueue.slurm", {})
    walltime = walltime or conf.get("walltime") or config.get("cluster.slurm.walltime")
    opts = {
        "cores": threads_per_worker,
        "processes": 1,  # one worker per job: a cancelled job loses exactly one worker
        "memory": memory or conf.get("memory") or config.get("cluster.slurm.memory"),
        "walltime": walltime,
        "python": sys.executable,  # jobs run the same environment's Python
        "job_name": JOB_NAME,
        "worker_extra_args": list(conf.get("worker-extra-args") or [])
        + worker_lifetime_args(walltime, worker_lifetime),
        # a nanny's worker is daemonic by default and could not start the builders' helper process
        "job_script_prologue": list(conf.get("job-script-prologue") or [])
        + ["export DASK_DISTRIBUTED__WORKER__DAEMON=False"],
        "scheduler_options": {"dashboard_address": config.get("cluster.dashboard-address"),
                              **(conf.get("scheduler-options") or {})},
    }
    for key, value in (("queue", queue), ("account", account), ("interface", interface),
                       ("local_directory", local_directory), ("log_directory", log_directory)):
        if value is not None:
            opts[key] = value
    if job_extra:
        opts["job_extra_directives"] = list(conf.get("job-extra-directives") or []) + list(job_extra)
    return opts


class Slurm(ClusterKind):
    """dask-jobqueue worker jobs (``jobs``, default ``cluster.slurm.jobs``): workers retire before
    the job's walltime and replacement jobs are submitted, so workers come and go while the sweep
    runs."""

    name = "slurm"

    def jobs(self) -> int:
        return self.options.jobs or int(config.get("cluster.slurm.jobs"))

    def check(self) -> None:
        jobs = self.options.jobs
        if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
            raise SweeperError(f"must be a whole number of at least 1, got {jobs!r}", "--jobs")
        self.arguments()  # option mistakes first: they need no Slurm to be reported
        if shutil.which("sbatch") is None:
            raise SweeperError("needs Slurm's sbatch on PATH (run it on a login node)", self.where)
        try:
            import dask_jobqueue  # noqa: F401
        except ImportError as exc:
            raise SweeperError(f"needs dask-jobqueue ({exc}); install 'sweeper[cluster]'",
                               self.where) from None

    def target(self):
        from dask_jobqueue import SLURMCluster
        return SLURMCluster

    def arguments(self) -> dict:
        o = self.options
        return slurm_cluster_options(
            threads_per_worker=o.threads_per_worker, queue=o.queue, account=o.account,
            walltime=o.walltime, worker_lifetime=o.worker_lifetime, interface=o.interface,
            local_directory=o.local_directory, job_extra=o.job_extra, memory=o.memory,
            log_directory=o.log_directory)

    def job_script(self, scheduler: str = "tcp://SCHEDULER:8786") -> str:
        """The worker job's sbatch script, as SLURMCluster would submit it to ``scheduler``."""
        from dask_jobqueue.slurm import SLURMJob
        args = {k: v for k, v in self.arguments().items() if k != "scheduler_options"}
        return SLURMJob(scheduler=scheduler, name=f"{JOB_NAME}-0", **args).job_script()

    @contextlib.contextmanager
    def start(self):
        import dask
        from distributed import Client

        jobs = self.jobs()
        # Forget a departed worker soon (dask's default is 15 s) so its replacement job is
        # submitted sooner.
        lost = config.get("cluster.slurm.lost-worker-timeout")
        with dask.config.set({"distributed.deploy.lost-worker-timeout": lost}):
            cluster = self.target()(**self.arguments())
            stop = threading.Event()
            every = seconds(config.get("cluster.slurm.reconcile-every"), "cluster.slurm.reconcile-every")
            keeper = threading.Thread(target=_keep_jobs, args=(cluster, jobs, stop, every),
                                      daemon=True, name="sweeper-keep-jobs")
            try:
                _check_job_script(cluster.job_script(), self.where)
                cluster.scale(jobs=jobs)
                keeper.start()
                with Client(cluster) as client:
                    yield client, f"Slurm cluster, {jobs} worker jobs"
            finally:
                stop.set()
                if keeper.is_alive():
                    keeper.join(timeout=10)
                cluster.close()  # scancels the worker jobs


def _check_job_script(script: str, where: str) -> None:
    """Let Slurm vet the worker job (partition, account, limits) before any is submitted."""
    probe = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True)
    if probe.returncode != 0:
        reason = " ".join(probe.stderr.replace("sbatch: error:", "").split())
        raise SweeperError(f"Slurm refuses the worker job: {reason}", where)


def _keep_jobs(cluster, jobs: int, stop: threading.Event, every: float) -> None:
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
