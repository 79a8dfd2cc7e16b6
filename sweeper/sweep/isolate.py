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

import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from ..config import get as config
from ..errors import SpecError, SweeperError

_local = threading.local()


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
    func = importer(ref, folders)
    with single_process():
        try:
            result = func(**args)
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


def _ready() -> bool:
    """In the helper process: the imports every builder call needs, done before the clock starts."""
    from ..io import popnet  # noqa: F401
    return True


def _pool() -> ProcessPoolExecutor:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            pool.submit(_ready).result()  # start-up is not the builder's time
        except BrokenProcessPool:
            pool.shutdown(wait=False, cancel_futures=True)
            raise BuilderEnded("the builders' helper process could not start") from None
        _local.pool = pool
    return pool


def _discard() -> None:
    pool = getattr(_local, "pool", None)
    _local.pool = None
    if pool is not None:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def call(importer, ref: str, folders: list, args: dict, convert: dict, shown: dict):
    """The builder's Network for ``args``, computed in this thread's helper process."""
    limit = float(config("sweep.builder-timeout"))
    future = _pool().submit(_run, importer, ref, [str(f) for f in folders], args, convert, shown)
    try:
        return future.result(timeout=limit)
    except FutureTimeout:
        _discard()
        raise BuilderEnded(f"the builder {ref} did not return within sweep.builder-timeout={limit:g} s "
                           f"for {shown}") from None
    except BrokenProcessPool:
        _discard()
        raise BuilderEnded(f"the builder {ref} ended its process (os._exit or a crash) for {shown}") from None
