"""Conformance tests over the table of cluster kinds (sweeper.cluster.KINDS), nothing started.

Every kind: its name is its key, its arguments fit the Dask callable it passes them to, its
mistakes are reported before anything starts and name its option, runtime defaults come from the
``cluster:`` section of sweeper.yaml and explicit options win, and the scripts it generates can be
read without starting a cluster.
"""

import inspect
import sys

import pytest
from click.testing import CliRunner

from sweeper import config
from sweeper.cli import main
from sweeper.cluster import CHOICES, KINDS, ClusterKind, make_kind
from sweeper.errors import SweeperError

# options to build each kind with; a kind added to the table needs an entry here
EXAMPLES = {
    "local": {"n_workers": 3, "processes": True},
    "scheduler": {"scheduler": "tcp://127.0.0.1:8786"},
    "mpi": {"interface": "lo"},
    "slurm": {"jobs": 4, "walltime": "00:20:00", "queue": "debug", "job_extra": ["--qos=low"]},
}


def build(name, **extra) -> ClusterKind:
    return KINDS[name](make_kind(name if name != "scheduler" else "local",
                                 **{**EXAMPLES[name], **extra}).options)


def test_every_kind_has_an_example_and_its_name_is_its_key():
    assert set(EXAMPLES) == set(KINDS)
    for name, cls in KINDS.items():
        assert issubclass(cls, ClusterKind) and cls.name == name


def test_run_offers_exactly_the_choosable_kinds():
    assert CHOICES == ("local", "mpi", "slurm")
    shown = CliRunner().invoke(main, ["run", "--help"]).output
    assert "[local|mpi|slurm]" in shown


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_arguments_fit_the_target(name):
    kind = build(name)
    args = kind.arguments()
    assert isinstance(args, dict) and args
    inspect.signature(kind.target()).bind_partial(**args)  # TypeError if a keyword does not fit


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_job_script_is_text_or_none(name):
    script = build(name).job_script()
    assert script is None or (isinstance(script, str) and script.startswith("#!"))


def test_local_kind_arguments():
    assert build("local").arguments() == {"n_workers": 3, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": ":0", "local_directory": None}
    from dask.system import CPU_COUNT
    assert KINDS["local"](make_kind().options).arguments()["n_workers"] == CPU_COUNT


def test_scheduler_kind_is_chosen_by_the_address_and_needs_one():
    assert type(make_kind("local", scheduler="tcp://h:1")).__name__ == "SchedulerAddress"
    assert build("scheduler").arguments() == {"address": "tcp://127.0.0.1:8786"}
    with pytest.raises(SweeperError, match="^--scheduler: needs the address"):
        KINDS["scheduler"](make_kind().options).check()


def test_mpi_kind_arguments():
    assert build("mpi").arguments() == {"interface": "lo", "nthreads": 1, "local_directory": None,
                                        "dashboard_address": ":0"}


def test_slurm_worker_job_script_carries_the_options():
    script = build("slurm").job_script(scheduler="tcp://10.0.0.1:8786")
    lines = script.splitlines()
    assert "#SBATCH -J sweeper-worker" in lines and "#SBATCH -t 00:20:00" in lines
    assert "#SBATCH -p debug" in lines and "#SBATCH --qos=low" in lines
    assert f"{sys.executable} -m distributed.cli.dask_worker tcp://10.0.0.1:8786" in script
    assert "--lifetime 1080s --lifetime-stagger 60s" in script
    assert build("slurm").jobs() == 4


def test_slurm_option_mistakes_come_before_looking_for_slurm():
    kind = build("slurm", walltime="00:10:00", worker_lifetime="20m")
    with pytest.raises(SweeperError, match="^--worker-lifetime: worker lifetime '20m' must be"):
        kind.check()


def test_runtime_defaults_come_from_the_cluster_section_and_explicit_options_win(monkeypatch):
    defaults = config.defaults()["cluster"]
    kind = KINDS["slurm"](make_kind("slurm").options)
    assert kind.jobs() == defaults["slurm"]["jobs"]
    import dask
    with dask.config.set({"jobqueue.slurm": {}}):  # no site settings: sweeper's defaults apply
        args = kind.arguments()
        assert args["walltime"] == defaults["slurm"]["walltime"] and args["memory"] == defaults["slurm"]["memory"]
        monkeypatch.setenv("SWEEPER__CLUSTER__SLURM__WALLTIME", "02:00:00")
        monkeypatch.setenv("SWEEPER__CLUSTER__SLURM__JOBS", "7")
        assert kind.arguments()["walltime"] == "02:00:00" and kind.jobs() == 7
        assert build("slurm").arguments()["walltime"] == "00:20:00" and build("slurm").jobs() == 4
        monkeypatch.setenv("SWEEPER__CLUSTER__WORKER_LIFETIME__MAX_MARGIN", "5m")
        assert "--lifetime 6900s" in " ".join(kind.arguments()["worker_extra_args"])


def test_unknown_and_incompatible_kinds_are_refused_naming_the_choices():
    with pytest.raises(SweeperError, match="unknown cluster kind 'cloud'; choose one of local, mpi, slurm"):
        make_kind("cloud")
    with pytest.raises(SweeperError, match="cannot be combined with --cluster slurm"):
        make_kind("slurm", scheduler="tcp://h:1")


@pytest.mark.parametrize("name", ["mpi", "slurm"])
def test_errors_name_the_kind(name):
    kind = build(name)
    assert kind.where == f"--cluster {name}"
