"""What every cluster kind shares: the options a run passes, and the small interface a kind fills in."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence


@dataclass(frozen=True)
class Options:
    """Everything ``connect`` accepts; each kind reads the fields it needs and ignores the rest."""

    scheduler: str | None = None
    n_workers: int | None = None
    threads_per_worker: int = 1
    jobs: int | None = None
    queue: str | None = None
    account: str | None = None
    walltime: str | None = None
    worker_lifetime: str | float | None = None
    interface: str | None = None
    local_directory: str | None = None
    job_extra: Sequence[str] | None = None
    memory: str | None = None
    log_directory: str | None = None
    processes: bool | None = False  # local workers as processes; None: `sweeper run` chooses


class ClusterKind:
    """One way of getting Dask workers for a sweep. Subclasses set only what differs.

    - ``name``: the value of ``sweeper run --cluster`` (and of ``connect(kind)``).
    - ``option``: the command-line option that selects the kind, for error messages.
    - ``choosable``: offered by ``--cluster`` (False for a kind selected by another option).
    - :meth:`check`: refuse mistakes before anything starts (no job submitted, no process spawned).
    - :meth:`target` and :meth:`arguments`: the Dask callable this kind makes its cluster or
      client with, and the keyword arguments it passes; tests read them without starting anything.
    - :meth:`job_script`: a script the kind generates (Slurm worker jobs), or None.
    - :meth:`start`: a context manager yielding ``(client, what)``, ``what`` being the text that
      ``connect`` announces ("local cluster, 4 worker threads"); it tears everything down after.
    """

    name = ""
    option = "--cluster"
    choosable = True

    def __init__(self, options: Options):
        self.options = options

    @property
    def where(self) -> str:
        """How error messages name this kind ("--cluster slurm")."""
        return f"{self.option} {self.name}" if self.option == "--cluster" else self.option

    def check(self) -> None:
        """Raise SweeperError for a mistake in the options or a missing tool (default: none)."""

    def target(self) -> Callable:
        raise NotImplementedError

    def arguments(self) -> dict:
        raise NotImplementedError

    def job_script(self) -> str | None:
        return None

    @contextlib.contextmanager
    def start(self) -> Iterator[tuple[object, str]]:
        raise NotImplementedError
        yield  # pragma: no cover
