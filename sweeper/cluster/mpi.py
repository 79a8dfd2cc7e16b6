"""An MPI job as the cluster (dask-mpi): started by ``mpiexec`` or ``srun``, one role per rank."""

from __future__ import annotations

import contextlib

from .. import config
from ..errors import SweeperError
from .durations import seconds
from .base import ClusterKind


def is_client_rank() -> bool:
    """False on the scheduler and worker ranks of an MPI job (rank 0 and ranks >= 2): those end
    when the client (rank 1) closes the cluster, so they leave stop signals to it."""
    try:
        from mpi4py import MPI as mpi
    except ImportError:
        return True
    comm = mpi.COMM_WORLD
    return comm.Get_size() < MPI.min_ranks or comm.Get_rank() == 1


class MPI(ClusterKind):
    """Call under ``mpiexec``/``srun``: rank 0 becomes the scheduler, ranks >= 2 workers, and only
    rank 1 enters the ``with`` body (the other ranks exit with status 0 once it is done)."""

    name = "mpi"
    min_ranks = 3  # scheduler, client, one worker

    def check(self) -> None:
        try:
            import dask_mpi  # noqa: F401
            import mpi4py  # noqa: F401
        except ImportError as exc:
            raise SweeperError(f"needs mpi4py and dask-mpi ({exc}); install 'sweeper[cluster]'",
                               self.where) from None

    def target(self):
        import dask_mpi
        return dask_mpi.initialize

    def arguments(self) -> dict:
        """dask-mpi's arguments; ``interface`` None lets each host pick its default route (or
        loopback when every rank is on one host, decided in :meth:`start`)."""
        o = self.options
        return {"interface": o.interface, "nthreads": o.threads_per_worker,
                "local_directory": o.local_directory,
                "dashboard_address": config.get("cluster.dashboard-address")}

    def _initialize(self) -> int:
        """Run dask-mpi's rank roles; returns the world size on rank 1 only (other ranks exit)."""
        from mpi4py import MPI as mpi

        comm = mpi.COMM_WORLD
        size = comm.Get_size()
        if size < self.min_ranks:
            raise SweeperError(f"needs at least 3 MPI ranks (scheduler, client, one worker), got "
                               f"{size}; start it with 'mpiexec -n N' or 'srun --mpi=pmi2', N >= 3",
                               self.where)
        args = self.arguments()
        if args["interface"] is None and len(set(comm.allgather(mpi.Get_processor_name()))) == 1:
            import psutil

            # every rank on this host: keep all traffic on loopback
            args["interface"] = next((n for n in ("lo", "lo0") if n in psutil.net_if_addrs()), None)
        # Plain workers, not Nanny: a nanny spawns a process that would call MPI_Init again.
        self.target()(comm=comm, **args)
        return size

    @contextlib.contextmanager
    def start(self):
        from distributed import Client

        size = self._initialize()
        with Client() as client:  # the scheduler address was set by dask_mpi.initialize
            client.wait_for_workers(size - 2, timeout=seconds(config.get("cluster.mpi.worker-timeout"),
                                                              "cluster.mpi.worker-timeout"))
            yield client, f"MPI cluster, {size - 2} workers"
