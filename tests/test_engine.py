"""Engine building blocks (grid, delays, operators) and the simulate / simulate_batch contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeper import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
from sweeper.engine import Result, simulate, simulate_batch, structure_key
from sweeper.engine.delays import delay_kernel, delay_steps
from sweeper.engine.grid import check_grid, edges, initial_density, zero_bins
from sweeper.engine.operators import jump_operator, leak_dest, leak_matrix, leak_rates
from sweeper.engine.plan import n_steps
from sweeper.errors import ModelError, SimulationError
from sweeper.model import parse_rate


# --------------------------------------------------------------------------- grid (docs/method.md §4)
@pytest.mark.parametrize("v_min,v_max,dv", [
    (-0.05, 0.02, 1e-4), (-0.02, 0.02, 2e-4), (-0.015, 0.02, 3e-4), (0.0, 0.02, 1e-4),
    (-0.04, 0.02, 1e-4), (-0.1, 0.02, 1e-4), (-0.0123, 0.0151, 7e-4), (-0.03, 0.02, 2e-4),
])
def test_edges_are_numpy_arange_plus_v_max(v_min, v_max, dv):
    ref = np.concatenate((np.arange(v_min, v_max, dv), [v_max]))
    ref[np.abs(ref) < 2.220446049250313e-16] = 0.0
    assert np.array_equal(edges(v_min, v_max, dv), ref)


def test_edges_match_arange_on_many_random_grids():
    rng = np.random.default_rng(7)
    for _ in range(2000):
        v_min = -float(rng.uniform(0, 0.1))
        v_max = float(rng.uniform(0.001, 0.05))
        dv = float(rng.choice([1e-4, 2e-4, 3e-4, 7e-5, 1.3e-4]))
        ref = np.concatenate((np.arange(v_min, v_max, dv), [v_max]))
        ref[np.abs(ref) < 2.220446049250313e-16] = 0.0
        assert np.array_equal(edges(v_min, v_max, dv), ref)


def test_reset_bins_follow_the_snap():
    # bmtk's grid: the edge nearest 0 is +1.43e-15, not snapped -> one reset bin
    e = edges(-0.05, 0.02, 1e-4)
    assert 1e-15 < e[500] < 2e-15
    assert zero_bins(e) == (499,)
    # v_min = -0.02, dv = 2e-4 snaps to an exact 0 edge -> the two bins touching it
    e = edges(-0.02, 0.02, 2e-4)
    assert e[100] == 0.0 and zero_bins(e) == (99, 100)
    assert zero_bins(edges(0.0, 0.02, 1e-4)) == (0,)
    assert len(edges(-0.015, 0.02, 3e-4)) - 1 == 117  # narrower last bin
    assert math.isclose(np.diff(edges(-0.015, 0.02, 3e-4))[-1], 0.0002, rel_tol=1e-9)


@pytest.mark.parametrize("v_min,v_max,dv", [(-0.07, 0.02, 1e-4), (-0.08, 0.025, 5e-4)])
def test_degenerate_last_bin_is_refused_naming_the_parameters(v_min, v_max, dv):
    with pytest.raises(ModelError) as exc:
        check_grid(v_min, v_max, dv, "net.json: populations['e']")
    text = str(exc.value)
    assert text.startswith("net.json: populations['e']: degenerate grid")
    assert f"v_min={v_min!r}" in text and f"v_max={v_max!r}" in text and f"dv={dv!r}" in text


def test_check_grid_accepts_usable_grids():
    assert check_grid(-0.05, 0.02, 1e-4, "x") is None
    assert check_grid(-0.015, 0.02, 3e-4, "x") is None


def test_initial_density_is_right_closed():
    e = edges(-0.02, 0.02, 2e-4)  # exact 0 edge at index 100
    p = initial_density(e, [0.0], [1.0])
    assert p[99] == 1.0 and p.sum() == 1.0  # a point on an edge lands in the bin below
    p = initial_density(e, [-1.0, 0.0011, 1.0], [0.25, 0.5, 0.25])
    assert p[0] == 0.25 and p[-1] == 0.25  # below v_min -> bin 0, above v_max -> last bin
    assert p[105] == 0.5  # 0.0011 lies in (e[105], e[106]]


# --------------------------------------------------------------------------- delays (docs/method.md §10)
def test_delays_round_half_to_even_on_the_float_quotient():
    d = Dist.parse({"values": [0.0005, 0.0007, 0.0009, 0.0], "probs": [0.25, 0.25, 0.25, 0.25]})
    assert delay_steps(d, 0.0002) == [0, 2, 4, 4]
    assert delay_kernel(d, 0.0002) == ((0, 2, 4), (0.25, 0.25, 0.5))


# --------------------------------------------------------------------------- operators (docs/method.md §5-6)
def test_leak_columns_sum_to_zero_and_drift_toward_zero():
    e = edges(-0.02, 0.02, 2e-4)
    zb = zero_bins(e)
    tau = Dist.parse({"values": [0.01, 0.03], "probs": [0.5, 0.5]})
    L = leak_matrix(leak_rates(e, zb, tau.values, tau.probs), leak_dest(len(e) - 1, zb)).toarray()
    assert np.abs(L.sum(axis=0)).max() < 1e-9 * np.abs(L).max()
    k = 150  # above the reset bins: leaks down at edge/(tau*width), mixed over tau
    r = 0.5 * (e[k + 1] / (0.01 * (e[k + 1] - e[k]))) + 0.5 * (e[k + 1] / (0.03 * (e[k + 1] - e[k])))
    assert math.isclose(L[k - 1, k], r, rel_tol=1e-14) and L[k, k] == -L[k - 1, k]
    assert L[k + 1, 20] == 0 and L[21, 20] > 0  # below: leaks up
    assert not L[:, 99].any() or L[99, 99] == 0  # reset bins do not leak


def test_jump_operator_conserves_mass_and_resets():
    e = edges(-0.02, 0.02, 2e-4)
    zb = zero_bins(e)
    for w in (0.0013, -0.0021, 0.05, -0.05):
        J = jump_operator(e, [w], [1.0])
        F = J.dense(zb)
        assert np.abs(F.sum(axis=0)).max() < 1e-15
        if w > 0:
            assert not J.floor.any() and J.theta[-1] > 0.99
        else:
            assert not J.theta.any() and J.floor[0] > 0.99
    # a weight wider than the grid sends every column to the reset bins, split equally
    F = jump_operator(e, [0.05], [1.0]).dense(zb)
    assert np.allclose(F[99], 0.5 - np.eye(len(e) - 1)[99]) and np.allclose(F[100], 0.5 - np.eye(len(e) - 1)[100])


# --------------------------------------------------------------------------- time grid (docs/method.md §11)
def test_step_count_is_decided_by_the_float_comparison():
    assert n_steps(Simulation(0.0, 0.093, 0.0003)) == 311  # 310*0.0003 < 0.093
    assert n_steps(Simulation(0.0, 1.5, 0.001)) == 1500


def one_pop(**pop) -> Network:
    e = InternalPopulation("e", v_min=-0.02, v_max=0.02, dv=2e-4, **pop)
    return Network((ExternalPopulation("bg", parse_rate(100.0)), e),
                   (Connection("bg", "e", 10, Dist.delta(0.002)),), Simulation(0.0, 0.05, 2e-4), "one")


def test_result_contract():
    res = simulate(one_pop())
    assert isinstance(res, Result)
    assert res.names == ["e"] and res.rates.shape == (1, 251) and res.rates.dtype == np.float64
    assert res.t.shape == (251,) and res.t[0] == 0.0 and res.t[-1] == 250 * 2e-4
    assert res.rates[0, 0] == 0.0 and np.isfinite(res.rates).all()


def test_zero_delay_is_a_one_step_lag_and_initial_rate_is_first_sample():
    net = one_pop(initial_firing_rate=7.0)
    res = simulate(net)
    assert res.rates[0, 0] == 7.0
    # with no input at all the density only leaks: no threshold flux
    quiet = Network(net.populations, (), net.simulation)
    assert np.all(simulate(quiet).rates[0, 1:] == 0.0)


def test_nsyn_zero_connections_are_dropped():
    net = one_pop()
    extra = Network(net.populations, net.connections + (Connection("bg", "e", 0, Dist.delta(0.5)),),
                    net.simulation)
    assert np.array_equal(simulate(net).rates, simulate(extra).rates)
    assert structure_key(net) == structure_key(extra)


def test_not_recorded_populations_are_left_out():
    net = one_pop(record=False)
    res = simulate(net)
    assert res.names == [] and res.rates.shape == (0, 251)


def test_unstable_explicit_method_fails_with_the_mass_check():
    net = one_pop(update_method="approx", approx_order=1)
    net = Network(net.populations, net.connections, Simulation(0.0, 0.05, 5e-3))
    with pytest.raises(SimulationError, match="mass not conserved") as exc:
        simulate(net)
    assert "populations['e']" in str(exc.value)


def test_batch_isolates_failures_and_groups_by_structure():
    good = one_pop()
    bad = Network(one_pop(update_method="approx", approx_order=1).populations, good.connections,
                  Simulation(0.0, 0.05, 5e-3), "bad")
    heavier = good.replace_connection(0, nsyn=20, weights=Dist.delta(0.003))
    gmres = good.replace_population("e", update_method="gmres")
    invalid = good.replace_population("e", dv=-1.0)
    assert structure_key(good) == structure_key(heavier) != structure_key(gmres)
    out = simulate_batch([good, bad, heavier, gmres, invalid, good])
    assert isinstance(out[1], SimulationError) and "mass not conserved" in str(out[1])
    assert isinstance(out[4], SimulationError) and "dv must be > 0" in str(out[4])
    for k, net in ((0, good), (2, heavier), (3, gmres), (5, good)):
        assert np.array_equal(out[k].rates, simulate(net).rates)


def test_batched_members_differing_in_everything_allowed_equal_alone():
    base = one_pop(tau_m=Dist.parse({"values": [0.015, 0.025], "probs": [0.5, 0.5]}),
                   p0=Dist.parse({"values": [-0.004, 0.0, 0.006], "probs": [0.25, 0.5, 0.25]}))
    nets = []
    for k in range(6):
        net = base.replace_connection(0, nsyn=8 + k, weights=Dist.parse(
            {"values": [-0.001, 0.0015 + 0.0002 * k], "probs": [0.3, 0.7]}))
        net = net.replace_population("e", tau_m=base.population("e").tau_m.scaled(1 + 0.1 * k),
                                     p0=Dist.delta(-0.001 * k))
        net = net.replace_population("bg", rate=parse_rate(f"{50 + 10 * k} + 20*sin(100*t)"))
        nets.append(net)
    assert len({structure_key(n) for n in nets}) == 1
    out = simulate_batch(nets)
    for net, res in zip(nets, out):
        alone = simulate(net)
        assert np.array_equal(alone.rates, res.rates)  # identical: each member runs the same code path
        assert np.abs(alone.rates - res.rates).max() <= 1e-12 * np.abs(alone.rates).max()


def test_negative_external_rate_in_a_table_is_refused():
    net = one_pop().replace_population("bg", rate=parse_rate({"kind": "table", "t": [0, 1], "rate": [5, -5]}))
    with pytest.raises(ModelError, match="negative rate"):
        simulate(net)


def test_operator_caches_hold_a_bounded_number_of_bytes_and_eviction_changes_no_result(monkeypatch):
    """A worker's memory must not grow with the sweep: the operator caches evict by size."""
    from dataclasses import replace
    from pathlib import Path

    from sweeper.engine import caches as plan
    from sweeper.io import load_network

    base = load_network(Path(__file__).parents[1] / "jobs" / "networks" / "single_population.json")
    base = replace(base, simulation=replace(base.simulation, tf=0.004))
    nets = [base.replace_connection(0, weights=Dist.delta(0.001 + 1e-5 * k)) for k in range(80)]
    roomy = [r.rates for r in simulate_batch(nets)]
    monkeypatch.setattr(plan, "CACHE_BYTES", 2**18)  # 256 KiB: far less than 80 networks' operators
    for cache in (plan._jump, plan._pop_diagonals, plan._leak, plan._p0):
        cache.cache_clear()
    tight = [r.rates for r in simulate_batch(nets)]
    again = [r.rates for r in simulate_batch(nets[::-1])][::-1]
    for cache in (plan._jump, plan._pop_diagonals, plan._leak, plan._p0):
        assert 0 < cache.cache_bytes() <= 2**18 + 2**16, cache.__name__  # + at most one entry over
    for a, b, c in zip(roomy, tight, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
