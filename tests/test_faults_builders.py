"""Builders are isolated (issue 14): one that sleeps past sweep.builder-timeout, raises SystemExit
or KeyboardInterrupt, or calls os._exit fails its point with the reason; the run goes on, and its
exit status is 0 only if every point is done."""

import os
import subprocess
import sys
from pathlib import Path

from sweeper.store import DONE, FAILED, SweepStore

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))

BUILDER = '''
import os, sys, threading
from sweeper.api import load_network

def build(x):
    x = int(x)
    if x == 1:
        raise SystemExit(3)
    if x == 2:
        raise KeyboardInterrupt
    if x == 3:
        os._exit(0)
    if x == 4:
        threading.Event().wait()  # never returns
    return load_network(NET)
'''


import pytest


@pytest.mark.parametrize("workers", [[], ["--processes"]], ids=["threads", "processes"])
def test_misbehaving_builders_fail_their_points_and_the_run_exits_1(tmp_path, workers):
    """By default (sweep.builder-isolation: process), with thread workers and with worker processes."""
    (tmp_path / "bad_builder.py").write_text(BUILDER.replace("NET", repr(str(NET))))
    spec = tmp_path / "spec.yaml"
    spec.write_text("builder: bad_builder:build\nsimulation: {tf: 0.02}\nparameters:\n"
                    "  x: {values: [0, 1, 2, 3, 4, 5]}\noutput: {chunk_points: 1}\n")
    env = dict(os.environ, SWEEPER__SWEEP__BUILDER_TIMEOUT="20")
    env.pop("SWEEPER__SWEEP__BUILDER_ISOLATION", None)
    proc = subprocess.run([SWEEPER, "run", str(spec), "-o", str(tmp_path / "s.zarr"), "--workers", "1",
                           "--no-progress", *workers], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1, proc.stderr  # not 0: points failed
    assert "Traceback" not in proc.stderr
    st = SweepStore.open(tmp_path / "s.zarr")
    assert list(st.status(slice(0, 6))) == [DONE, FAILED, FAILED, FAILED, FAILED, DONE]
    err = proc.stderr
    assert "the builder bad_builder:build raised SystemExit(3) for {'x': 1}" in err
    assert "the builder bad_builder:build raised KeyboardInterrupt() for {'x': 2}" in err
    assert "the builder bad_builder:build ended its process (os._exit or a crash) for {'x': 3}" in err
    assert "the builder bad_builder:build did not return within sweep.builder-timeout=20 s for {'x': 4}" in err
