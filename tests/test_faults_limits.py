"""Limits checked before anything runs (issue 14): steps per point, memory per chunk task, delay
history length. Each typo is one line naming the spec key and the value, exit 2, nothing made."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import ModelError, SpecError
from sweeper.sweep import Sweep

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"


def spec(tmp_path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"network: {NET}\n" + body)
    return path


def error_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_tf_of_19999_seconds_is_refused_before_anything_runs(tmp_path):
    path = spec(tmp_path, "simulation: {tf: 19999}\nparameters:\n  rate: {path: inputs.bg.rate, values: [40.0]}\n")
    for cmd in (["expand", str(path)], ["run", str(path), "-o", str(tmp_path / "s.zarr"), "--no-progress"]):
        line = error_line(CliRunner().invoke(main, cmd))
        assert "simulation: the network: simulation t0=0.0 .. tf=19999.0 with dt=0.0002 makes 1e+08 time steps " \
               "per point, more than sweep.max-steps=5e+07 (a typo? tf and dt are in seconds)" in line
    assert not (tmp_path / "s.zarr").exists()


def test_a_derived_infinite_or_huge_tf_is_refused_not_a_hang(tmp_path):
    for expr, why in (("rate * 1e300 * 1e300", r"simulation.tf=inf: (must be finite|simulation .* time steps)"),
                      ("rate * 1e6", r"simulation.tf=80000000.0: simulation .* time steps per point, more than "
                                     r"sweep.max-steps")):
        path = spec(tmp_path, "parameters:\n  rate: {path: inputs.bg.rate, values: [40.0, 80.0]}\n"
                    f"derived:\n  tend: {{expr: '{expr}', path: simulation.tf}}\n")
        with pytest.raises(SpecError, match=rf"derived.tend: {why}"):
            Sweep.from_file(path)


def test_a_delay_of_a_million_seconds_is_refused_naming_the_connection(tmp_path):
    path = spec(tmp_path, "simulation: {tf: 0.1}\nparameters:\n"
                "  d: {path: 'connections[0].delays', values: [0.001, 1000000.0]}\n")
    line = error_line(CliRunner().invoke(main, ["expand", str(path)]))
    assert ("parameters.d: connections[0].delays=1000000.0: connections[0] (bg->e).delays: a delay of 1000000.0 s "
            "is 5e+09 steps of dt=0.0002, more than engine.max-delay-steps=1e+07 (a typo? delays are in seconds)") \
        in line
    from sweeper.api import load_network  # the engine's check refuses it for any network, not only in specs
    from sweeper.engine.check import check_network
    from sweeper.sweep.paths import resolve
    net = load_network(NET)
    with pytest.raises(ModelError, match="more than engine.max-delay-steps"):
        check_network(resolve("connections[0].delays", net).apply(net, 1e6))


def test_memory_per_chunk_task_is_estimated_and_compared_with_the_limit(tmp_path, monkeypatch):
    path = spec(tmp_path, "simulation: {tf: 5}\nparameters:\n  rate: {path: inputs.bg.rate, values: [40.0]}\n"
                "output: {chunk_points: 64}\n")
    Sweep.from_file(path)  # 25000 steps x 64 points: about 25 MiB, within the default 4 GiB
    monkeypatch.setenv("SWEEPER__SWEEP__MAX_TASK_BYTES", str(16 * 2**20))
    with pytest.raises(SpecError, match=r"one chunk task of 64 point\(s\) would need about 2\d\.\d MiB \(traces of "
                                        r"2\.5e\+04 steps, delays up to 0\.\d+ s\), more than a worker's "
                                        r"sweep.max-task-bytes=16\.0 MiB: shorten tf or the delays, use fewer "
                                        r"chunk_points, or raise the limit"):
        Sweep.from_file(path)
