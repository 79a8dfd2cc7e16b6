"""Every reference case (real dipde output) is reproduced: same t column, rates within tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sweeper.engine import simulate, simulate_batch
from sweeper.io import load_network

REF = Path(__file__).parent / "data" / "reference"
CASES = sorted(p.stem for p in (REF / "cases").glob("*.json"))


def reference(name: str):
    with open(REF / "rates" / f"{name}.csv") as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(REF / "rates" / f"{name}.csv", delimiter=",", skiprows=1, ndmin=2)
    return header, data


def test_all_cases_present():
    assert len(CASES) >= 13


@pytest.mark.parametrize("name", CASES)
def test_reference_case(name):
    case = json.loads((REF / "cases" / f"{name}.json").read_text())
    header, ref = reference(name)
    result = simulate(load_network(REF / "cases" / f"{name}.json"))
    assert ["t"] + result.names == header == case["outputs"]["columns"]
    assert result.t.shape == ref[:, 0].shape
    assert np.array_equal(result.t, ref[:, 0])  # exactly: t_n = t0 + n*dt in float64
    err = np.abs(result.rates.T - ref[:, 1:]).max() / np.abs(ref[:, 1:]).max()
    assert err <= case["comparison"]["suggested_tolerance"], err


def test_bmtk_output_matches_reference_csv():
    # the same tutorial run as bmtk's own rates file: "<pop_id> <t> <rate>", 100 = E, 101 = I
    lines = (REF / "rates" / "bmtk_tutorial_2pop_gmres.bmtk_output.txt").read_text().split()
    rows = np.array(lines, dtype=float).reshape(-1, 3)
    result = simulate(load_network(REF / "cases" / "bmtk_tutorial_2pop_gmres.json"))
    for pop_id, name in ((100, "excitatory"), (101, "inhibitory")):
        sel = rows[rows[:, 0] == pop_id]
        assert np.array_equal(np.round(sel[:, 1] / 0.001), np.arange(len(result.t)))
        assert np.abs(sel[:, 2] - result.rate(name)).max() <= 1e-9 * np.abs(sel[:, 2]).max()


def test_reference_cases_batched_equal_alone():
    nets = [load_network(REF / "cases" / f"{name}.json") for name in CASES]
    alone = [simulate(net) for net in nets]
    batched = simulate_batch(nets + nets[:3])
    for a, b in zip(alone + alone[:3], batched):
        assert np.array_equal(a.t, b.t)
        assert np.array_equal(a.rates, b.rates)
