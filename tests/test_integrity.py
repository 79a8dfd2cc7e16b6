"""Issue 13 (integrity): checksummed chunks, a verify that finds every damaged chunk, repair
that makes damaged points recomputable, and a run that heals what a lost chunk broke.

Real Zarr stores on disk, damaged at the file level; real LocalCluster (the ``client`` fixture);
real `sweeper` commands.  Every repaired store is compared with an uninterrupted run.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.store import DONE, FAILED, VARIABLES, SweepStore
from sweeper.verify import verify, verify_store

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"

SPEC = """
network: NET
simulation: {tf: 0.05}
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0, 2.0e6]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
output: {chunk_points: 2, metric_window: 0.01}
"""


def write_spec(folder: Path, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(text.replace("NET", str(NET)))
    return path


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def run_cli(client, spec, store, *extra):
    return invoke("run", spec, "-o", store, "--scheduler", client.scheduler.address, "--no-progress", *extra)


def arrays(store) -> dict:
    g = zarr.open_group(str(store), mode="r", use_consolidated=False)
    return {k: v[:] for k, v in g.arrays()}


def assert_same_store(store, want):
    """Every array of ``store`` equals the uninterrupted run's, bit for bit."""
    a, b = arrays(store), arrays(want)
    assert a.keys() == b.keys()
    for k in b:
        if b[k].dtype.kind == "f":
            assert a[k].tobytes() == b[k].tobytes(), k
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert SweepStore.open(store).meta["completed"] is not None


def chunk_files(store: Path) -> list[str]:
    """Every chunk file of every array, relative to the store."""
    return sorted(str(p.relative_to(store)) for p in store.glob("*/c/**/*") if p.is_file())


@pytest.fixture(scope="module")
def ref(tmp_path_factory, client):
    """The uninterrupted run every damaged and repaired store must equal."""
    folder = tmp_path_factory.mktemp("ref")
    spec, store = write_spec(folder), folder / "ref.zarr"
    assert run_cli(client, spec, store).exit_code == 1  # 6 done, 2 failed (the 2e6 rate blows up)
    return spec, store


def copy(ref_store: Path, tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = tmp_path / "s.zarr"
    shutil.copytree(ref_store, store)
    return store


def flip_bit(path: Path, rng) -> int:
    data = bytearray(path.read_bytes())
    offset = int(rng.integers(len(data)))
    data[offset] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(data))
    return offset


def where_reported(name: str) -> str:
    """The text verify gives for a damaged chunk file ``array/c/i/...``."""
    array, _, key = name.partition("/")
    index = int(key.split("/")[1])
    if array == "status":
        return f"points {2 * index}-{2 * index + 1}: status, error or time unreadable"
    if array in PER_CHUNK:
        return f"points {2 * index}-{2 * index + 1}: chunk unreadable ({array}:"
    return f"array {array!r}: chunk {key} fails to decode"


PER_CHUNK = [v.name for v in VARIABLES if v.written == "task" and v.name != "status"]  # rates, metrics, error
ARRAYS = [v.name for v in VARIABLES] + ["rate", "tau", "time", "population"]


# --------------------------------------------------------------------------- checksums and verify
def test_every_array_is_checksummed(ref):
    g = zarr.open_group(str(ref[1]), mode="r")
    for name, arr in g.arrays():
        assert [c.to_dict()["name"] for c in arr.metadata.codecs][-1] == "crc32c", name
    assert verify_store(ref[1]) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_n_single_bit_flips_in_random_chunks_are_each_reported(ref, tmp_path, seed):
    store = copy(ref[1], tmp_path)
    rng = np.random.default_rng(seed)
    files = chunk_files(store)
    chosen = rng.choice(files, size=6, replace=False)
    for name in chosen:
        flip_bit(store / name, rng)
    result = invoke("verify", store)
    assert result.exit_code == 1 and result.output.strip().endswith("problem(s)")
    for name in chosen:
        assert where_reported(name) in result.output, (name, result.output)


