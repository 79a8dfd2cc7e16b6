"""The cluster tests' one-population network, whose points wait for a gate file.

The first point (``rate == first``) is built at once; every other point waits until the file
``gate`` exists, so a test knows that when the first point is done the others are still to come,
whatever the machine's speed. The network (and so every trace) does not depend on the gate.
"""

import os
import time

from sweeper.model import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation, parse_rate


def build(w: float = 0.002, rate: float = 100.0, gate: str = "", first: float = 50.0,
          tf: float = 0.05) -> Network:
    waited = 0.0
    while gate and float(rate) != first and not os.path.exists(gate):
        if waited > 300:
            raise RuntimeError(f"gate {gate} never opened")
        time.sleep(0.01)  # waiting for the test's event (the gate file), not for time to pass
        waited += 0.01
    e = InternalPopulation("e", tau_m=Dist.delta(0.02), v_min=-0.02, v_max=0.02, dv=0.0004,
                           update_method="approx", approx_order=None)
    bg = ExternalPopulation("bg", parse_rate(float(rate)))
    conn = Connection("bg", "e", 10, Dist.delta(float(w)), Dist.delta(0.001))
    return Network((bg, e), (conn,), Simulation(0.0, float(tf), 0.0002), name="gate_one_pop")
