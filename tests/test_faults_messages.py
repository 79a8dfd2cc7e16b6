"""Messages that help (issue 14): a resume with nothing to do starts no cluster; a run that leaves
failed points says how to retry them."""

from pathlib import Path

from click.testing import CliRunner

from sweeper.cli import main

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"


def test_a_finished_store_resumes_without_starting_a_cluster_and_failed_points_get_a_hint(tmp_path):
    spec = tmp_path / "spec.yaml"
    # tau_m = 0.1 ms fails (dt too large for it: mass not conserved); the other point is done
    spec.write_text(f"network: {NET}\nsimulation: {{tf: 0.05, dt: 0.0002}}\n"
                    "parameters:\n  tau: {path: populations.e.tau_m, values: [0.02, 0.0001]}\n")
    store = tmp_path / "s.zarr"
    first = CliRunner().invoke(main, ["run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"])
    assert first.exit_code == 1, first.output
    hint = (f"sweeper: 1 point(s) of {store} failed; after fixing the cause, run the same command with "
            "--retry-failed to compute them again")
    assert hint in first.stderr
    again = CliRunner().invoke(main, ["run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"])
    assert again.exit_code == 1 and "local cluster" not in again.stderr and "dashboard" not in again.stderr
    assert f"{store}: 1 done, 1 failed, 0 pending of 2 points (0 computed" in again.stdout
    assert hint in again.stderr


def test_expand_paths_lists_the_parameter_paths_a_network_offers(tmp_path):
    for target in (NET, tmp_path / "spec.yaml"):
        (tmp_path / "spec.yaml").write_text(f"network: {NET}\nparameters:\n  rate: {{path: inputs.bg.rate, values: [40.0]}}\n")
        result = CliRunner().invoke(main, ["expand", "--paths", str(target)])
        assert result.exit_code == 0, result.output
        rows = [line.split() for line in result.stdout.splitlines()]
        assert ["inputs.bg.rate", "Hz"] in rows and ["populations.e.tau_m", "s"] in rows
        assert ["connections[0].weights", "V"] in rows and ["simulation.tf", "s"] in rows


SAMPLED = """network: NET
simulation: {tf: 0.02}
parameters:
  rate: {path: inputs.bg.rate, range: [20.0, 400.0]}
axes:
  - sample: {method: METHOD, n: N, seed: 3}
"""


def _sampled(tmp_path, method, n):
    from sweeper.sweep import Sweep
    spec = tmp_path / "spec.yaml"
    spec.write_text(SAMPLED.replace("NET", str(NET)).replace("METHOD", method).replace("N", str(n)))
    return spec, Sweep.from_file(spec)


def test_a_latin_hypercube_store_cannot_grow_and_the_message_says_what_can(tmp_path):
    from sweeper.store import SweepStore
    from sweeper.sweep.runner import prepare_store

    store = tmp_path / "lhs.zarr"
    prepare_store(_sampled(tmp_path, "lhs", 4)[1], store)
    spec, _ = _sampled(tmp_path, "lhs", 8)
    result = CliRunner().invoke(main, ["run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "holds 4 point(s) that this spec no longer has" in lines[0]
    assert "'lhs' sample cannot grow: n: 8 draws a new design" in lines[0]
    assert "method random or sobol" in lines[0] and "new store" in lines[0]
    assert len(SweepStore.open(store).point_ids()) == 4  # the store is left as it was

    for method in ("sobol", "random"):  # what the message offers does grow, keeping the old points
        grown = tmp_path / f"{method}.zarr"
        first = prepare_store(_sampled(tmp_path, method, 4)[1], grown).point_ids()
        after = prepare_store(_sampled(tmp_path, method, 8)[1], grown).point_ids()
        assert len(after) == 8 and set(first) <= set(after)
