"""Spec mistakes that passed silently or were misreported (issue 14): one line each naming the key,
exit 2, before anything runs."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
RATE = "  rate: {path: inputs.bg.rate, values: [40.0, 80.0]}\n"


def expand(tmp_path, body: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(f"network: {NET}\n" + body)
    result = CliRunner().invoke(main, ["expand", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    return [x.strip() for x in result.stderr.splitlines() if x.strip()]


@pytest.mark.parametrize("first, second", [
    ("connections[0].weight", "connections[0].weights"),
    ("inputs.bg.rate", "populations.bg.rate"),
    ("connections[0].nsyn", "connections[bg->e].nsyn"),
])
def test_two_parameters_on_one_field_are_refused(tmp_path, first, second):
    lines = expand(tmp_path, f"parameters:\n  a: {{path: '{first}', values: [1.0]}}\n"
                             f"  b: {{path: '{second}', values: [2.0]}}\n")
    assert len(lines) == 1 and lines[0].endswith(
        f"spec.yaml:4 parameters.b: sets the same field as 'a' ({second}): one field, one parameter (the "
        "other's values would be overwritten, yet kept in the store)"), lines


def test_a_derived_parameter_on_a_swept_path_is_refused(tmp_path):
    lines = expand(tmp_path, "parameters:\n" + RATE + "derived:\n  r2: {expr: 'rate * 2', path: inputs.bg.rate}\n")
    assert lines[0].endswith("derived.r2: sets the same field as 'rate' (inputs.bg.rate): one field, one parameter "
                             "(the other's values would be overwritten, yet kept in the store)")


def test_metric_window_nan_is_refused(tmp_path):
    lines = expand(tmp_path, "output: {metric_window: .nan}\nparameters:\n" + RATE)
    assert lines == [f"sweeper: error: {tmp_path / 'spec.yaml'}:2 output.metric_window: must be a positive "
                     "number of seconds, got nan"]


def test_a_derived_approx_order_of_one_and_a_half_is_refused_not_truncated(tmp_path):
    lines = expand(tmp_path, "parameters:\n" + RATE +
                   "derived:\n  o: {expr: 'rate * 0 + 1.5', path: populations.e.approx_order}\n")
    assert lines[0].endswith("derived.o: populations.e.approx_order=1.5: must be null or an integer >= 1, got 1.5")


def test_axis_values_that_are_distributions_are_refused_in_expand(tmp_path):
    lines = expand(tmp_path, "parameters:\n  w: {path: 'connections[0].weights', "
                             "values: [{values: [0.001], probs: [1.0]}, 0.002]}\n")
    assert lines[0].endswith("parameters.w.values.0: an axis value must be a number or a string, got "
                             "{'values': [0.001], 'probs': [1.0]} (a distribution cannot be one value of an axis)")
    lines = expand(tmp_path, "parameters:\n  rate: {path: inputs.bg.rate, values: [40.0, null]}\n")
    assert "parameters.rate.values.1: inputs.bg.rate must be a number" in lines[0]


def test_a_parameter_named_replicate_beside_replicates_is_refused_by_name(tmp_path):
    lines = expand(tmp_path, "replicates: 2\nparameters:\n  replicate: {path: inputs.bg.rate, values: [40.0]}\n")
    assert lines[0].endswith("parameters.replicate: the name 'replicate' is the replicate index that 'replicates' "
                             "adds: rename the parameter")
    assert "identical parameter values" not in lines[0]


def test_simulation_tf_abc_is_the_specs_mistake_not_a_builder_failure(tmp_path):
    lines = expand(tmp_path, "simulation: {tf: abc}\nparameters:\n" + RATE)
    assert lines == [f"sweeper: error: {tmp_path / 'spec.yaml'}:2 simulation.tf: must be a number of seconds, got 'abc'"]
    (tmp_path / "b.py").write_text("def build():\n    raise AssertionError('never called')\n")
    path = tmp_path / "builder.yaml"
    path.write_text("builder: b:build\nsimulation: {tf: abc}\nparameters:\n" + RATE)
    result = CliRunner().invoke(main, ["expand", str(path)])
    assert result.exit_code == 2 and "builder" not in result.stderr.split("simulation.tf")[1], result.stderr
    assert "simulation.tf: must be a number of seconds, got 'abc'" in result.stderr
