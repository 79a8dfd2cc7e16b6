"""``sweeper simulate PATH``: one network, from a network file or a PopNet config.json."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import main


@main.command()
@click.argument("path", type=click.Path())
@click.option("-o", "--output", "out", type=click.Path(), default=None,
              help="Where to write the rates (default: stdout for a network file; the config's "
                   "output.rates_file for a PopNet config).")
def simulate(path, out):
    """Simulate one network: a sweeper network file (JSON/YAML) or a PopNet config.json.

    A network file gives CSV with header ``t,<internal populations>``; a PopNet config gives
    bmtk's rates file (``<population key> <t> <rate>``, no header).
    """
    from ..engine import simulate as run
    from ..io import is_popnet_config, load_network
    from ..io.netfile import read_text

    p = Path(path)
    if p.is_dir() and (p / "config.json").is_file():
        p = p / "config.json"
    if p.suffix == ".json" and is_popnet_config(read_text(p)):
        from ..io.popnet import run_popnet_config
        written = run_popnet_config(p, out)
        click.echo(f"wrote {written}", err=True)
        return
    net = load_network(p)
    result = run(net)
    lines = ["t," + ",".join(result.names)]
    for k, t in enumerate(result.t):
        lines.append(",".join([repr(float(t))] + [repr(float(r)) for r in result.rates[:, k]]))
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        click.echo(f"wrote {out}", err=True)
