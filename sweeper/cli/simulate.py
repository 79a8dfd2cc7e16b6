"""``sweeper simulate PATH [-o OUT]``: run one network file or PopNet config."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import click

from ..errors import SweeperError
from . import main


def write_rates_csv(result, out) -> None:
    """CSV with header ``t,<population names>``, one row per sample, floats as repr. A name with
    a comma or a double quote is quoted as CSV does it (RFC 4180)."""
    header = io.StringIO()
    csv.writer(header, lineterminator="").writerow(["t", *result.names])
    lines = [header.getvalue()]
    rates = result.rates
    for n, t in enumerate(result.t.tolist()):
        lines.append(",".join([repr(t)] + [repr(float(v)) for v in rates[:, n]]))
    out.write("\n".join(lines) + "\n")


@main.command("simulate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=None,
              help="where to write the rates (default: stdout for a network file; the config's "
                   "output.rates_file for a PopNet config)")
def simulate_cmd(path: Path, out: Path | None):
    """Simulate the network in PATH (a network file, or a PopNet config.json or its directory).

    For a network file the firing rates are written as CSV: a header ``t,<internal
    population names>`` and one row per time sample. For a PopNet config they are written
    in bmtk's rates-file format where the config says (or to -o).
    """
    from ..api import load_network, run_popnet, simulate
    from ..engine.warm import ensure_warm
    from ..io.formats import guess_format

    ensure_warm()  # a first run on this machine says that it compiles, and for how long

    config = path / "config.json" if path.is_dir() else path
    fmt = guess_format(config)
    if fmt is not None and fmt.name == "popnet":
        if out is not None:
            check_output_path(out)
        written = run_popnet(config, out=out)
        click.echo(f"wrote {written}", err=True)
        return
    if out is not None and str(out) != "-":
        check_output_path(out)
    result = simulate(load_network(config))
    if out is None or str(out) == "-":
        write_rates_csv(result, sys.stdout)
    else:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", encoding="utf-8") as fh:
                write_rates_csv(result, fh)
        except OSError as exc:
            raise SweeperError(f"cannot write the rates: {exc.strerror or exc}", str(out)) from None
        click.echo(f"wrote {out}", err=True)


def check_output_path(out: Path) -> None:
    """Refuse an output path that cannot be a file before any work is done."""
    if out.is_dir():
        raise SweeperError("is a directory; -o must name a file", str(out))
