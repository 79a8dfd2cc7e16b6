"""Conformance tests run over every update method in sweeper.engine.methods.METHODS.

In the style of zarr's StoreTests: a method added to the table is checked here with no
new test code (mass conserved, batched equals alone, tolerances, refusal messages).
"""

from __future__ import annotations

import numpy as np
import pytest

from sweeper import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
from sweeper.engine import METHODS, check_network, simulate, simulate_batch, structure_key
from sweeper.engine import codes
from sweeper.errors import ModelError, SimulationError
from sweeper.model import parse_rate

NAMES = sorted(METHODS)


def network(method: str, weight=0.002, nsyn=10.0, tau=0.02, rate="100 + 50*sin(300*t)", **pop) -> Network:
    """One population driven by a varying rate and by itself (inputs change every step)."""
    e = InternalPopulation("e", tau_m=Dist.delta(tau), v_min=-0.02, v_max=0.02, dv=5e-4,
                           update_method=method, **pop)
    return Network((ExternalPopulation("bg", parse_rate(rate)), e),
                   (Connection("bg", "e", nsyn, Dist.delta(weight)),
                    Connection("e", "e", 2.0, Dist.parse({"values": [-0.001, 0.0015], "probs": [0.4, 0.6]}),
                               Dist.delta(2e-4))),
                   Simulation(0.0, 0.02, 1e-4), f"{method}-net")


@pytest.mark.parametrize("name", NAMES)
def test_record_is_complete(name):
    m = METHODS[name]
    assert m.name == name and m.summary
    assert m.kernel_code(None) in (codes.APPROX_TOL, codes.APPROX_ORDER, codes.BACKWARD_EULER, codes.EXACT)
    assert m.tol_fallback > 0 and (m.tol_cap is None or m.tol_cap > 0)
    for code in (codes.FAIL_MASS, codes.FAIL_NONFINITE, codes.FAIL_SERIES, codes.FAIL_NEGATIVE_TOTAL):
        assert m.fail_reason(code)


@pytest.mark.parametrize("name", NAMES)
def test_mass_is_conserved(name):
    # a weight wider than the grid sends every neuron over threshold at each input spike, so
    # the output rate is the input rate times the total mass: it shows the mass every step
    e = InternalPopulation("e", v_min=-0.02, v_max=0.02, dv=5e-4, update_method=name)
    net = Network((ExternalPopulation("bg", parse_rate(40.0)), e),
                  (Connection("bg", "e", 1, Dist.delta(0.05)),), Simulation(0.0, 0.01, 1e-4))
    res = simulate(net)
    assert np.abs(res.rates[0, 1:] / 40.0 - 1.0).max() < 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_batched_equals_alone(name):
    nets = [network(name, weight=0.002 * (1 + 0.1 * k), nsyn=10.0 - k, tau=0.02 * (1 + 0.05 * k),
                    rate=f"{100 + 10 * k} + 50*sin(300*t)") for k in range(4)]
    assert len({structure_key(n) for n in nets}) == 1
    for net, batched in zip(nets, simulate_batch(nets + nets[:1])):
        alone = simulate(net)
        assert np.isfinite(alone.rates).all() and alone.rates[0, 1:].max() > 0
        assert np.array_equal(alone.rates, batched.rates)


@pytest.mark.parametrize("name", NAMES)
def test_methods_agree_on_a_smooth_network(name):
    # every method approximates the same dynamics: on a gentle network they agree to the
    # first-order error of backward Euler
    ref = simulate(network("exact")).rates
    res = simulate(network(name)).rates
    assert np.abs(res - ref).max() <= 0.05 * np.abs(ref).max()


@pytest.mark.parametrize("name", NAMES)
def test_tol_null_means_the_fallback_and_the_cap_applies(name):
    m = METHODS[name]
    assert m.effective_tol(None) == (m.tol_fallback if m.tol_cap is None else min(m.tol_fallback, m.tol_cap))
    assert m.effective_tol(1e-14) == 1e-14
    if m.tol_cap is not None:
        assert m.effective_tol(1.0) == m.tol_cap
        # a tolerance above the cap runs exactly as the cap
        capped = simulate(network(name, tol=m.tol_cap)).rates
        assert np.array_equal(simulate(network(name, tol=1e-3)).rates, capped)
        assert np.array_equal(simulate(network(name, tol=None)).rates, capped)
    else:
        assert m.effective_tol(1e-3) == 1e-3
        assert np.array_equal(simulate(network(name, tol=None)).rates,
                              simulate(network(name, tol=m.tol_fallback)).rates)


def test_unknown_method_is_refused_naming_every_method():
    net = network("rk4")
    with pytest.raises(ModelError) as exc:
        check_network(net, "net.json")
    assert str(exc.value) == ("net.json: populations['e'].update_method: unknown update_method 'rk4' "
                              f"(use {', '.join(METHODS)})")
    out = simulate_batch([net])
    assert isinstance(out[0], SimulationError) and "unknown update_method 'rk4'" in str(out[0])


@pytest.mark.parametrize("name", [n for n in NAMES if not METHODS[n].implicit])
def test_explicit_methods_refuse_a_step_that_is_too_large(name):
    net = network(name, nsyn=1e7)  # dt * ||J|| about 3e5: no explicit step survives it
    with pytest.raises(SimulationError) as exc:
        simulate(net)
    text = str(exc.value)
    assert text.startswith(f"{name}-net: populations['e'] at t=")
    assert text.endswith(METHODS[name].fail_reason(codes.FAIL_MASS)) or \
        text.endswith(METHODS[name].fail_reason(codes.FAIL_SERIES))
    assert f"update_method {name!r}" in text


@pytest.mark.parametrize("name", [n for n in NAMES if METHODS[n].implicit])
def test_implicit_methods_step_any_dt(name):
    res = simulate(network(name, nsyn=1e6))
    assert np.isfinite(res.rates).all()
