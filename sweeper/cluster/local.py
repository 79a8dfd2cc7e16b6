"""Workers on this machine (a LocalCluster), or a running scheduler joined by its address."""

from __future__ import annotations

import contextlib

from .. import config
from ..errors import SweeperError
from .base import ClusterKind


class Local(ClusterKind):
    """A LocalCluster of ``n_workers`` single-threaded workers (default: one per core).

    They are threads of this process unless ``processes=True``: the engine's compiled time loop
    releases the GIL, so threads run in parallel and the cluster starts in about a second with one
    import and one kernel load. Worker processes isolate crashes and GIL-bound user builders, at a
    few seconds of start-up (each imports everything and loads the kernel).
    """

    name = "local"

    def workers(self) -> int:
        from dask.system import CPU_COUNT  # honours CPU affinity and cgroup limits
        return self.options.n_workers or CPU_COUNT

    def target(self):
        from distributed import LocalCluster
        return LocalCluster

    def arguments(self) -> dict:
        o = self.options
        return {"n_workers": self.workers(), "threads_per_worker": o.threads_per_worker,
                "processes": o.processes, "dashboard_address": config.get("cluster.dashboard-address"),
                "local_directory": o.local_directory}

    @contextlib.contextmanager
    def start(self):
        from distributed import Client
        args = self.arguments()
        with self.target()(**args) as cluster, Client(cluster) as client:
            kind = "processes" if args["processes"] else "threads"
            yield client, f"local cluster, {args['n_workers']} worker {kind}"


class SchedulerAddress(ClusterKind):
    """A scheduler that is already running (``--scheduler ADDRESS``): its workers are the cluster."""

    name = "scheduler"
    option = "--scheduler"
    choosable = False  # selected by --scheduler, not by --cluster

    def check(self) -> None:
        if not self.options.scheduler:
            raise SweeperError("needs the address of a running scheduler", self.where)

    def target(self):
        from distributed import Client
        return Client

    def arguments(self) -> dict:
        return {"address": self.options.scheduler}

    @contextlib.contextmanager
    def start(self):
        with self.target()(**self.arguments()) as client:
            yield client, f"joined scheduler {self.options.scheduler}"
