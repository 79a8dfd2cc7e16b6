"""A small E-I network written with bmtk's own NetworkBuilder (jobs/bmtk_builder_nsyn.yaml).

The sweep calls ``build(inh_nsyns=...)`` for every point and turns the returned builders into a
network with the spec's ``components_dir`` (the dynamics_params files), ``input_rates`` (the LGN
rate table) and ``simulation``. bmtk wants an integer ``nsyns``: the sweep passes ints.
"""

from bmtk.builder import NetworkBuilder


def build(inh_nsyns: int = 10, exc_nsyns: int = 20):
    """V1 (2 excitatory, 1 inhibitory population node) driven by LGN; returns [V1, LGN]."""
    if not isinstance(inh_nsyns, int) or not isinstance(exc_nsyns, int):
        raise TypeError(f"nsyns must be integers, got {inh_nsyns!r}, {exc_nsyns!r}")
    v1 = NetworkBuilder("V1")
    v1.add_nodes(N=2, pop_name="exc", ei="e", model_type="population", dynamics_params="exc.json")
    v1.add_nodes(N=1, pop_name="inh", ei="i", model_type="population", dynamics_params="inh.json")
    v1.add_edges(source={"ei": "e"}, target={"ei": "i"}, nsyns=exc_nsyns, syn_weight=0.002, delay=0.002)
    v1.add_edges(source={"ei": "i"}, target={"ei": "e"}, nsyns=inh_nsyns, syn_weight=-0.001, delay=0.001)
    v1.add_edges(source={"ei": "e"}, target={"ei": "e"}, nsyns=5, syn_weight=0.001, delay=0.0)
    lgn = NetworkBuilder("LGN")
    lgn.add_nodes(N=3, pop_name="tON", model_type="virtual")
    lgn.add_edges(target=v1.nodes(ei="e"), nsyns=10, syn_weight=0.0025, delay=0.002)
    v1.build()
    lgn.build()
    return [v1, lgn]
