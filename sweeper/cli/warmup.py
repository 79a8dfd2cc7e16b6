"""``sweeper warmup``: compile the engine's kernels now and keep them on disk.

The first simulation on a machine otherwise waits for numba to compile (tens of seconds); after
this command every process (a sweep's workers too) loads the kernels from the on-disk cache.
``make install`` runs it.
"""

from __future__ import annotations

import click

from . import main


@main.command("warmup")
def warmup_cmd():
    """Compile the engine's kernels once (cached on disk for every later run)."""
    from ..engine.warm import ensure_warm, warmup

    if ensure_warm(say=lambda line: click.echo(line, err=True)) is None:
        seconds = warmup()
        click.echo(f"sweeper: the engine is compiled already (loaded in {seconds:.1f} s)", err=True)
