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
        return CPU_COUNT if self.options.n_workers is None else self.options.n_workers

    def check(self) -> None:
        """``--workers``: at least 1, at most ``cluster.local.max-workers-per-core`` per core."""
        from dask.system import CPU_COUNT
        n = self.options.n_workers
        if n is None:
            return
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SweeperError(f"must be a whole number of at least 1, got {n!r}", "--workers")
        most = int(config.get("cluster.local.max-workers-per-core")) * CPU_COUNT
        if n > most:
            raise SweeperError(f"{n} workers is more than this machine runs usefully: at most {most} "
                               f"({CPU_COUNT} cores); use --scheduler or --cluster for more", "--workers")

    def target(self):
        from distributed import LocalCluster
        return LocalCluster

    def arguments(self) -> dict:
        o = self.options
        return {"n_workers": self.workers(), "threads_per_worker": o.threads_per_worker,
                "processes": bool(o.processes), "dashboard_address": config.get("cluster.dashboard-address"),
                "local_directory": o.local_directory}

    @contextlib.contextmanager
    def start(self):
        from distributed import Client
        import dask
        args = self.arguments()
        # non-daemonic worker processes may start the builders' helper process (sweep/isolate.py),
        # also when a nanny restarts one later: the setting holds while the cluster lives
        with dask.config.set({"distributed.worker.daemon": False}), \
                self.target()(**args) as cluster, Client(cluster) as client:
            kind = "processes" if args["processes"] else "threads"
            yield client, f"local cluster, {args['n_workers']} worker {kind}"


class SchedulerAddress(ClusterKind):
    """A scheduler that is already running (``--scheduler ADDRESS``): its workers are the cluster."""

    name = "scheduler"
    option = "--scheduler"
    choosable = False  # selected by --scheduler, not by --cluster

    def check(self) -> None:
        """A Dask address: ``tcp://HOST:PORT`` (or another registered scheme), or ``HOST:PORT``."""
        address = self.options.scheduler
        if not address:
            raise SweeperError("needs the address of a running scheduler", self.where)
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import backends

        text = str(address)
        try:
            scheme, location = parse_address(text)
            if scheme not in backends:
                raise ValueError(f"unknown scheme {scheme!r}")
            if scheme != "inproc":
                host, port = parse_host_port(location)
                if not host or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
                    raise ValueError("bad host or port")
        except (ValueError, TypeError):
            raise SweeperError(f"{text!r} is not a scheduler address (like tcp://HOST:8786)",
                               self.where) from None

    def target(self):
        from distributed import Client
        return Client

    def arguments(self) -> dict:
        return {"address": self.options.scheduler}

    @contextlib.contextmanager
    def start(self):
        from .durations import seconds
        timeout = seconds(config.get("cluster.scheduler.connect-timeout"),
                          "cluster.scheduler.connect-timeout")
        try:
            client = self.target()(**self.arguments(), timeout=timeout)
        except (OSError, TimeoutError) as exc:  # refused, unreachable, or not a Dask scheduler
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SweeperError(f"cannot reach the scheduler at {self.options.scheduler}: {reason}",
                               self.where) from None
        with client:
            yield client, f"joined scheduler {self.options.scheduler}"
