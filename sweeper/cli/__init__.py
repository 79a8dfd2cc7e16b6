"""The ``sweeper`` command line. Each submodule registers its commands on :data:`main`.

The library reports through the ``sweeper`` logger; importing the CLI shows those messages on
stderr as bare lines (INFO and up), so the user sees the same text whichever layer wrote it.
"""

from __future__ import annotations

import logging
import sys

import click

from ..errors import SweeperError


def quiet_dask(level: int = logging.WARNING) -> None:
    """Hide Dask's routine messages (connections closing while a cluster shuts down)."""
    names = [n for n in list(logging.root.manager.loggerDict)
             if n.split(".")[0] in ("distributed", "tornado")]  # Dask sets some children's levels
    for name in {"distributed", "tornado", *names}:
        logging.getLogger(name).setLevel(level)


class _Group(click.Group):
    """Turns SweeperError (a user mistake) into one line on stderr and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SweeperError as exc:
            click.echo(f"sweeper: error: {exc}", err=True)
            sys.exit(2)
        except FileNotFoundError as exc:
            click.echo(f"sweeper: error: {exc.filename or exc}: file not found", err=True)
            sys.exit(2)
        except OSError as exc:  # read-only or full file system, no permission, ...
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"sweeper: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (click's test runner swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _show_library_log() -> None:
    """The library's log lines (logger ``sweeper``) on stderr as plain text, once."""
    logger = logging.getLogger("sweeper")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="popnet-sweeper")
def main():
    """Sweep population-density (DiPDE/PopNet) network models over parameters on Dask."""
    _show_library_log()


# Registration happens on import; keep these imports at the end.
from . import simulate, store, submit, sweep, warmup  # noqa: E402,F401
