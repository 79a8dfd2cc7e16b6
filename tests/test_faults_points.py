"""One validation of a point's network whatever made it (issue 14): distributions built in Python
get the file checks; builder points whose time settings differ from the store's are refused
before they are simulated, naming the point and the field."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sweeper.api import load_network
from sweeper.engine.check import check_network
from sweeper.errors import ModelError
from sweeper.model import Dist
from sweeper.store import DONE, FAILED, SweepStore
from sweeper.sweep import Sweep, run_sweep

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"


@pytest.mark.parametrize("field, dist, message", [
    ("weights", Dist((0.001,), (2.0,)), r"connections\[0\] \(bg->e\)\.weights\.probs: probabilities sum to 2\.0, not 1"),
    ("weights", Dist((0.001, 0.002), (0.25, 0.25)), r"\.weights\.probs: probabilities sum to 0\.5, not 1"),
    ("weights", Dist((float("nan"),), (1.0,)), r"\.weights\.values\[0\]: value nan is not a finite number"),
    ("weights", Dist((), ()), r"\.weights: 'values' \(0\) and 'probs' \(0\) must have the same non-zero length"),
    ("delays", Dist((0.001,), (float("nan"),)), r"\.delays\.probs\[0\]: probability nan is not a finite number"),
])
def test_distributions_made_in_python_are_checked_like_files(field, dist, message):
    net = load_network(NET)
    bad = replace(net, connections=(replace(net.connections[0], **{field: dist}),) + net.connections[1:])
    with pytest.raises(ModelError, match=message):
        check_network(bad, where="api")


def test_a_nan_p0_or_tau_m_made_in_python_is_refused():
    net = load_network(NET)
    pop = net.internal[0]
    for field, dist in (("p0", Dist((0.0,), (float("nan"),))), ("tau_m", Dist((0.02, 0.03), (0.5, 0.6)))):
        pops = tuple(replace(p, **{field: dist}) if p is pop else p for p in net.populations)
        with pytest.raises(ModelError, match=rf"populations\['e'\]\.{field}"):
            check_network(replace(net, populations=pops))


BUILDER = '''
from dataclasses import replace
from sweeper.api import load_network

def build(x):
    net = load_network(NET)
    sim = net.simulation
    change = {0: {}, 1: {"dt": sim.dt / 2}, 2: {"tf": sim.tf * 2}, 3: {"tf": sim.tf / 2}}[int(x)]
    return replace(net, simulation=replace(sim, **change))
'''


def test_builder_points_on_another_time_axis_are_refused_naming_the_point_and_the_field(tmp_path, client):
    (tmp_path / "timebuilder.py").write_text(BUILDER.replace("NET", repr(str(NET))))
    spec = tmp_path / "spec.yaml"
    spec.write_text("builder: timebuilder:build\nparameters:\n  x: {values: [0, 1, 2, 3]}\n"
                    "output: {chunk_points: 4}\n")
    summary = run_sweep(Sweep.from_file(spec), tmp_path / "s.zarr", client=client)
    st = SweepStore.open(tmp_path / "s.zarr")
    status = st.status(slice(0, 4))
    assert list(status) == [DONE, FAILED, FAILED, FAILED]
    reasons = {int(i): reason for i, _pid, reason in summary.failures}
    assert "point x=1: simulation.dt" in reasons[1] and "the store's is" in reasons[1]
    assert "point x=2: simulation.tf" in reasons[2] and "a builder must give every point the store's tf" in reasons[2]
    assert "point x=3: simulation.tf" in reasons[3]
    g = st.group
    assert np.isnan(g["rates"][1:]).all()  # nothing was simulated for them
