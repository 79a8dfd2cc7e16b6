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
