"""The cluster tests' one-population network, built in Python and slowed down on purpose.

``pause`` seconds of sleep per point give a test time to cancel a worker job mid-sweep; the
network (and so every trace) does not depend on it.
"""

import time

from sweeper.model import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation, parse_rate


def build(w: float = 0.002, rate: float = 100.0, pause: float = 0.0, tf: float = 0.05) -> Network:
    time.sleep(pause)
    e = InternalPopulation("e", tau_m=Dist.delta(0.02), v_min=-0.02, v_max=0.02, dv=0.0004,
                           update_method="approx", approx_order=None)
    bg = ExternalPopulation("bg", parse_rate(float(rate)))
    conn = Connection("bg", "e", 10, Dist.delta(float(w)), Dist.delta(0.001))
    return Network((bg, e), (conn,), Simulation(0.0, float(tf), 0.0002), name="slow_one_pop")
