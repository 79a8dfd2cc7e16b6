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
#SBATCH --signal=B:TERM@120
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
srun --mpi=pmi2 {bin}/sweeper run {spec} -o {out}/grid.zarr --cluster mpi --no-progress --interface ib0 --retry-failed &
sweep=$!
# Near the time limit (--signal above) or on scancel, Slurm sends this script SIGTERM: pass it on
# to the sweep's ranks, so the sweep stops cleanly (chunks in flight finished or left pending, the
# store's lock released) and the job ends with exit status 143. Through Slurm, not to srun itself:
# srun answers SIGTERM by killing its tasks. A trapped signal ends `wait` early: wait again.
forward() {{
  if [ -n "${{SLURM_JOB_ID:-}}" ]; then scancel --signal=TERM "$SLURM_JOB_ID"; else kill -TERM "$sweep"; fi
}}
trap 'forward 2>/dev/null || true' TERM INT
while true; do
  wait "$sweep" && status=0 || status=$?
  kill -0 "$sweep" 2>/dev/null || break
done
exit "$status"
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
                            f"#SBATCH --chdir={tmp_path}", "#SBATCH --signal=B:TERM@120"]
    assert (f"\nmpiexec {BIN}/sweeper run {SPEC} -o {tmp_path}/s.zarr --cluster mpi --no-progress &\n"
            in text)


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


# --- values written into the script are checked (no second line, no second command) ------------
INJECT = "\n#SBATCH --uid=0\nrm -rf ~"


@pytest.fixture
def recording_sbatch(tmp_path, monkeypatch):
    """An `sbatch` first on PATH that records any call: the proof that nothing was submitted."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "sbatch-calls"
    (bindir / "sbatch").write_text(f"#!/bin/sh\necho called >> '{calls}'\necho 1\n")
    (bindir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return calls


@pytest.mark.parametrize("option", ["-o", "--time", "--partition", "--account", "--launcher",
                                    "--interface", "--sbatch-option", "--log"])
@pytest.mark.parametrize("bad", [INJECT, "x\ry", "x\x1b[2Jy", "x\x7fy", "x\ty"])  # (argv cannot hold NUL)
def test_control_characters_in_every_submit_option_are_refused_and_nothing_is_submitted(
        tmp_path, recording_sbatch, option, bad):
    values = {"-o": str(tmp_path / "s.zarr"), "--time": "10:00"}
    value = {"--time": "10:00", "--sbatch-option": "--comment=a"}.get(option, "x")
    values[option] = (value + bad) if option != "-o" else str(tmp_path / ("s" + bad + ".zarr"))
    args = [a for k, v in values.items() for a in (k, v)]
    for dry in ([], ["--dry-run"]):
        result = CliRunner().invoke(main, ["submit", str(SPEC), *args, *dry])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"sweeper: error: {option}: ") and "control character" in result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not recording_sbatch.exists()


@pytest.mark.parametrize("where", ["spec", "cwd"])
def test_a_spec_path_or_folder_with_a_newline_is_refused(tmp_path, recording_sbatch, monkeypatch, where):
    folder = tmp_path / ("a" + INJECT.replace("/", "_").replace("~", "_")) if where == "cwd" else tmp_path
    folder.mkdir(exist_ok=True)
    spec = folder / ("g" + INJECT.replace("/", "_").replace("~", "_") + ".yaml") if where == "spec" else tmp_path / "g.yaml"
    spec.write_text(SPEC.read_text().replace("one_pop.json", str(SPEC.parent / "one_pop.json")))
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, ["submit", str(spec), "-o", str(tmp_path / "s.zarr"), "--time", "10:00"])
    assert result.exit_code == 2 and "control character" in result.output, result.output
    assert result.output.startswith("sweeper: error: SPEC: " if where == "spec" else "sweeper: error: the current folder: ")
    assert not recording_sbatch.exists()


@pytest.mark.parametrize("option, value", [("--nodes", "2\n#SBATCH --uid=0"), ("--ntasks-per-node", "4;id")])
def test_numbers_must_be_numbers(tmp_path, recording_sbatch, option, value):
    result = CliRunner().invoke(main, ["submit", str(SPEC), "-o", str(tmp_path / "s.zarr"), "--time", "10:00",
                                       option, value])
    assert result.exit_code == 2 and "is not a valid integer" in result.output
    assert not recording_sbatch.exists()


def test_values_that_need_quotes_are_quoted_and_a_launcher_is_one_command(tmp_path):
    text = render_sbatch(SPEC, tmp_path / "my run.zarr", 1, "10:00", partition="short",
                         extra=["--comment=two words"], launcher="srun --mpi=pmix; rm -rf ~",
                         workdir=tmp_path)
    assert f'#SBATCH --output="{tmp_path}/my run-slurm-%j.out"' in text
    assert '#SBATCH --job-name="sweeper-my run"' in text and '#SBATCH --comment="two words"' in text
    assert f"srun '--mpi=pmix;' rm -rf '~' {BIN}/sweeper run {SPEC} -o '{tmp_path}/my run.zarr' " in text
    with pytest.raises(SweeperError, match="--sbatch-option: .*quote or backslash"):
        render_sbatch(SPEC, tmp_path / "s.zarr", 1, "10:00", extra=['--comment=say "hi"'])
    with pytest.raises(SweeperError, match="--launcher: cannot read"):
        render_sbatch(SPEC, tmp_path / "s.zarr", 1, "10:00", launcher="srun 'unclosed")
