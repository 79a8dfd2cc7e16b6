"""The ``sweeper`` command line. Each submodule registers its commands on :data:`main`."""

from __future__ import annotations

import sys

import click

from ..errors import SweeperError


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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeper")
def main():
    """Sweep population-density (DiPDE/PopNet) network models over parameters on Dask."""


# Registration happens on import; keep these imports at the end.
for _optional in ("simulate", "sweep", "cluster"):
    try:
        __import__(f"{__name__}.{_optional}")
    except ModuleNotFoundError as _exc:  # module not written yet in this checkout
        if _exc.name != f"{__name__}.{_optional}":
            raise
