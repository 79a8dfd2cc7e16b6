"""The work behind ``sweeper run``: checks before anything starts, the run itself, and a clean stop
on SIGINT / SIGTERM (what Ctrl-C and Slurm's time limit send)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import click

from ..errors import SweeperError
from . import quiet_dask

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_signals(ignore: bool = False):
    """While the command runs: the first SIGINT/SIGTERM raises :class:`Stopped` (the run then
    winds down: chunks in flight end or stay pending, the lock is released, a summary printed); a
    second SIGINT exits at once, without a traceback; further SIGTERMs are ignored while winding
    down (Slurm sends one to the job and one through the batch script). ``ignore``: ignore both
    (the scheduler and worker ranks of an MPI job). The previous handlers return afterwards,
    unless a stop came: then the process is ending, and a second Ctrl-C must still end it."""
    seen: list[int] = []

    def handler(signum, frame):
        if seen:
            if signum == signal.SIGINT:
                os.write(2, b"sweeper: stopped at once\n")
                from ..sweep import isolate
                isolate.kill_all()  # os._exit skips the helpers' clean-up; they hold our pipes
                os._exit(128 + signum)
            return
        seen.append(signum)
        # The exception may land inside distributed's sync(), whose cancel callback then logs
        # errors of its own on the event loop thread: silence them before they are written.
        quiet_dask(logging.CRITICAL)
        raise Stopped(signum)

    previous = {s: signal.signal(s, signal.SIG_IGN if ignore else handler) for s in STOP_SIGNALS}
    try:
        yield seen
    finally:
        if not seen:  # after a stop the process is ending: a second Ctrl-C must still end it at once
            for s, h in previous.items():
                signal.signal(s, h)


def store_path(store: str) -> str:
    """``-o``: a path naming a folder of its own (not '', '/', '.', '..')."""
    path = Path(store)
    if not str(store).strip() or path.name in ("", "..") or not path.resolve().name:
        raise SweeperError(f"{store!r} is not a store path; give a folder to create or resume, "
                           "like out/run.zarr", "-o")
    return store


def _stopped(store, exc: KeyboardInterrupt):
    """The one-line summary of a stopped run, and its exit status (130 SIGINT, 143 SIGTERM)."""
    from ..store import SweepStore

    signum = getattr(exc, "signum", signal.SIGINT)
    what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    try:
        c = SweepStore.open(store).counts()
        kept = (f"{store} keeps {c['done']} done and {c['failed']} failed points "
                f"({c['pending']} pending)")
    except Exception:  # stopped before the store was made
        kept = f"{store} was not created yet"
    click.echo(f"sweeper: {what}; {kept}: run the same command again to resume", err=True)
    sys.exit(128 + signum)


def run_here(spec, store, kind, *, retry_failed: bool, progress: bool, accept_changed: bool = False):
    """``sweeper run`` with a cluster started (or joined) by this process; spec, cluster-option,
    lock and (for an existing store) store errors all come before any cluster starts; a new store
    is made while the cluster starts."""
    from ..cluster import start
    from ..engine.warm import ensure_warm
    from ..sweep import Sweep, run_sweep
    from ..sweep.runner import prepare_store, writer_lock

    sweep = Sweep.from_file(spec)
    kind.check()
    kind = _choose_workers(kind, sweep)
    import distributed  # noqa: F401  (its logging set-up first, so that quiet_dask's levels hold)

    quiet_dask()  # connections closing while the cluster shuts down: noise, not news
    with stop_signals() as seen:
        try:
            with writer_lock(store):
                job = Preparing(lambda: prepare_store(sweep, store, accept_changed=accept_changed),
                                background=not Path(store).exists())
                try:
                    if job.thread is None:  # an existing store, prepared already: maybe nothing to do
                        prepared = job.result()
                        if sweep.adaptive is None and not prepared.todo_chunks(retry_failed):
                            return run_sweep(sweep, store, retry_failed=retry_failed, lock=False, prepared=prepared)
                    with start(kind) as client:
                        prepared = job.result()  # a refusal here stops the cluster just started
                        ensure_warm()  # compiled here once, so the workers load it from disk
                        try:
                            summary = run_sweep(sweep, store, client=client, retry_failed=retry_failed,
                                                progress=progress, lock=False, prepared=prepared)
                            if seen:  # a stop whose Stopped was swallowed (a gc callback ignores exceptions)
                                raise Stopped(seen[0])
                            return summary
                        except BaseException:  # a stop or an error: the cancelled tasks' warnings while the cluster closes
                            quiet_dask(logging.CRITICAL)
                            raise
                finally:
                    job.wait()  # the lock is released only once the store is made
        except KeyboardInterrupt as exc:
            _stopped(store, exc)


def _choose_workers(kind, sweep):
    """A local cluster whose worker kind was not given: processes or threads by the sweep's cost."""
    from dataclasses import replace

    if kind.name != "local" or kind.options.processes is not None:
        return kind
    from ..sweep.sizing import local_processes
    processes, why = local_processes(sweep, kind.workers())
    if processes:
        logging.getLogger("sweeper.cluster").info(f"sweeper: worker processes: {why} (--threads for threads)")
    return type(kind)(replace(kind.options, processes=processes))


class Preparing:
    """Preparing the store: a new one in a thread while the cluster starts (creating a big store
    and starting workers both take seconds); an existing one at once, so that a store refused
    for its spec or code is refused before any cluster starts."""

    def __init__(self, make, background: bool):
        import threading

        self.make, self.value, self.error, self.thread = make, None, None, None
        if background:
            self.thread = threading.Thread(target=self._run, name="sweeper-prepare", daemon=True)
            self.thread.start()
        else:
            self._run()
            self.result()

    def _run(self):
        try:
            self.value = self.make()
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc

    def wait(self):
        if self.thread is not None:
            self.thread.join()

    def result(self):
        self.wait()
        if self.error is not None:
            raise self.error
        return self.value


def run_mpi(spec, store, *, interface, retry_failed: bool, progress: bool, accept_changed: bool = False):
    """``sweeper run --cluster mpi``: every rank runs this; only the client rank returns."""
    from ..cluster import connect
    from ..cluster.mpi import is_client_rank
    from ..sweep import Sweep, run_sweep

    quiet_dask()  # the ranks close each other's connections at shutdown: noise, not news
    with stop_signals(ignore=not is_client_rank()) as seen:
        try:
            with connect("mpi", interface=interface) as client:
                try:
                    summary = run_sweep(Sweep.from_file(spec), store, client=client, retry_failed=retry_failed,
                                        progress=progress, accept_changed=accept_changed)
                except BaseException:
                    quiet_dask(logging.CRITICAL)
                    raise
                if seen:  # a stop whose Stopped was swallowed (a gc callback ignores exceptions)
                    raise Stopped(seen[0])
                return summary
        except KeyboardInterrupt as exc:
            quiet_dask(logging.CRITICAL)
            _stopped(store, exc)
