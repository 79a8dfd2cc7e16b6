"""`sweeper run`'s cluster options: each mistake is one line naming the option, exit 2, before the
lock is taken or any cluster starts (nothing is created), and a run never hangs on them."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.store.lock import lock_path

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"

pytestmark = pytest.mark.timeout(300)  # a first kernel compile on a loaded machine is slow


def run(tmp_path, *options, env=None):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"network: {NET}\nsimulation: {{tf: 0.05}}\n"
                    "parameters: {rate: {path: inputs.bg.rate, values: [10.0, 20.0]}}\n")
    store = tmp_path / "s.zarr"
    result = CliRunner(env=env).invoke(main, ["run", str(spec), "-o", str(store), "--no-progress", *options])
    return result, store


@pytest.mark.parametrize("workers, message", [
    ("-3", "--workers: must be a whole number of at least 1, got -3"),
    ("0", "--workers: must be a whole number of at least 1, got 0"),
    ("100000", "--workers: 100000 workers is more than this machine runs usefully: at most "),
])
def test_workers_out_of_range(tmp_path, workers, message):
    result, store = run(tmp_path, "--workers", workers)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"sweeper: error: {message}") and result.output.count("\n") == 1
    assert not store.exists() and not lock_path(store).exists()


@pytest.mark.parametrize("address", ["foo", "tcp://", "tcp://host:abc", "tcp://host:0", "tcp://host:70000",
                                     "nosuch://host:1", "tcp://bad host:1", ":8786"])
def test_a_malformed_scheduler_address(tmp_path, address):
    result, store = run(tmp_path, "--scheduler", address)
    assert result.exit_code == 2, result.output
    assert result.output == (f"sweeper: error: --scheduler: {address!r} is not a scheduler address "
                             "(like tcp://HOST:8786)\n")
    assert not store.exists()


def test_an_unreachable_scheduler(tmp_path):
    result, store = run(tmp_path, "--scheduler", "tcp://127.0.0.1:1",
                        env={"SWEEPER__CLUSTER__SCHEDULER__CONNECT_TIMEOUT": "1s"})
    assert result.exit_code == 2, result.output
    assert result.output.startswith("sweeper: error: --scheduler: cannot reach the scheduler at "
                                    "tcp://127.0.0.1:1: ")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not lock_path(store).exists()  # released; the store keeps its points pending


def test_a_worker_count_is_used_as_given(tmp_path):
    result, store = run(tmp_path, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "local cluster, 1 worker threads" in result.output and "2 done, 0 failed" in result.output


def test_slurm_jobs_must_be_at_least_one(tmp_path):
    result, store = run(tmp_path, "--cluster", "slurm", "--jobs", "0")
    assert result.exit_code == 2
    assert result.output == "sweeper: error: --jobs: must be a whole number of at least 1, got 0\n"
    assert not store.exists()
