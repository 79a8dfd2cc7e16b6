"""An E-I network built in Python for a builder-function sweep (jobs/builder_ei.yaml).

The sweep calls ``build(**parameters)`` for every point; ``g`` and ``drive`` come from the spec.
"""

from sweeper.model import (
    Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation, parse_rate,
)


def build(g: float = 4.0, drive: float = 300.0, j: float = 0.001, tf: float = 0.25,
          delay: float = 0.001) -> Network:
    """Brunel-style balance: inhibitory weight = -g * excitatory weight; external drive in Hz;
    ``delay`` (s) of every synapse."""
    grid = dict(v_min=-0.02, v_max=0.02, dv=0.0004, update_method="gmres")
    e = InternalPopulation("e", tau_m=Dist.delta(0.02), **grid)
    i = InternalPopulation("i", tau_m=Dist.delta(0.01), **grid)
    ext = ExternalPopulation("ext", parse_rate(float(drive)))
    w_e, w_i = Dist.delta(j), Dist.delta(-g * j)
    delay = Dist.delta(float(delay))
    conns = [
        Connection("ext", "e", 25, Dist.delta(0.002), delay),
        Connection("ext", "i", 25, Dist.delta(0.002), delay),
        Connection("e", "e", 20, w_e, delay),
        Connection("e", "i", 20, w_e, delay),
        Connection("i", "e", 5, w_i, delay),
        Connection("i", "i", 5, w_i, delay),
    ]
    return Network((e, i, ext), tuple(conns), Simulation(0.0, float(tf), 0.0002), name="ei_builder")
