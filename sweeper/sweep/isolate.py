"""Builders run in a process of their own, with a time limit.

A user's builder may sleep forever, raise ``SystemExit`` or ``KeyboardInterrupt``, or call
``os._exit``: in the worker (or the driver, which calls it once to check the spec) that would
hang the run or end it with exit status 0 and points still pending. Here each thread that calls
builders keeps one helper process (spawned once, reused); a builder that overruns
``sweep.builder-timeout`` seconds has its process killed, one that ends its process is reported,
and either becomes that point's failure reason. ``sweep.builder-isolation: none`` calls builders
in the calling process (faster start, no protection).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import signal
import threading

from ..config import get as config
from ..errors import SpecError, SweeperError

_local = threading.local()
_helpers: set = set()  # every live helper, also of threads that have ended


class BuilderEnded(SweeperError):
    """The builder stopped its process, overran its time, or raised SystemExit/KeyboardInterrupt."""


def isolated() -> bool:
    """Whether builders get a helper process here: asked for in the config, and possible. sweeper's
    own clusters start non-daemonic worker processes; a daemonic one (a user's ``--scheduler``
    with default nanny settings) may not start children, and there builders run in the worker,
    whose crash costs only that worker (Dask reruns its tasks)."""
    if multiprocessing.current_process().daemon:
        return False
    return str(config("sweep.builder-isolation")).lower() != "none"


def _run(importer, ref: str, folders: list, args: dict, convert: dict, shown: dict):
    """In the helper process: import the builder (with ``importer``, recipe.import_builder, sent
    by reference), call it, convert what it returns to a Network."""
    from ..io.bmtk_compat import single_process
    from ..io.popnet import network_from_builder_result
    from .usercode import fit_args
    func = importer(ref, folders)
    with single_process():
        try:
            result = func(**fit_args(func, args))
        except SweeperError:
            raise
        except (SystemExit, KeyboardInterrupt) as exc:
            raise BuilderEnded(f"the builder {ref} raised {type(exc).__name__}({exc}) for {shown}") from None
        except Exception as exc:
            raise SpecError(f"the builder {ref} failed for {shown}: {type(exc).__name__}: {exc}") from None
        net = network_from_builder_result(result, **convert)
    try:
        pickle.dumps(net)
    except Exception as exc:  # noqa: BLE001 - anything a user's object may raise
        raise SpecError(f"the builder {ref} returned a network that cannot leave its process: {exc}") from None
    return net


def _die_with_parent(parent: int) -> None:
    """In the helper: end with the process that started it, however that one ends (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it ended before prctl took effect
        os._exit(0)


def _serve(conn, parent: int) -> None:
    """The helper process: answer builder calls one at a time until the pipe closes. Stop signals
    are the parent's business (a Ctrl-C must not fail the point being built)."""
    _die_with_parent(parent)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    from ..io import popnet  # noqa: F401 - the imports every call needs, before the clock starts
    conn.send(True)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = (True, _run(*request))
        except Exception as exc:  # noqa: BLE001 - sent back, raised in the caller
            answer = (False, exc)
        try:
            conn.send(answer)
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send((False, SpecError(str(answer[1]))))


class _Helper:
    """One daemonic helper process and its pipe. Daemonic: it ends when its parent exits."""

    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, os.getpid()), daemon=True,
                                name="sweeper-builder")
        self.proc.start()
        child.close()
        if not _helpers:
            # multiprocessing's exit hook (registered by now: atexit runs ours first) would SIGTERM
            # the helpers, which ignore it, and wait for them forever
            atexit.unregister(kill_all)
            atexit.register(kill_all)
        _helpers.add(self)
        try:
            self.conn.recv()  # started and imported: start-up is not the builder's time
        except (EOFError, OSError):
            self.kill()
            raise BuilderEnded("the builders' helper process could not start") from None

    def call(self, request: tuple, limit: float):
        """(finished, value): finished False when the limit passed or the process ended."""
        self.conn.send(request)
        if not self.conn.poll(limit):
            return False, "timeout"
        try:
            return True, self.conn.recv()
        except (EOFError, OSError):
            return False, "ended"

    def kill(self) -> None:
        _helpers.discard(self)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=30)
        self.conn.close()


def kill_all() -> None:
    """End every helper process at once (before an ``os._exit``, which skips their clean-up)."""
    for helper in list(_helpers):
        if helper.proc.is_alive():
            helper.proc.kill()


def _helper() -> _Helper:
    helper = getattr(_local, "helper", None)
    if helper is None or not helper.proc.is_alive():
        helper = _local.helper = _Helper()
    return helper


def _discard() -> None:
    helper, _local.helper = getattr(_local, "helper", None), None
    if helper is not None:
        helper.kill()


def call(importer, ref: str, folders: list, args: dict, convert: dict, shown: dict):
    """The builder's Network for ``args``, computed in this thread's helper process."""
    limit = float(config("sweep.builder-timeout"))
    finished, answer = _helper().call((importer, ref, [str(f) for f in folders], args, convert, shown),
                                      limit)
    if not finished:
        _discard()
        if answer == "timeout":
            raise BuilderEnded(f"the builder {ref} did not return within sweep.builder-timeout="
                               f"{limit:g} s for {shown}")
        raise BuilderEnded(f"the builder {ref} ended its process (os._exit or a crash) for {shown}")
    ok, value = answer
    if not ok:
        raise value
    return value
