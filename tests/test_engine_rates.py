"""Rate expressions are evaluated in the form sympy gives them, as DiPDE does (docs/method.md §2.2).

The expected values are computed here with sympy itself (the oracle parses the text; sweeper
builds the same expression from its whitelisted parse tree and never hands text to sympy).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from sweeper import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
from sweeper.engine import simulate
from sweeper.engine.plan import build_plan
from sweeper.expr import Expression
from sweeper.model import parse_rate

T = sympy.Symbol("t")


def by_sympy(text: str, t: np.ndarray) -> np.ndarray:
    value = sympy.lambdify(T, sympy.sympify(text), "numpy")(t)
    return np.broadcast_to(np.asarray(value, dtype=float), t.shape)


def times(dt=1e-4, steps=200, t0=0.0):
    return t0 + np.arange(steps + 1, dtype=float) * dt


@pytest.mark.parametrize("text,t0,dt", [("100*Heaviside(3*(t - 0.068))", 0.068, 1e-3),
                                        ("50*Heaviside(10*(t - 0.011)) + 5", 0.011, 1e-3),
                                        ("80*Heaviside(-2.5*(t - 0.0011))", 0.0011, 1e-4)])
def test_heaviside_of_a_multiple_of_t_minus_t0_with_a_sample_at_t0(text, t0, dt):
    t = times(dt=dt)
    k = int(np.flatnonzero(t == t0)[0])  # a sample sits exactly at t0
    rate = parse_rate(text)
    expected = by_sympy(text, t)
    assert np.array_equal(rate(t), expected)
    # sympy distributed the factor into the argument, which at t0 is then not 0 but rounding
    # noise: H is 0 or 1 there, where the text as written gives H(0) = 1/2
    as_written = Expression(text, ("t",), canonical=False)(t=t)
    assert rate(t)[k] != as_written[k] and np.array_equal(np.delete(rate(t), k), np.delete(as_written, k))
    # and the engine drives the population with these values
    e = InternalPopulation("e", v_min=-0.02, v_max=0.02, dv=5e-4)
    net = Network((ExternalPopulation("bg", rate), e), (Connection("bg", "e", 5, Dist.delta(0.001)),),
                  Simulation(0.0, 200 * dt, dt))
    assert np.array_equal(build_plan([net]).ext_now[0, 0], expected)
    assert simulate(net).rates.shape == (1, 201)


@pytest.mark.parametrize("text", ["t*0.1*3 + 20", "(0.1 + 0.2)*t*1000 + 5", "100*t/3 + 1", "2*pi*10*t + 40",
                                  "exp(-t/0.01)*30 + 2", "(2 + 3)*(t + 0.1)*7"])
def test_constants_are_folded_as_sympy_folds_them(text):
    t = times(dt=3e-4)
    rate = parse_rate(text)
    assert np.array_equal(rate(t), by_sympy(text, t))
    assert rate.compiled.sympy_form == sympy.sympify(text)


def test_folding_changes_the_numbers():
    # 0.1*3 is folded to 0.30000000000000004, printed and read back as 0.3: t*0.3 is not (t*0.1)*3
    t = times()
    folded = parse_rate("t*0.1*3")(t)
    assert np.array_equal(folded, 0.3 * t)
    assert not np.array_equal(folded, (t * 0.1) * 3)


def test_expressions_sympy_cannot_print_are_evaluated_as_written():
    for text in ("log(0) + t", "10**400*t"):
        e = Expression(text, ("t",))
        plain = Expression(text, ("t",), canonical=False)
        with np.errstate(all="ignore"):
            assert np.array_equal(e(t=np.array([0.5, 1.0])), plain(t=np.array([0.5, 1.0])), equal_nan=True)


def test_sweep_expressions_are_evaluated_as_written():
    # derived sweep parameters and constraints are not DiPDE's: evaluated as written
    assert not Expression("a/3", ("a",)).canonical
    assert not Expression("t < 3", ("t",), boolean=True).canonical
    assert Expression("a/3", ("a",))(a=1.0) == 1.0 / 3
