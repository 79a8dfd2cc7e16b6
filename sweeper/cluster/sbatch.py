"""One Slurm allocation for a whole sweep: render the sbatch script, submit it, wait for it.

The script runs ``sweeper run SPEC -o STORE --cluster mpi`` under ``srun``; it is rendered from
the one packaged template, ``sweeper/templates/sweep.sbatch.template``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from .. import config
from ..errors import SweeperError
from .durations import SLURM_TIME, seconds

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).parents[1] / "templates" / "sweep.sbatch.template"


def launchers() -> dict[str, str]:
    """Launcher names ``--launcher`` accepts and the command lines they stand for."""
    return dict(config.get("cluster.launchers"))


def _sweeper_executable() -> str:
    exe = Path(sys.executable).with_name("sweeper")
    return str(exe) if exe.exists() else (shutil.which("sweeper") or "sweeper")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN = re.compile(r"^[\w@%+=:,./~-]*$")  # needs no quotes in an #SBATCH line or a shell word


def safe(value, where: str) -> str:
    """``value`` as text, refused (SweeperError naming ``where``) if it holds a newline or another
    control character: rendered into a script, such a value would start a line of its own."""
    text = str(value)
    bad = _CONTROL.search(text)
    if bad:
        raise SweeperError(f"{text!r} contains the control character {bad.group()!r}; a value written "
                           "into the batch script must be one line of printable text", where)
    return text


def directive(value, where: str) -> str:
    """``value`` for an ``#SBATCH --option=VALUE`` line: checked, and double-quoted unless plain
    (sbatch reads quotes in these lines; a value with a quote or backslash of its own is refused)."""
    text = safe(value, where)
    if _PLAIN.match(text):
        return text
    if '"' in text or "\\" in text:
        raise SweeperError(f"{text!r}: a quote or backslash cannot be written into an #SBATCH line",
                           where)
    return f'"{text}"'


def word(value, where: str) -> str:
    """``value`` as one shell word of the script (checked, then quoted as needed)."""
    return shlex.quote(safe(value, where))


def command_line(text: str, where: str) -> str:
    """A command line of the user's own (``--launcher``): its words, each quoted, so it can hold
    options but never a second command (``;``, ``$(...)``, a newline)."""
    try:
        words = shlex.split(safe(text, where))
    except ValueError as exc:
        raise SweeperError(f"cannot read {text!r} as a command line: {exc}", where) from None
    if not words:
        raise SweeperError("is empty", where)
    return shlex.join(words)


def _check_sizes(nodes, ntasks_per_node, time) -> None:
    if int(nodes) < 1:
        raise SweeperError(f"must be at least 1, got {nodes}", "--nodes")
    if int(ntasks_per_node) < 1:
        raise SweeperError(f"must be at least 1, got {ntasks_per_node}", "--ntasks-per-node")
    if int(nodes) * int(ntasks_per_node) < 3:
        raise SweeperError(f"--nodes {nodes} x --ntasks-per-node {ntasks_per_node} gives "
                           f"{int(nodes) * int(ntasks_per_node)} MPI ranks; dask-mpi needs at least "
                           f"3 (scheduler, client, one worker)", "--ntasks-per-node")
    if not SLURM_TIME.match(safe(time, "--time").strip()):
        raise SweeperError(f"{time!r} is not a Slurm time limit (HH:MM:SS, MM:SS or D-HH:MM:SS)",
                           "--time")


def _directives(partition, account, extra: Sequence[str]) -> list[str]:
    directives = [f"--partition={directive(partition, '--partition')}"] if partition else []
    directives += [f"--account={directive(account, '--account')}"] if account else []
    for option in extra:
        option = safe(option, "--sbatch-option").strip()
        name, eq, value = option.partition("=")
        if not option.startswith("-") or not re.match(r"^--?[A-Za-z][\w-]*$", name):
            raise SweeperError(f"{option!r} is not an sbatch option (like --mem-per-cpu=2G)",
                               "--sbatch-option")
        directives.append(f"{name}={directive(value, '--sbatch-option')}" if eq else name)
    return directives


def render_sbatch(spec: str | os.PathLike, store: str | os.PathLike, nodes: int, time: str, *,
                  partition: str | None = None, account: str | None = None,
                  ntasks_per_node: int = 4, launcher: str = "srun",
                  extra: Sequence[str] = (), run_args: Sequence[str] = (),
                  output: str | os.PathLike | None = None, job_name: str | None = None,
                  workdir: str | os.PathLike | None = None,
                  template: str | os.PathLike | None = None) -> str:
    """The sbatch script that runs ``sweeper run SPEC -o STORE --cluster mpi`` in one allocation.

    ``extra`` are additional ``#SBATCH`` options (e.g. ``"--mem-per-cpu=2G"``); ``run_args`` are
    passed on to ``sweeper run``; ``launcher`` is a name in ``cluster.launchers`` ("srun" is
    ``srun --mpi=pmi2``, "mpiexec") or a command line of your own. Paths become absolute so the
    job runs from anywhere.
    """
    _check_sizes(nodes, ntasks_per_node, time)
    spec = Path(safe(spec, "SPEC")).resolve()
    store = Path(safe(store, "-o")).resolve()
    workdir = Path(safe(workdir, "the job's folder")).resolve() if workdir else Path.cwd()
    output = (Path(safe(output, "--log")).resolve() if output
              else store.with_name(f"{store.stem}-slurm-%j.out"))
    directives = _directives(partition, account, extra)
    values = {
        "job_name": directive(job_name or f"sweeper-{store.stem}", "--job-name" if job_name else "-o"),
        "nodes": str(int(nodes)),
        "ntasks_per_node": str(int(ntasks_per_node)),
        "time": str(time).strip(),
        "output": directive(output, "--log" if output else "-o"),
        "workdir": directive(workdir, "the current folder"),
        "stop_lead": str(_stop_lead(time)),
        "directives": "\n".join(f"#SBATCH {d}" for d in directives),
        "bindir": word(Path(sys.executable).parent, "the Python environment's folder"),
        "launcher": command_line(launchers().get(launcher, launcher), "--launcher"),
        "sweeper": word(_sweeper_executable(), "the sweeper program"),
        "spec": word(spec, "SPEC"),
        "store": word(store, "-o"),
        "run_args": " ".join(word(a, "option passed to sweeper run") for a in run_args),
    }
    return fill_template(Path(template or TEMPLATE), values)


def _stop_lead(time: str) -> int:
    """Seconds before the time limit at which Slurm signals the sweep: ``cluster.sbatch.stop-lead``,
    at most a quarter of the time limit."""
    lead = seconds(config.get("cluster.sbatch.stop-lead"), "cluster.sbatch.stop-lead")
    return max(1, int(min(lead, seconds(str(time).strip(), "--time") / 4)))


def fill_template(path: Path, values: dict[str, str]) -> str:
    """``path``'s text with each ``{{ key }}`` replaced; a field alone on its line that renders
    empty takes the line with it; an unknown field is an error naming the template."""
    text = path.read_text()

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise SweeperError(f"unknown placeholder {{{{{key}}}}}", str(path))
        return values[key]

    for key in [key for key, value in values.items() if not value]:
        text = re.sub(r"^\{\{\s*%s\s*\}\}\n" % key, "", text, flags=re.M)
        text = re.sub(r" \{\{\s*%s\s*\}\}(?= )" % key, "", text)  # nor a double space
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", fill, text)
    return re.sub(r" +\n", "\n", text)


def submit(spec, store, nodes: int, time: str, **options) -> str:
    """Render the sbatch script (see :func:`render_sbatch`), submit it, return the job id."""
    script = render_sbatch(spec, store, nodes, time, **options)  # every value checked first
    if shutil.which("sbatch") is None:
        raise SweeperError("sbatch not found on PATH; submit from a Slurm login node, or print "
                           "the script with --dry-run", "sweeper submit")
    output = re.search(r"^#SBATCH --output=(.*)$", script, re.M)
    if output:  # Slurm does not create the folder; the job would fail without a trace
        Path(output.group(1).strip('"')).parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["sbatch", "--parsable"], input=script, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise SweeperError(f"sbatch refused the job: {done.stderr.strip() or done.stdout.strip()}",
                           "sweeper submit")
    return done.stdout.strip().split(";")[0]


def job_state(job_id: str) -> str | None:
    """The job's state as squeue reports it (PENDING, RUNNING, ...), or None once it has left."""
    done = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], text=True,
                          capture_output=True)
    state = done.stdout.strip()
    return state or None


def wait_job(job_id: str, timeout: float | None = None, poll: float = 0.5) -> int:
    """Wait for a Slurm job to end; return its exit status (128 + signal if it was killed).

    Polls squeue, which answers sooner than ``sbatch --wait``. On timeout the job is cancelled
    and SweeperError raised.
    """
    start = time.monotonic()
    while job_state(job_id) is not None:
        if timeout is not None and time.monotonic() - start > timeout:
            subprocess.run(["scancel", str(job_id)], capture_output=True)
            raise SweeperError(f"job {job_id} still running after {timeout:g} s; cancelled it",
                               "sweeper submit --wait")
        time.sleep(poll)
    shown = subprocess.run(["scontrol", "show", "job", str(job_id)], text=True,
                           capture_output=True).stdout
    match = re.search(r"\bExitCode=(\d+):(\d+)", shown)
    if not match:
        raise SweeperError(f"cannot find the exit status of job {job_id} (scontrol keeps it "
                           f"only for MinJobAge seconds)", "sweeper submit --wait")
    code, signal = int(match.group(1)), int(match.group(2))
    return code if code or not signal else 128 + signal
