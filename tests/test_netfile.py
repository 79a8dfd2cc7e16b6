"""sweeper's network file (popdens-case/1, JSON or YAML): reading, writing, round trips, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sweeper import Dist, ExternalPopulation, Network
from sweeper.cli import main
from sweeper.engine import simulate
from sweeper.io import load_network, save_network
from sweeper.io.netfile import network_to_dict, read_network
from sweeper.model import ConstantRate, ExpressionRate, TableRate

REF = Path(__file__).parent / "data" / "reference"
CASES = sorted(REF.glob("cases/*.json"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(case, suffix, tmp_path):
    net = load_network(case)
    out = save_network(net, tmp_path / f"net{suffix}")
    again = load_network(out)
    assert again == net
    assert network_to_dict(again) == network_to_dict(net)


def test_reading_a_case_keeps_its_content():
    net = load_network(REF / "cases" / "delay_rounding.json")
    assert net.name == "delay_rounding"
    assert [p.name for p in net.populations] == ["b1", "b2", "e"]
    assert isinstance(net.population("b1").rate, ConstantRate)
    assert isinstance(net.population("b2").rate, ExpressionRate)
    e = net.population("e")
    assert (e.v_min, e.v_max, e.dv, e.update_method, e.approx_order, e.tol, e.norm) == \
        (-0.015, 0.02, 0.0003, "approx", None, 1e-14, math.inf)
    assert net.connections[2].delays == Dist((0.0008, 0.0009), (0.5, 0.5))
    assert (net.simulation.t0, net.simulation.dt, net.simulation.tf) == (0.0, 0.0002, 0.12)


def minimal(**changes) -> dict:
    doc = {
        "schema": "popdens-case/1", "name": "mini",
        "simulation": {"t0": 0.0, "dt": 0.0002, "tf": 0.02},
        "populations": [
            {"name": "bg", "type": "external", "rate": {"kind": "constant", "value": 100.0}},
            {"name": "e", "type": "internal", "tau_m": 0.02, "v_min": -0.02, "v_max": 0.02, "dv": 0.0002,
             "update_method": "approx"},
        ],
        "connections": [{"source": "bg", "target": "e", "nsyn": 10, "weights": 0.002, "delays": 0.0}],
    }
    doc.update(changes)
    return doc


def test_defaults_and_scalars(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(minimal()))
    net = read_network(path)
    e = net.population("e")
    assert e.tau_m == Dist.delta(0.02) and e.p0 == Dist.delta(0.0) and e.tol == 1e-14 and e.norm == math.inf
    assert net.connections[0].weights == Dist.delta(0.002)


def test_explicit_null_tol_selects_dipde_fallbacks(tmp_path):
    doc = minimal()
    doc["populations"][1]["tol"] = None
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    assert read_network(path).population("e").tol == 1e-12
    doc["populations"][1]["update_method"] = "gmres"
    path.write_text(json.dumps(doc))
    assert read_network(path).population("e").tol == 1e-5


def test_yaml_reads_exponents_without_a_dot(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("""
schema: popdens-case/1
simulation: {t0: 0, dt: 2e-4, tf: 2e-2}
populations:
  - {name: bg, type: external, rate: "40 + 30*sin(62.8*t)"}
  - {name: e, type: internal, tau_m: 0.02, v_min: -2e-2, v_max: 2e-2, dv: 2e-4, tol: 1e-12, norm: inf}
connections:
  - {source: bg, target: e, nsyn: 10, weights: 2e-3, delays: 1e-3}
""")
    net = read_network(path)
    assert net.population("e").dv == 2e-4 and net.population("e").tol == 1e-12
    assert net.simulation.dt == 2e-4
    assert isinstance(net.population("bg").rate, ExpressionRate)


def test_table_rates_inline_and_from_a_file(tmp_path):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "rates.csv").write_text("t,rate\n0.0,10.0\n0.01,50.0\n0.02,20.0\n")
    doc = minimal()
    doc["populations"].append({"name": "drive", "type": "external",
                               "rate": {"kind": "table", "file": "inputs/rates.csv"}})
    doc["populations"].append({"name": "inline", "type": "external",
                               "rate": {"kind": "table", "t": [0.0, 0.02], "rate": [5.0, 15.0]}})
    doc["connections"] += [{"source": "drive", "target": "e", "nsyn": 5, "weights": 0.001},
                           {"source": "inline", "target": "e", "nsyn": 5, "weights": -0.001}]
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc))
    net = read_network(path)
    drive = net.population("drive").rate
    assert isinstance(drive, TableRate) and drive.source == "inputs/rates.csv"
    assert drive(0.005) == 30.0 and drive(1.0) == 20.0
    assert net.population("inline").rate(0.01) == 10.0
    # written elsewhere, the table file goes along and the copy reads back equal
    out = save_network(net, tmp_path / "copy" / "net.yaml")
    assert (tmp_path / "copy" / "inputs" / "rates.csv").is_file()
    assert load_network(out) == net
    assert np.array_equal(simulate(load_network(out)).rates, simulate(net).rates)


def test_load_network_accepts_dicts_and_networks():
    net = load_network(minimal())
    assert isinstance(net, Network) and load_network(net) is net
    assert isinstance(net.populations[0], ExternalPopulation)


def test_cli_writes_csv_with_repr_floats(tmp_path):
    case = REF / "cases" / "single_const_taylor.json"
    out = tmp_path / "rates.csv"
    res = CliRunner().invoke(main, ["simulate", str(case), "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    ref = (REF / "rates" / "single_const_taylor.csv").read_text().splitlines()
    assert lines[0] == "t,e" and len(lines) == len(ref)
    assert [line.split(",")[0] for line in lines] == [line.split(",")[0] for line in ref]
    got = np.array([float(line.split(",")[1]) for line in lines[1:]])
    want = np.array([float(line.split(",")[1]) for line in ref[1:]])
    assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()
    assert all(repr(float(x)) == x for line in lines[1:] for x in line.split(","))


def test_cli_to_stdout_and_yaml_input(tmp_path):
    net = load_network(REF / "cases" / "exact_feedforward_chain.json")
    path = save_network(net, tmp_path / "chain.yaml")
    res = CliRunner().invoke(main, ["simulate", str(path)])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "t,i1,i2" and len(lines) == 202
