"""The table of cluster kinds: ``KINDS`` maps each ``--cluster`` name to its class.

How to add a cluster kind
-------------------------
1. Write a subclass of :class:`sweeper.cluster.base.ClusterKind` in a module of its own in this
   package. Set ``name``; implement ``target()`` (the Dask callable that makes the cluster or the
   client), ``arguments()`` (its keyword arguments, built from ``self.options``) and ``start()`` (a
   context manager yielding ``(client, text to announce)``). Override ``check()`` to refuse wrong
   options or missing tools before anything starts, and ``job_script()`` if the kind generates a
   script. Runtime defaults go under ``cluster:`` in ``sweeper/sweeper.yaml`` (read them with
   ``sweeper.config.get``); an explicit option always wins.
2. Add the class to ``KINDS`` below. ``connect(kind)`` and ``sweeper run --cluster`` then offer it,
   and ``tests/test_cluster_kinds.py`` checks it along with the others (its arguments fit its
   target, its errors name its option, its scripts are generated without starting anything).
"""

from __future__ import annotations

from .base import ClusterKind
from .local import Local, SchedulerAddress
from .mpi import MPI
from .slurm import Slurm

KINDS: dict[str, type[ClusterKind]] = {cls.name: cls for cls in (Local, SchedulerAddress, MPI, Slurm)}

#: the kinds ``--cluster`` offers (the scheduler kind is chosen with ``--scheduler ADDRESS``)
CHOICES: tuple[str, ...] = tuple(name for name, cls in KINDS.items() if cls.choosable)
