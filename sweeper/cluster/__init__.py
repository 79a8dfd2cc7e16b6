"""Where a sweep's Dask tasks run: a local cluster, a running scheduler, an MPI job (dask-mpi) or
Slurm worker jobs (dask-jobqueue).

``connect(kind, ...)`` is the one entry point the sweep runner uses; it yields a
``distributed.Client`` and tears everything down afterwards. Each kind is a small class in the
table :data:`KINDS` (see :mod:`sweeper.cluster.kinds` for how to add one). ``render_sbatch`` and
``submit`` turn a sweep into one Slurm allocation that runs ``sweeper run --cluster mpi`` under
``srun``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator, Sequence

from ..errors import SweeperError
from .base import ClusterKind, Options
from .durations import seconds as _seconds
from .kinds import CHOICES, KINDS
from .sbatch import TEMPLATE, job_state, launchers, render_sbatch, submit, wait_job
from .slurm import slurm_cluster_options, worker_lifetime_args

__all__ = ["connect", "make_kind", "start", "KINDS", "CHOICES", "ClusterKind", "Options", "TEMPLATE",
           "render_sbatch", "submit", "job_state", "wait_job", "launchers",
           "slurm_cluster_options", "worker_lifetime_args"]

log = logging.getLogger(__name__)


def make_kind(kind: str = "local", **options) -> ClusterKind:
    """The cluster kind ``kind`` with ``options`` (those of :func:`connect`), nothing started.

    ``scheduler=ADDRESS`` selects the scheduler kind; it combines only with ``kind="local"``.
    """
    if kind not in KINDS:
        raise SweeperError(f"unknown cluster kind {kind!r}; choose one of {', '.join(CHOICES)}",
                           "--cluster")
    if options.get("scheduler") and kind != "local":
        raise SweeperError(f"--scheduler joins a running cluster and cannot be combined with "
                           f"--cluster {kind}", "--scheduler")
    if options.get("scheduler"):
        kind = "scheduler"
    return KINDS[kind](Options(**options))


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
    - "local": a LocalCluster of ``n_workers`` single-threaded workers (default: one per core),
      threads of this process unless ``processes=True``.
    - "mpi": call under ``mpiexec``/``srun``; rank 0 becomes the scheduler, ranks >= 2 workers, and
      only rank 1 enters the ``with`` body (the other ranks exit with status 0 once it is done).
    - "slurm": dask-jobqueue worker jobs (``jobs``, default 2); workers retire before the job's
      walltime and replacement jobs are submitted, so workers come and go while the sweep runs.

    Mistakes in the options are SweeperErrors raised before anything starts. Unless ``quiet``,
    the cluster and its dashboard are announced on the ``sweeper.cluster`` logger (INFO).
    """
    chosen = make_kind(kind, scheduler=scheduler, n_workers=n_workers,
                       threads_per_worker=threads_per_worker, jobs=jobs, queue=queue,
                       account=account, walltime=walltime, worker_lifetime=worker_lifetime,
                       interface=interface, local_directory=local_directory, job_extra=job_extra,
                       memory=memory, log_directory=log_directory, processes=processes)
    with start(chosen, quiet=quiet) as client:
        yield client


@contextlib.contextmanager
def start(kind: ClusterKind, *, quiet: bool = False) -> Iterator:
    """Check ``kind`` (from :func:`make_kind`), start it, yield its client, tear it down after."""
    kind.check()
    with kind.start() as (client, what):
        if not quiet:
            link = dashboard_link(client)
            log.info(f"sweeper: {what}; " + (f"Dask dashboard: {link}" if link else "no Dask dashboard"))
        yield client


def dashboard_link(client, timeout: float = 10.0) -> str | None:
    """The dashboard's address, or None when nothing answers there: a scheduler started with
    ``--no-dashboard`` (or without bokeh) still reports a dashboard port, whose /status is 404."""
    import urllib.error
    import urllib.request

    try:
        link = client.dashboard_link
    except (KeyError, AttributeError):
        return None
    if not link or getattr(client, "cluster", None) is not None:
        return link  # a cluster sweeper started serves the dashboard it was given
    try:
        with urllib.request.urlopen(link, timeout=timeout) as answer:
            return link if answer.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None
