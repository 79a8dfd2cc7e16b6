"""Issue 13.3: a kill at EVERY named step of creation, chunk write, extension, structure repair,
completion and a metric added to a finished store (`sweeper metrics --add`) leaves a store that the next run completes, that `verify` accepts, and whose
every point equals the uninterrupted run's.

The kill is ``os._exit`` at the step named by SWEEPER_TEST_CRASH_AT (sweeper.store.crash), in a
real `sweeper run` process whose workers are threads of that process, so the whole run dies
there.  A logged run proves the list of steps below is every step a run passes.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from sweeper.store import SweepStore, crash
from sweeper.verify import verify_store

from test_integrity import arrays, assert_same_store, run_cli, write_spec

SWEEPER = str(Path(sys.executable).with_name("sweeper"))
MORE = """
network: NET
simulation: {tf: 0.05}
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0, 2.0e6, 300.0, 400.0]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
output: {chunk_points: 2, metric_window: 0.01}
"""


def write_steps(store) -> list[str]:
    return [crash.write_step(v.name) for v in SweepStore.open(store).variables if v.written == "task"]


def sweeper_run(spec, store, env=None) -> subprocess.CompletedProcess:
    """A real `sweeper run` whose workers are threads of its own process (a kill stops it all)."""
    return subprocess.run([SWEEPER, "run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def killed_at(step, spec, store):
    result = sweeper_run(spec, store, {crash.CRASH_AT: step})
    assert result.returncode == crash.EXIT_STATUS, (step, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def refs(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("crash-ref")
    spec, more = write_spec(folder), write_spec(folder, MORE, "more.yaml")
    base, grown = folder / "base.zarr", folder / "grown.zarr"
    assert run_cli(client, spec, base).exit_code == 1  # 6 done, 2 failed
    assert run_cli(client, more, grown).exit_code == 1  # 10 done, 2 failed
    return spec, more, base, grown


def finish_and_compare(client, spec, store, want):
    result = run_cli(client, spec, store)
    assert result.exit_code == 1 and ", 0 pending" in result.output, result.output  # the 2e6 points fail
    assert verify_store(store) == [] and verify_store(store, spec=spec) == []
    assert_same_store(store, want)


# --------------------------------------------------------------------------- every step, in turn
@pytest.mark.parametrize("step", list(crash.CREATE_STEPS) + ["write.*", "run.completed"])
def test_kill_while_creating_or_writing_then_the_next_run_completes(refs, tmp_path, client, step):
    spec, _, base, _ = refs
    steps = write_steps(base) if step == "write.*" else [step]
    for name in steps:
        store = tmp_path / f"{name}.zarr"
        killed_at(name, spec, store)
        finish_and_compare(client, spec, store, base)


@pytest.mark.parametrize("step", crash.EXTEND_STEPS)
def test_kill_while_extending_then_the_next_run_completes(refs, tmp_path, client, step):
    spec, more, base, grown = refs
    store = tmp_path / "s.zarr"
    shutil.copytree(base, store)
    killed_at(step, more, store)
    if step in ("extend.committed", "extend.consolidated"):
        assert SweepStore.open(store).committed_points == 12  # committed: the next run only computes
    else:
        assert SweepStore.open(store).committed_points == 8   # not committed: the next run cuts back
        assert verify_store(store) != []
    finish_and_compare(client, more, store, grown)


def test_kill_while_undoing_an_interrupted_extension(refs, tmp_path, client):
    spec, more, base, grown = refs
    store = tmp_path / "s.zarr"
    shutil.copytree(base, store)
    killed_at("extend.ids", more, store)
    killed_at("repair.cut", more, store)
    finish_and_compare(client, more, store, grown)


def test_kill_while_rebuilding_lost_ids(refs, tmp_path, client):
    spec, _, base, _ = refs
    store = tmp_path / "s.zarr"
    shutil.copytree(base, store)
    (store / "point_id/c/0").unlink()
    killed_at("repair.ids", spec, store)
    result = run_cli(client, spec, store)
    assert "(0 computed" in result.output, result.output  # every done point kept
    assert_same_store(store, base)


def test_a_killed_extension_keeps_every_done_point_without_computing_it_again(refs, tmp_path, client):
    spec, more, base, grown = refs
    store = tmp_path / "s.zarr"
    shutil.copytree(base, store)
    killed_at("extend.ids", more, store)
    result = run_cli(client, more, store)
    assert "(4 computed" in result.output, result.output  # only the 4 new points
    before, after = arrays(base), arrays(store)
    assert after["rates"][:8].tobytes() == before["rates"].tobytes()


# --------------------------------------------------------------------------- the list is complete
def test_the_steps_tested_are_every_step_a_run_passes(refs, with_metric, tmp_path):
    spec, more, base, _ = refs
    log, store = tmp_path / "steps.log", tmp_path / "s.zarr"
    env = {crash.CRASH_LOG: str(log)}
    assert sweeper_run(spec, store, env).returncode == 1
    assert sweeper_run(more, store, env).returncode == 1
    (store / "point_id/c/0").unlink()
    g = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    g["rate"].resize((14,))  # an extension killed after its parameters
    assert sweeper_run(more, store, env).returncode == 1
    assert sweeper_metrics(store, env).returncode == 0
    seen = set(log.read_text().split())
    tested = set(crash.CREATE_STEPS) | set(write_steps(base)) | {"run.completed"} | set(crash.EXTEND_STEPS) \
        | set(crash.REPAIR_STEPS) | set(crash.METRIC_STEPS)
    assert seen == tested, (seen ^ tested)
    assert np.array_equal(arrays(store)["status"] > 0, np.ones(12, dtype=bool))


# --------------------------------------------------------------------------- a metric added
OWN = '''
import numpy as np

def last_over_peak(t, rates, params):
    return rates[:, -1] / np.max(rates, axis=1)
'''


def sweeper_metrics(store, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([SWEEPER, "metrics", str(store), "--add", "lop=integrity_own_metric:last_over_peak",
                           "--workers", "1"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def with_metric(refs, tmp_path_factory):
    """The base store with the metric added without interruption."""
    spec, _, base, _ = refs
    (spec.parent / "integrity_own_metric.py").write_text(OWN)
    store = tmp_path_factory.mktemp("metric-ref") / "m.zarr"
    shutil.copytree(base, store)
    assert sweeper_metrics(store).returncode == 0
    return store


@pytest.mark.parametrize("step", crash.METRIC_STEPS)
def test_kill_while_adding_a_metric_then_the_same_command_completes(refs, with_metric, tmp_path, step):
    spec, _, base, _ = refs
    store = tmp_path / "s.zarr"
    shutil.copytree(base, store)
    killed = sweeper_metrics(store, {crash.CRASH_AT: step})
    assert killed.returncode == crash.EXIT_STATUS, (killed.stdout, killed.stderr)
    if step in ("metric.committed", "metric.chunk"):
        assert any("were being computed" in line for line in verify_store(store))
    if step != "metric.done":  # after its last step the metric is in: nothing to do again
        again = sweeper_metrics(store)
        assert again.returncode == 0, again.stderr
    assert verify_store(store) == []
    assert_same_store(store, with_metric)
