"""Running bmtk's NetworkBuilder as single-process code inside an MPI job.

What bmtk does: ``bmtk.builder.builder_utils`` runs ``from mpi4py import MPI`` when it is first
imported and, if that works, binds ``comm = MPI.COMM_WORLD``, ``mpi_rank``, ``mpi_size`` and
``barrier = comm.barrier``; ``network.py``, ``dm_network.py``, ``edges_collator.py`` and
``edge_props_table.py`` copy those names into their own namespaces. ``add_nodes``/``add_edges``
then call ``comm.allgather`` (``check_properties_across_ranks``), ``build`` keeps only the
connection maps ``[mpi_rank::mpi_size]``, and ``save`` writes on rank 0 between ``barrier()``
calls. bmtk's ``bmtk.utils.io.bmtk_world_comm`` looks up ``MPI.COMM_WORLD`` lazily the same way.

On a sweep worker that is one rank of an MPI job (``--cluster mpi``, ``sweeper submit``) only
that rank runs the builder, so the collectives never complete (the run hangs) and a rank > 0
would build a part of the edges. :func:`single_process` makes bmtk see a world of one process,
without editing bmtk's files: while the context is open, ``mpi4py`` cannot be imported (so bmtk
modules first imported there take bmtk's own no-MPI fallback: rank 0, size 1, no-op barrier),
and bmtk modules imported earlier have their MPI names swapped for those values. On exit the
swapped names and ``mpi4py`` are put back; bmtk modules first imported inside the context keep
the single-process values, which is what a worker needs.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator


def _noop(*args: Any, **kwargs: Any) -> None:
    """bmtk's own barrier when mpi4py is missing."""


# bmtk module attribute -> its single-process value (the values bmtk uses without mpi4py)
_SINGLE = {"comm": None, "mpi_rank": 0, "mpi_size": 1, "barrier": _noop,
           "MPI_rank": 0, "MPI_size": 1, "comm_barrier": _noop}

_lock = threading.RLock()
_depth = 0
_saved: list[tuple[Any, str, Any]] = []       # (object, attribute, original value)
_hidden: dict[str, Any] = {}                  # sys.modules entries of mpi4py while hidden


def _is_mpi(value: Any) -> bool:
    """An mpi4py object, or a bound method of one."""
    owner = getattr(value, "__self__", value)
    return type(owner).__module__.split(".")[0] == "mpi4py"


def _swap_loaded_bmtk() -> None:
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "bmtk" or name.startswith("bmtk.")):
            continue
        names = vars(module)
        if "comm" in names and names["comm"] is not None and not _is_mpi(names["comm"]):
            continue  # some other kind of "comm": leave the module alone
        for attr, single in _SINGLE.items():
            if attr in names and names[attr] is not single and (attr not in ("comm", "barrier", "comm_barrier")
                                                                or _is_mpi(names[attr])):
                _saved.append((module, attr, names[attr]))
                setattr(module, attr, single)
        world = names.get("bmtk_world_comm")
        if world is not None and _is_mpi(getattr(world, "_comm", None)):
            _saved.append((world, "_comm", world._comm))
            world._comm = None


def _hide_mpi4py() -> None:
    for name in [n for n in sys.modules if n == "mpi4py" or n.startswith("mpi4py.")]:
        _hidden[name] = sys.modules[name]
    _hidden.setdefault("mpi4py", None)
    sys.modules["mpi4py"] = None  # `import mpi4py` now raises ImportError, as when it is not installed
    sys.modules["mpi4py.MPI"] = None


def _restore() -> None:
    for obj, attr, value in reversed(_saved):
        setattr(obj, attr, value)
    _saved.clear()
    for name in ("mpi4py", "mpi4py.MPI"):
        sys.modules.pop(name, None)
    for name, module in _hidden.items():
        if module is not None:
            sys.modules[name] = module
    _hidden.clear()


@contextmanager
def single_process() -> Iterator[None]:
    """Inside, bmtk's builders behave as in a single process (no MPI collectives, all edges built).

    Wrap both the import of a module that uses bmtk and the calls into it. Re-entrant and
    thread-safe (the first entry swaps, the last exit restores). While it is open, importing
    mpi4py fails in every thread; code that already holds mpi4py objects is unaffected.
    """
    global _depth
    with _lock:
        if _depth == 0:
            _swap_loaded_bmtk()
            _hide_mpi4py()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()
