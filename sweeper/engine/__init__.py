"""The population-density engine (DiPDE-compatible, sparse, batched); see docs and the spec.

``simulate(net)`` runs one network; ``simulate_batch(nets)`` runs many, stepping networks
with equal ``structure_key`` together. Grids, delays and operators live in submodules.
"""

from .simulate import Result, simulate, simulate_batch
from .plan import structure_key

__all__ = ["Result", "simulate", "simulate_batch", "structure_key"]