def test_every_single_bit_of_a_rates_chunk_is_caught(ref, tmp_path):
    """Not a sample: each bit of one chunk flipped in turn fails to decode."""
    store = copy(ref[1], tmp_path)
    path = store / "rates/c/1/0/0"
    good = path.read_bytes()
    arr = zarr.open_array(str(store / "rates"), mode="r")
    for offset in range(0, len(good), max(1, len(good) // 64)):
        for bit in (0, 7):
            bad = bytearray(good)
            bad[offset] ^= 1 << bit
            path.write_bytes(bytes(bad))
            with pytest.raises(Exception):
                arr[2:4]
    path.write_bytes(good)


def swap(a: Path, b: Path):
    """Exchange two chunk files (either may be absent: a chunk of fill values only)."""
    da, db = (p.read_bytes() if p.exists() else None for p in (a, b))
    for path, data in ((a, db), (b, da)):
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(data)


def test_swapped_chunks_are_detected(ref, tmp_path):
    store = copy(ref[1], tmp_path)
    a, b = store / "rates/c/0/0/0", store / "rates/c/1/0/0"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    lines = verify_store(store)
    for i in range(4):
        assert any(line.startswith(f"point {i}: mean_rate") and "does not match its trace" in line
                   for line in lines), lines


def test_a_consistent_swap_of_traces_and_metrics_is_found_by_recompute(ref, tmp_path, client):
    store = copy(ref[1], tmp_path)
    metrics = [v.name for v in SweepStore.open(store).variables if v.metric]
    for name in ["rates/c/{}/0/0"] + [f"{m}/c/{{}}/0" for m in metrics]:
        swap(store / name.format(0), store / name.format(1))
    assert verify_store(store) == []  # every chunk is self-consistent: only simulating again tells
    result = invoke("verify", store, "--spec", ref[0], "--recompute", "all", "--scheduler", client.scheduler.address)
    assert result.exit_code == 1
    for i in range(4):
        assert f"point {i}: trace differs from the same point simulated again" in result.output, result.output
    assert "point 4" not in result.output and "point 5" not in result.output
    sound = invoke("verify", ref[1], "--spec", ref[0], "--recompute", "3", "--scheduler", client.scheduler.address)
    assert sound.exit_code == 0 and sound.output.strip().splitlines()[-1] == f"{ref[1]}: OK"


def test_recompute_needs_the_users_spec(ref):
    result = invoke("verify", ref[1], "--recompute", "2")
    assert result.exit_code == 2 and "--recompute needs the spec" in result.output


# --------------------------------------------------------------------------- repair + run
def test_bit_flips_repair_and_run_restore_the_uninterrupted_store(ref, tmp_path, client):
    store = copy(ref[1], tmp_path)
    rng = np.random.default_rng(7)
    for name in rng.choice(chunk_files(store), size=5, replace=False):
        flip_bit(store / name, rng)
    dry = invoke("repair", store, "--dry-run")
    assert dry.exit_code == 0 and "would mark" in dry.output
    assert verify_store(store)  # a dry run changes nothing
    repaired = invoke("repair", store)
    assert repaired.exit_code == 0, repaired.output
    run_cli(client, ref[0], store)
    assert verify_store(store, spec=ref[0]) == []
    assert_same_store(store, ref[1])


def test_every_chunk_file_belongs_to_an_array_tested_below(ref):
    assert {name.split("/")[0] for name in chunk_files(ref[1])} <= set(ARRAYS)


@pytest.mark.parametrize("array", ARRAYS)
def test_deleting_any_one_chunk_file_then_repair_and_run_restores_the_store(ref, tmp_path, client, array):
    names = [n for n in chunk_files(ref[1]) if n.split("/")[0] == array]
    for k, name in enumerate(names):  # each chunk file of the array, one at a time
        store = copy(ref[1], tmp_path / str(k))
        (store / name).unlink()
        assert verify_store(store), name  # every lost file is reported
        assert invoke("repair", store).exit_code == 0
        result = run_cli(client, ref[0], store)
        assert result.exit_code == 1 and "6 done, 2 failed, 0 pending" in result.output, (name, result.output)
        assert verify_store(store, spec=ref[0]) == []
        assert_same_store(store, ref[1])


def test_repair_marks_exactly_the_damaged_points_and_changes_nothing_else(ref, tmp_path):
    store = copy(ref[1], tmp_path)
    g = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    mean = g["mean_rate"][:]
    mean[3, 0] += 1.0
    g["mean_rate"][:] = mean
    before = arrays(store)
    report = verify(store)
    assert report.damaged == [3]
    result = invoke("repair", store)
    assert result.exit_code == 0 and "marked 1 damaged point(s) pending" in result.output
    after = arrays(store)
    for k in before:
        if k != "status":
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    want = before["status"].copy()
    want[3] = 0
    np.testing.assert_array_equal(after["status"], want)
    assert verify_store(store) == []  # a pending point holding old numbers is not damage


def test_a_lost_point_id_chunk_is_rebuilt_not_taken_for_an_extension(ref, tmp_path, client):
    store = copy(ref[1], tmp_path)
    (store / "point_id/c/0").unlink()
    result = run_cli(client, ref[0], store)
    assert result.exit_code == 1 and "(0 computed" in result.output, result.output  # nothing recomputed
    assert "rebuilt 8 point id(s) from the coordinates" in result.output
    assert_same_store(store, ref[1])
