"""The engine's one-time compile, announced and done up front.

numba compiles the kernels on their first call and keeps them on disk (``cache=True``); on a
fresh machine that first call waits tens of seconds, in silence, inside whichever process runs
first (every worker of a sweep at once).  :func:`ensure_warm` does it once, in the calling
process, after saying so ("compiling the engine once, about N s") and with a line every few
seconds, so that workers then load the kernels from disk.  ``sweeper warmup`` (and
``make install``) call it ahead of any run.  The update method is an argument of the one
batch kernel, so one small network that uses every method compiles everything.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

STAMP = "sweeper-engine-warm.json"
GUESS_SECONDS = 30.0  # announced before the first compile on a machine (then: the last one's time)
TICK_SECONDS = 5.0


def _modules():
    import sys

    from . import codes, kernels_common, kernels_gmres, kernels_taylor, operators, propagate
    return [codes, kernels_common, kernels_taylor, kernels_gmres, operators, propagate, sys.modules[__name__]]


def _cache_dir() -> Path | None:
    from .propagate import run_members
    path = getattr(getattr(run_members, "_cache", None), "_cache_path", None)
    return Path(path) if path else None


def _stamp() -> dict:
    folder = _cache_dir()
    try:
        return json.loads((folder / STAMP).read_text()) if folder else {}
    except (OSError, ValueError):
        return {}


def is_warm() -> bool:
    """The batch kernel is compiled and on disk for this source (importing ``propagate`` flushed
    the cache if any kernel module changed: :mod:`.kernel_cache`; a flushed index has no .nbc)."""
    folder = _cache_dir()
    return folder is not None and any(folder.glob("propagate.run_members-*.nbc"))


def warm_network():
    """A small network with one population per update method, connected, with a delay."""
    from ..model import (ConstantRate, Connection, Dist, ExternalPopulation, InternalPopulation, Network,
                         Simulation)
    from .methods import METHODS

    pops, conns = [ExternalPopulation("bg", ConstantRate(50.0))], []
    for k, method in enumerate(METHODS):
        pops.append(InternalPopulation(f"p{k}", v_min=-0.01, v_max=0.02, dv=0.002, update_method=method,
                                       tol=1e-12))
        conns.append(Connection("bg", f"p{k}", 5.0, Dist.delta(0.004), Dist.delta(0.001)))
        if k:
            conns.append(Connection(f"p{k - 1}", f"p{k}", 2.0, Dist.delta(0.002)))
    return Network(tuple(pops), tuple(conns), Simulation(t0=0.0, tf=0.005, dt=0.001), name="warmup")


def warmup() -> float:
    """Compile (or load) every kernel by simulating :func:`warm_network`; return the seconds taken."""
    from . import simulate_batch

    t0 = time.perf_counter()
    net = warm_network()
    for result in simulate_batch([net, net]):
        if isinstance(result, Exception):
            raise result
    seconds = time.perf_counter() - t0
    folder = _cache_dir()
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / STAMP).write_text(json.dumps({"seconds": round(seconds, 1)}))
        except OSError:  # a read-only cache: numba then compiles in memory each time
            pass
    return seconds


def ensure_warm(say=log.info) -> float | None:
    """Compile the engine here unless it is on disk already, saying so at once and every few
    seconds; return the seconds it took (None: nothing to do)."""
    if is_warm():
        return None
    guess = float(_stamp().get("seconds") or GUESS_SECONDS)
    say(f"sweeper: compiling the engine once, about {guess:.0f} s (kept on disk for later runs)")
    done = threading.Event()
    t0 = time.perf_counter()

    def tick():
        while not done.wait(TICK_SECONDS):
            say(f"sweeper: compiling the engine ... {time.perf_counter() - t0:.0f} s")

    ticker = threading.Thread(target=tick, name="sweeper-compile-ticker", daemon=True)
    ticker.start()
    try:
        seconds = warmup()
    finally:
        done.set()
        ticker.join()
    say(f"sweeper: engine compiled in {seconds:.1f} s")
    return seconds
