"""Sweep specs: expansion into points, and spec errors reported before any compute."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import SpecError
from sweeper.sweep import Sweep

JOBS = Path(__file__).resolve().parents[1] / "jobs"
NET = JOBS / "networks" / "single_population.json"


def write_spec(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("NET", str(NET)))
    return path


def spec_error(tmp_path, text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        Sweep.from_file(write_spec(tmp_path, text))
    return info.value


def test_grid_expands_last_axis_fastest(tmp_path):
    sweep = Sweep.from_file(write_spec(tmp_path, """
network: NET
parameters:
  rate: {path: inputs.bg.rate, values: [10, 20]}
  tau: {path: populations.e.tau_m, linspace: [0.01, 0.03, 3]}
"""))
    table = sweep.points()
    assert list(table) == ["rate", "tau"]
    np.testing.assert_array_equal(table["rate"], [10, 10, 10, 20, 20, 20])
    np.testing.assert_allclose(table["tau"], [0.01, 0.02, 0.03] * 2)


def test_zip_replicates_derived_and_constraints(tmp_path):
    sweep = Sweep.from_file(write_spec(tmp_path, """
network: NET
parameters:
  rate: {path: inputs.bg.rate, values: [10, 20, 30]}
  nsyn: {path: "connections[bg->e].nsyn", values: [1, 2, 3]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
derived:
  w: {path: "connections[bg->e].weight", expr: "0.01 / nsyn"}
constraints: ["rate * nsyn < 60"]
axes:
  - zip: [rate, nsyn]
  - grid: [tau]
replicates: 2
"""))
    table = sweep.points()
    assert sweep.parameter_names == ["rate", "nsyn", "tau", "w", "replicate"]
    # (10,1), (20,2) survive the constraint; (30,3) -> 90 does not
    assert len(table["rate"]) == 2 * 2 * 2
    assert set(zip(table["rate"], table["nsyn"])) == {(10.0, 1.0), (20.0, 2.0)}
    np.testing.assert_allclose(table["w"], 0.01 / table["nsyn"])
    np.testing.assert_array_equal(np.unique(table["replicate"]), [0, 1])
    net = sweep.network_for({k: v[3] for k, v in table.items()})
    conn = net.connections[0]
    assert conn.weights.values == (0.01 / table["nsyn"][3],)
    assert net.population("e").tau_m.values == (table["tau"][3],)


@pytest.mark.parametrize("rows", [1, 5, 7, 1000])
def test_point_blocks_are_the_points_in_order(tmp_path, rows):
    """Stores are filled a block at a time: the blocks, joined, are exactly ``points()``."""
    sweep = Sweep.from_file(write_spec(tmp_path, """
network: NET
parameters:
  rate: {path: inputs.bg.rate, values: [10, 20, 30]}
  nsyn: {path: "connections[bg->e].nsyn", values: [1, 2, 3]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
  method: {path: populations.e.update_method, values: [approx, gmres]}
  vmin: {path: populations.e.v_min, range: [-0.01, -0.005]}
derived:
  w: {path: "connections[bg->e].weight", expr: "0.01 / nsyn"}
constraints: ["rate * nsyn < 60"]
axes:
  - zip: [rate, nsyn]
  - grid: [tau, method]
  - sample: {parameters: [vmin], n: 3, method: sobol, seed: 4}
replicates: 2
"""))
    whole = sweep.points()
    blocks = list(sweep.point_blocks(rows))
    assert len(blocks) == -(-3 * 2 * 2 * 3 * 2 // rows)
    for name, column in whole.items():
        joined = np.concatenate([b[name] for b in blocks])
        assert joined.dtype == column.dtype and joined.tolist() == column.tolist(), name
    assert len(whole["rate"]) == 2 * 2 * 2 * 3 * 2


@pytest.mark.parametrize("method", ["lhs", "sobol", "random"])
def test_samples_are_seeded_and_inside_the_ranges(tmp_path, method):
    text = f"""
network: NET
parameters:
  rate: {{path: inputs.bg.rate, range: [20.0, 400.0]}}
  tau: {{path: populations.e.tau_m, range: [0.005, 0.05], log: true}}
axes:
  - sample: {{method: {method}, n: 16, seed: 3}}
"""
    a = Sweep.from_file(write_spec(tmp_path, text)).points()
    b = Sweep.from_file(write_spec(tmp_path, text)).points()
    np.testing.assert_array_equal(a["rate"], b["rate"])
    assert len(a["rate"]) == 16
    assert (a["rate"] >= 20).all() and (a["rate"] <= 400).all()
    assert (a["tau"] >= 0.005).all() and (a["tau"] <= 0.05).all()
    if method == "lhs":  # one sample per stratum in every dimension
        strata = np.floor((a["rate"] - 20) / (380 / 16)).astype(int)
        assert sorted(strata) == list(range(16))
        log_strata = np.floor(np.log(a["tau"] / 0.005) / (np.log(10) / 16)).astype(int)
        assert sorted(log_strata) == list(range(16))


def test_million_point_spec_expands(tmp_path):
    sweep = Sweep.from_file(write_spec(tmp_path, """
network: NET
parameters:
  a: {path: inputs.bg.rate, linspace: [1, 100, 100]}
  b: {path: populations.e.tau_m, linspace: [0.01, 0.05, 100]}
  c: {path: "connections[bg->e].nsyn", linspace: [1, 10, 100]}
"""))
    table = sweep.points()
    assert len(table["a"]) == 10**6
    assert table["c"][-1] == 10.0 and table["a"][-1] == 100.0


def test_all_spec_errors_are_reported_at_once_with_lines(tmp_path):
    err = spec_error(tmp_path, """
network: NET
parameters:
  tau: {path: populations.nope.tau_m, values: [0.01]}
  rate: {path: inputs.bg.rate, values: []}
  nsyn: {path: "connections[bg->e].nsyn", values: ["many"]}
  w: {path: "connections[e->bg].weight", values: [0.001]}
colour: blue
""")
    text = str(err)
    assert len(err.problems) == 5
    assert "spec.yaml:4 parameters.tau.path: unknown path 'populations.nope.tau_m': no population 'nope'" in text
    assert "spec.yaml:5 parameters.rate: the axis is empty" in text
    assert "parameters.nsyn.values.0: connections[bg->e].nsyn must be a number, got 'many'" in text
    assert "no connection e->bg (connections: bg->e)" in text
    assert "spec.yaml:8 colour: unknown key" in text


def test_values_the_engine_refuses_are_reported_before_compute(tmp_path):
    err = spec_error(tmp_path, """
network: NET
parameters:
  tau: {path: populations.e.tau_m, values: [0.01, -0.02]}
  dv: {path: populations.e.dv, values: [0.0]}
  vmin: {path: populations.e.v_min, values: [0.05]}
""")
    text = str(err)
    assert "parameters.tau" in text and "tau_m must be > 0, got -0.02" in text
    assert "parameters.dv" in text and "dv must be > 0, got 0.0" in text
    assert "parameters.vmin" in text and "v_min" in text


def test_bad_expressions_and_axes(tmp_path):
    err = spec_error(tmp_path, """
network: NET
parameters:
  rate: {path: inputs.bg.rate, values: [1, 2]}
  tau: {path: populations.e.tau_m, range: [0.01, 0.02]}
derived:
  w: {path: "connections[bg->e].weight", expr: "__import__('os').getcwd()"}
constraints: ["rate.real > 1"]
axes:
  - grid: [rate, missing]
  - sample: {method: halton, n: 0}
""")
    text = str(err)
    assert "derived.w.expr: call of \"__import__('os').getcwd\" is not allowed" in text
    assert "constraints.0: Attribute" in text
    assert "'missing' is not a parameter with values" in text
    assert "unknown method 'halton'" in text
    assert "must be an integer >= 1, got 0" in text


def test_spec_file_problems(tmp_path):
    with pytest.raises(SpecError, match="sweep spec not found"):
        Sweep.from_file(tmp_path / "nope.yaml")
    err = spec_error(tmp_path, "network: NET\nparameters: [1, 2\n")
    assert "not valid YAML" in str(err)
    err = spec_error(tmp_path, "network: missing.json\nparameters:\n  a: {path: simulation.tf, values: [1]}\n")
    assert "missing.json" in str(err)


def test_expand_cli_reports_points_and_size(tmp_path):
    path = write_spec(tmp_path, """
network: NET
parameters:
  rate: {path: inputs.bg.rate, values: [10, 20]}
  tau: {path: populations.e.tau_m, linspace: [0.01, 0.03, 3]}
""")
    result = CliRunner().invoke(main, ["expand", str(path)])
    assert result.exit_code == 0, result.output
    assert "points:      6" in result.output
    assert "samples:     1001 per trace" in result.output
    assert "46.9 KB of traces" in result.output  # 6 points x 1 population x 1001 samples x 8 bytes


def test_cli_spec_error_is_one_clean_message(tmp_path):
    path = write_spec(tmp_path, "network: NET\nparameters:\n  a: {path: populations.e.tau_m, values: [-1]}\n")
    result = CliRunner().invoke(main, ["expand", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "tau_m must be > 0, got -1.0" in result.output
