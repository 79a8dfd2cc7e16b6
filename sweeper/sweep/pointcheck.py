"""A point's network against its store: the same time settings as the store's time axis.

A builder may return its own ``simulation`` per point; a point whose dt or t0 differs from the
store's would be written onto the wrong time axis, and one whose tf is longer or shorter would be
cut short or padded. Such a point is refused before it is simulated, naming the point and the
field. A swept (or derived) ``simulation.tf`` may be shorter than the store's axis: that is what
sweeping tf means (its trace ends early, NaN after).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..model import Network


def samples(net: Network, every: int) -> int:
    """How many recorded samples the engine gives for ``net`` (t0 + n*dt < tf, every ``every``-th)."""
    sim = net.simulation
    n = int(np.ceil((float(sim.tf) - float(sim.t0)) / float(sim.dt)))
    while n > 0 and sim.t0 + (n - 1) * sim.dt >= sim.tf:
        n -= 1
    while sim.t0 + n * sim.dt < sim.tf:
        n += 1
    return len(range(0, n + 1, every))


def check_time(net: Network, times: np.ndarray, every: int, tf_swept: bool, where: str) -> None:
    """Raise ModelError naming ``where`` and the field when ``net``'s time grid is not the store's."""
    sim = net.simulation
    if len(times) and not np.isclose(float(sim.t0), float(times[0]), rtol=0, atol=1e-12):
        raise ModelError(f"t0 is {sim.t0!r}, the store's time axis starts at {float(times[0])!r}",
                         f"{where}: simulation.t0")
    if len(times) > 1:
        dt = (float(times[1]) - float(times[0])) / every
        if not np.isclose(float(sim.dt), dt, rtol=1e-9, atol=0):
            raise ModelError(f"dt is {sim.dt!r}, the store's is {dt!r} (every point of a store shares its "
                             "time axis)", f"{where}: simulation.dt")
    n = samples(net, every)
    if n > len(times) or (n < len(times) and not tf_swept):
        end = float(times[-1]) if len(times) else float(sim.t0)
        raise ModelError(f"tf is {sim.tf!r}: {n} samples, the store's time axis has {len(times)} (to t={end!r}); "
                         "a builder must give every point the store's tf (or sweep simulation.tf)",
                         f"{where}: simulation.tf")
