"""The population-density engine (DiPDE-compatible, sparse, batched); the method is in docs/method.md.

``simulate(net)`` runs one network; ``simulate_batch(nets)`` runs many, stepping networks
with equal ``structure_key`` together. Where things live:

* ``check``: whether the engine can run a network (``check_network``);
* ``methods``: the update methods (``METHODS``) and how to add one;
* ``grid``, ``operators``, ``delays``, ``timeaxis``: the method's pieces (docs/method.md §4-6, 10-11);
* ``caches``: operators shared by the members of a sweep, bounded by bytes;
* ``plan``: a batch of networks as the flat arrays of a :class:`~sweeper.engine.plan.Plan`;
* ``propagate`` and ``kernels_*``: the compiled time loop and each method's step;
* ``run``: ``simulate`` / ``simulate_batch`` and their :class:`Result`.
"""

from .check import check_network
from .methods import METHODS
from .plan import structure_key
from .run import Result, simulate, simulate_batch

__all__ = ["METHODS", "Result", "check_network", "simulate", "simulate_batch", "structure_key"]
