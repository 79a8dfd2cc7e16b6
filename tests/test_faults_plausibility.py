"""Plausibility warnings (issue 14): values that look like the wrong unit are warned about by
expand and run (not refused), and a spec silences them with `warnings: false` or a list of codes."""

from pathlib import Path

from click.testing import CliRunner

from sweeper.cli import main
from sweeper.model import Simulation
from sweeper.api import load_network
from sweeper.sweep.plausibility import warnings_for

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
NEW_USER = ("simulation: {tf: 500, dt: 1}\nparameters:\n  tau: {path: populations.e.tau_m, values: [20, 40]}\n"
            "  w: {path: 'connections[0].weights', values: [2, 5]}\n")


def warnings(tmp_path, body, command="expand"):
    path = tmp_path / "spec.yaml"
    path.write_text(f"network: {NET}\n" + body)
    args = [command, str(path)] + (["-o", str(tmp_path / "s.zarr"), "--no-progress"] if command == "run" else [])
    result = CliRunner().invoke(main, args)
    return result, [x for x in result.stderr.splitlines() if x.startswith("sweeper: warning:")]


def test_a_new_users_millisecond_values_are_warned_about_and_still_expand(tmp_path):
    result, lines = warnings(tmp_path, NEW_USER)
    assert result.exit_code == 0
    text = "\n".join(lines)
    assert "simulation tf=500.0 s is 8.33 minutes of network time: milliseconds?" in text
    assert "simulation dt=1.0 s is coarse for membrane dynamics: milliseconds?" in text
    assert "populations['e'].tau_m=[40.0] s: milliseconds? (tau_m is in seconds" in text
    assert "weights 5.0 V is larger than the target's voltage range (0.04 V): millivolts?" in text
    assert all(x.endswith("]]") and "[silence: warnings: [" in x for x in lines)


def test_warnings_are_silenced_per_spec(tmp_path):
    _, lines = warnings(tmp_path, "warnings: [tf-units, dt-units]\n" + NEW_USER)
    assert lines and not any("tf=" in x or "dt=" in x for x in lines)
    result, lines = warnings(tmp_path, "warnings: false\n" + NEW_USER)
    assert result.exit_code == 0 and lines == []
    result, _ = warnings(tmp_path, "warnings: [typo]\n" + NEW_USER)
    assert result.exit_code == 2 and "warnings: must be true, false or a list of codes to silence" in result.stderr


def test_run_shows_the_warnings_too_and_a_plain_spec_has_none(tmp_path):
    result, lines = warnings(tmp_path, "simulation: {tf: 0.0006}\nparameters:\n"
                             "  rate: {path: inputs.bg.rate, values: [40.0]}\n", command="run")
    assert result.exit_code == 0, result.output
    assert len(lines) == 1 and "is only 3 time steps (PopNet tstop and dt are in milliseconds" in lines[0]
    _, lines = warnings(tmp_path, "parameters:\n  rate: {path: inputs.bg.rate, values: [40.0]}\n")
    assert lines == []


def test_dv_as_wide_as_the_range_is_warned_about():
    from dataclasses import replace
    net = load_network(NET)
    pops = tuple(replace(p, dv=0.2) if p.name == "e" else p for p in net.populations)
    codes = [c for c, _ in warnings_for(replace(net, populations=pops, simulation=Simulation(0, 0.1, 1e-4)))]
    assert "dv-range" in codes
