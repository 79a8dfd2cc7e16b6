"""Metrics of the user's own: in the spec, from Python, and added to a finished store."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import SpecError
from sweeper.store import DONE, FAILED, SweepStore
from sweeper.sweep import Sweep, open_sweep, run_sweep
from sweeper.sweep.recompute import add_metrics
from sweeper.verify import verify_store

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"

MODULE = '''
import numpy as np

def last_over_peak(t, rates, params):
    return rates[:, -1] / np.max(rates, axis=1)

def rate_param(t, rates, params):
    return np.full(rates.shape[0], params["rate"] + len(t))

def picky(t, rates, params):
    if params["rate"] > 150:
        raise RuntimeError("too fast for me")
    return rates[:, -1]
'''

SPEC = f"""
network: {NET}
simulation: {{tf: 0.03}}
parameters:
  rate: {{path: inputs.bg.rate, values: [50.0, 100.0, 200.0]}}
  tau: {{path: populations.e.tau_m, values: [0.01, 0.02]}}
output: {{chunk_points: 2, metric_window: 0.01}}
"""


def folder_with_module(tmp_path, name="own_metrics_mod") -> Path:
    (tmp_path / f"{name}.py").write_text(MODULE)
    return tmp_path


def test_a_spec_metric_is_computed_stored_and_verified(tmp_path, client):
    folder = folder_with_module(tmp_path, "own_metrics_a")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC + "metrics:\n  lop: {function: 'own_metrics_a:last_over_peak', units: '1'}\n"
                    "  rp: {function: 'own_metrics_a:rate_param'}\n")
    assert run_sweep(Sweep.from_file(spec), folder / "s.zarr", client=client).ok
    ds = open_sweep(folder / "s.zarr", index=False)
    rates = ds["rates"].values
    np.testing.assert_allclose(ds["lop"].values, rates[:, :, -1] / rates.max(axis=2), rtol=1e-12)
    np.testing.assert_array_equal(ds["rp"].values[:, 0], ds["rate"].values + len(ds["time"]))
    assert ds["lop"].attrs["units"] == "1"
    meta = SweepStore.open(folder / "s.zarr").meta
    assert meta["user_metrics"]["lop"]["function"] == "own_metrics_a:last_over_peak"
    assert len(meta["user_metrics"]["lop"]["identity"]) == 16
    assert verify_store(folder / "s.zarr") == []


def test_a_metric_that_raises_marks_its_point_failed_with_the_reason(tmp_path, client):
    folder = folder_with_module(tmp_path, "own_metrics_b")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC + "metrics:\n  picky: {function: 'own_metrics_b:picky'}\n")
    summary = run_sweep(Sweep.from_file(spec), folder / "s.zarr", client=client)
    ds = open_sweep(folder / "s.zarr", index=False)
    fast = ds["rate"].values == 200.0
    assert (ds["status"].values[fast] == FAILED).all() and (ds["status"].values[~fast] == DONE).all()
    assert all(e == "metric picky failed: RuntimeError: too fast for me" for e in ds["error"].values[fast])
    assert len(summary.failures) == 2
    assert verify_store(folder / "s.zarr") == []


def test_adding_a_metric_to_a_finished_store_equals_the_spec_time_value_and_simulates_nothing(tmp_path, client):
    folder = folder_with_module(tmp_path, "own_metrics_c")
    with_metric, plain = folder / "with.yaml", folder / "plain.yaml"
    with_metric.write_text(SPEC + "metrics:\n  lop: {function: 'own_metrics_c:last_over_peak'}\n")
    plain.write_text(SPEC)
    run_sweep(Sweep.from_file(with_metric), folder / "with.zarr", client=client)
    run_sweep(Sweep.from_file(plain), folder / "plain.zarr", client=client)
    chunk_files = sorted((folder / "plain.zarr" / "rates").rglob("c/*/*/*"))
    stamps = [p.stat().st_mtime_ns for p in chunk_files]

    summary = add_metrics(folder / "plain.zarr", {"lop": "own_metrics_c:last_over_peak"}, client=client)
    assert summary.computed == ["lop"] and summary.failures == []
    assert [p.stat().st_mtime_ns for p in chunk_files] == stamps  # no trace was written again
    a, b = open_sweep(folder / "plain.zarr", index=False), open_sweep(folder / "with.zarr", index=False)
    np.testing.assert_array_equal(a["lop"].values, b["lop"].values)
    assert verify_store(folder / "plain.zarr") == []
    assert "lop" in SweepStore.open(folder / "plain.zarr").meta["user_metrics"]


def test_metrics_cli_add_recompute_and_mistakes(tmp_path, client, monkeypatch):
    folder = folder_with_module(tmp_path, "own_metrics_d")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC)
    run_sweep(Sweep.from_file(spec), folder / "s.zarr", client=client)
    runner = CliRunner()
    store = str(folder / "s.zarr")
    monkeypatch.setenv("SWEEPER__SWEEP__METRICS__SILENT_RATE", "1000")  # everything counts as silent now
    result = runner.invoke(main, ["metrics", store, "--recompute", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert (open_sweep(store)["regime"].values == 0).all()
    monkeypatch.delenv("SWEEPER__SWEEP__METRICS__SILENT_RATE")
    bad = runner.invoke(main, ["metrics", store, "--add", "mean_rate=own_metrics_d:picky"])
    assert bad.exit_code == 2 and "already a name in the store" in bad.output
    bad = runner.invoke(main, ["metrics", store, "--add", "x=own_metrics_d:nope"])
    assert bad.exit_code == 2 and "has no function 'nope'" in bad.output
    listed = runner.invoke(main, ["metrics", store])
    assert listed.exit_code == 0 and "osc_freq" in listed.output and "regime" in listed.output


def test_a_python_callable_metric_must_be_importable(tmp_path):
    with pytest.raises(SpecError, match="importable by name"):
        Sweep(network=str(NET), parameters={"rate": {"path": "inputs.bg.rate", "values": [50.0]}},
              metrics={"m": lambda t, r, p: r[:, -1]})
    from sweeper.metrics import final_rate  # any module-level function is fine
    sweep = Sweep(network=str(NET), parameters={"rate": {"path": "inputs.bg.rate", "values": [50.0]}},
                  metrics={"m": final_rate})
    assert sweep.user_metrics["m"]["function"] == "sweeper.metrics:final_rate"
