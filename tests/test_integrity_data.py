"""Issue 13.6: a store is data.  Reading and checking it (status, show, plot, verify, repair,
open_sweep) never imports or calls code it names, and a resume runs only the user's own spec.

The store here names a builder module that writes a file when it is imported or called; the
file must never appear, in this process or on the workers.
"""

import sys

import pytest
import zarr

from sweeper.analysis import open_sweep
from sweeper.store import SweepStore
from sweeper.verify import verify_store

from test_integrity import invoke, run_cli, write_spec
from test_integrity_crash import MORE

EVIL = '''
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("the store's code ran")


def build(**params):
    Path(__file__).with_name("CALLED").write_text("the store's builder ran")
    raise SystemExit(3)
'''


@pytest.fixture
def hostile(tmp_path, client):
    """A finished store whose kept spec and recipe name the builder ``evil:build``."""
    spec = write_spec(tmp_path)
    store = tmp_path / "s.zarr"
    assert run_cli(client, spec, store).exit_code == 1
    code = tmp_path / "code"
    code.mkdir()
    (code / "evil.py").write_text(EVIL)
    g = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    meta = dict(g.attrs["sweeper"])
    meta["spec"] = (f"builder: evil:build\nbuilder_path: {code}\nparameters:\n  rate: {{values: [50.0, 100.0]}}\n"
                    "  tau: {values: [0.01, 0.02]}\n")
    meta["base_dir"] = str(code)
    meta["recipe"] = dict(meta["recipe"], builder="evil:build", builder_path=str(code), network=None,
                          base_dir=str(code), paths={"rate": None, "tau": None})
    g.attrs["sweeper"] = meta
    SweepStore.open(store).consolidate()
    yield spec, store, code
    assert not (code / "IMPORTED").exists() and not (code / "CALLED").exists()
    assert "evil" not in sys.modules


@pytest.mark.parametrize("command", [["status"], ["show"], ["plot", "-x", "rate", "-y", "tau"], ["verify"],
                                     ["verify", "--no-spec"], ["repair", "--dry-run"], ["repair"]])
def test_reading_and_checking_commands_run_nothing_the_store_names(hostile, command, tmp_path):
    spec, store, code = hostile
    extra = ["-o", str(tmp_path / "p.png")] if command[0] == "plot" else []
    result = invoke(command[0], store, *command[1:], *extra)
    assert result.exit_code in (0, 1), result.output
    assert not (code / "IMPORTED").exists(), command


def test_verify_reads_the_kept_spec_for_its_points_only(hostile):
    spec, store, code = hostile
    lines = verify_store(store)  # the kept spec now says 4 points: reported, not run
    assert any("point ids do not match the spec kept in the store" in line for line in lines), lines
    assert verify_store(store, spec=spec) == []  # the user's spec: every check passes


def test_open_sweep_and_the_python_api_run_nothing(hostile):
    spec, store, code = hostile
    ds = open_sweep(store)
    assert ds.sizes["point"] == 8
    assert "evil:build" in str(ds.attrs["sweeper"])  # the store's record is shown, never run


def test_a_resume_builds_networks_from_the_users_spec_only(hostile, tmp_path, client):
    spec, store, code = hostile
    more = write_spec(tmp_path, MORE, "more.yaml")
    result = run_cli(client, more, store)  # extends by 4 points: the workers build 4 networks
    assert result.exit_code == 1 and "10 done, 2 failed, 0 pending" in result.output, result.output
    assert "(4 computed" in result.output
    assert verify_store(store, spec=more) == []


def _name_evil_metric(store, code):
    g = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    meta = dict(g.attrs["sweeper"])
    meta["user_metrics"] = {"mean_rate_own": {"function": "evil:build", "identity": "0" * 16}}
    g.attrs["sweeper"] = meta
    arr = g.create_array("mean_rate_own", shape=g["mean_rate"].shape, chunks=g["mean_rate"].chunks,
                         dtype="float64", fill_value=float("nan"))
    arr[:] = g["mean_rate"][:]
    SweepStore.open(store).consolidate()


def test_a_metric_function_the_store_names_is_never_run(hostile, client, tmp_path):
    spec, store, code = hostile
    _name_evil_metric(store, code)
    for command in (["verify"], ["status"], ["show"], ["metrics", "--recompute", "--workers", "1"]):
        result = invoke(command[0], store, *command[1:])
        assert result.exit_code in (0, 1, 2), result.output
    assert "code a store names is never run" in invoke("metrics", store, "--recompute").output
    SweepStore.open(store, mode="r+").mark_pending([0])  # a resume now has a point to compute
    refused = run_cli(client, spec, store)
    assert refused.exit_code == 2 and "which the spec does not name" in refused.output, refused.output
