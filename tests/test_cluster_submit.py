"""`sweeper submit`: the rendered sbatch script, and the mistakes it refuses (no Slurm needed)."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.cluster import render_sbatch
from sweeper.errors import SweeperError

SPEC = Path(__file__).parent / "data" / "cluster" / "grid.yaml"
BIN = Path(sys.executable).parent

EXPECTED = """\
#!/bin/bash
# One Slurm allocation that runs a whole sweep with dask-mpi: MPI rank 0 is the Dask scheduler,
# rank 1 runs the sweep (the client), every other rank is a single-threaded Dask worker.
# `sweeper submit` fills in the {{{{...}}}} fields; `sweeper submit --dry-run` prints the result, which
# you can edit and submit yourself with `sbatch FILE`.
#SBATCH --job-name=sweeper-grid
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --time=01:30:00
#SBATCH --output={out}/grid-slurm-%j.out
#SBATCH --chdir={cwd}
#SBATCH --partition=short
#SBATCH --account=lab42
#SBATCH --mem-per-cpu=2G
#SBATCH --constraint=ib
set -euo pipefail

# The environment sweeper was installed in (mpiexec and the worker Python come from here too).
export PATH={bin}:"$PATH"
# Hide the harmless "connection closed" messages the ranks print while shutting each other down.
export DASK_LOGGING__DISTRIBUTED=warning

# Points already in the store are skipped, so a sweep that outlives this allocation is finished
# by submitting the same job again. The job's exit status is the sweep's.
srun --mpi=pmi2 {bin}/sweeper run {spec} -o {out}/grid.zarr --cluster mpi --no-progress --interface ib0 --retry-failed
"""


def invoke(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def test_dry_run_prints_the_rendered_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("submit", SPEC, "-o", "out/grid.zarr", "--nodes", 2, "--ntasks-per-node", 8,
                    "--time", "01:30:00", "--partition", "short", "--account", "lab42",
                    "--sbatch-option=--mem-per-cpu=2G", "--sbatch-option", "--constraint=ib",
                    "--interface", "ib0", "--retry-failed", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output == EXPECTED.format(out=tmp_path / "out", cwd=tmp_path, bin=BIN, spec=SPEC)
    assert not (tmp_path / "out").exists()  # a dry run submits and creates nothing


def test_minimal_script_has_no_empty_options(tmp_path):
    text = render_sbatch(SPEC, tmp_path / "s.zarr", 1, "10:00", launcher="mpiexec",
                         output=tmp_path / "log.txt", workdir=tmp_path)
    sbatch_lines = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert sbatch_lines == ["#SBATCH --job-name=sweeper-s", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=4",
                            "#SBATCH --time=10:00", f"#SBATCH --output={tmp_path}/log.txt",
                            f"#SBATCH --chdir={tmp_path}"]
    assert text.splitlines()[-1] == (f"mpiexec {BIN}/sweeper run {SPEC} -o {tmp_path}/s.zarr "
                                     f"--cluster mpi --no-progress")


def test_own_template(tmp_path):
    mine = tmp_path / "mine.sbatch"
    mine.write_text("#!/bin/bash\n#SBATCH -t {{ time }}\n{{launcher}} {{sweeper}} run {{spec}} -o {{store}}\n")
    text = render_sbatch(SPEC, tmp_path / "s.zarr", 1, "5", template=mine)
    assert text == f"#!/bin/bash\n#SBATCH -t 5\nsrun --mpi=pmi2 {BIN}/sweeper run {SPEC} -o {tmp_path}/s.zarr\n"
    mine.write_text("{{ queue }}\n")
    with pytest.raises(SweeperError, match=r"mine.sbatch: unknown placeholder \{\{queue\}\}"):
        render_sbatch(SPEC, tmp_path / "s.zarr", 1, "5", template=mine)


@pytest.mark.parametrize("args, message", [
    (["--time", "ten minutes"], "--time: 'ten minutes' is not a Slurm time limit"),
    (["--time", "1:00:00", "--ntasks-per-node", "2"],
     "--ntasks-per-node: --nodes 1 x --ntasks-per-node 2 gives 2 MPI ranks; dask-mpi needs at least 3"),
    (["--time", "1:00:00", "--nodes", "0"], "--nodes: must be at least 1, got 0"),
    (["--time", "1:00:00", "--sbatch-option", "mem=2G"], "--sbatch-option: 'mem=2G' is not an sbatch option"),
])
def test_mistakes_are_one_line_errors(tmp_path, args, message):
    result = CliRunner().invoke(main, ["submit", str(SPEC), "-o", str(tmp_path / "s.zarr"), "--dry-run", *args])
    assert result.exit_code == 2
    assert result.output.startswith(f"sweeper: error: {message}")
    assert result.output.count("\n") == 1  # one line, no traceback


def test_spec_errors_are_reported_at_submit_time(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("inputs.bg.rate", "inputs.nosuch.rate")
                   .replace("one_pop.json", str(SPEC.parent / "one_pop.json")))
    result = CliRunner().invoke(main, ["submit", str(bad), "-o", str(tmp_path / "s.zarr"), "--time", "5"])
    assert result.exit_code == 2
    assert "nosuch" in result.output and "Traceback" not in result.output


def test_without_sbatch_submit_says_so(tmp_path):
    result = CliRunner(env={"PATH": str(tmp_path)}).invoke(
        main, ["submit", str(SPEC), "-o", str(tmp_path / "s.zarr"), "--time", "5"])
    assert result.exit_code == 2
    assert "sbatch not found on PATH" in result.output
