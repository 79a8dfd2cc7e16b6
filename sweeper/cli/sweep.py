"""``sweeper expand | run | status | show | plot | unlock``."""

from __future__ import annotations

import logging
import sys

import click
import numpy as np

from . import main, quiet_dask
from ..cluster.kinds import CHOICES as CLUSTER_KINDS
from ..errors import SweeperError


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def _table(columns: dict, rows: int) -> str:
    names = list(columns)
    body = [[_cell(columns[n][i]) for n in names] for i in range(rows)]
    widths = [max([len(n)] + [len(r[j]) for r in body]) for j, n in enumerate(names)]
    lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in body]
    return "\n".join(lines)


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1024 or unit == "TB":
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1024


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-n", "--rows", default=10, show_default=True, help="How many points to show.")
def expand(spec, rows):
    """Show how many points SPEC makes, the first rows and the output size; simulate nothing."""
    from ..sweep import Sweep
    from ..sweep.runner import time_axis

    sweep = Sweep.from_file(spec)
    if sweep.adaptive is not None:  # no fixed points: say what the learners will do
        from ..sweep.adaptive import describe_text
        click.echo(f"spec:        {spec}\n" + describe_text(sweep))
        return
    table = sweep.points()
    n = len(next(iter(table.values()))) if table else 0
    base = sweep.base_network()
    t = time_axis(sweep, table) if n else np.zeros(0)
    itemsize = 4 if sweep.output["dtype"] == "float32" else 8
    npop = len(base.recorded)
    click.echo(f"spec:        {spec}")
    click.echo(f"points:      {n}")
    click.echo(f"parameters:  {', '.join(sweep.parameter_names)}")
    click.echo(f"populations: {', '.join(base.recorded)}")
    click.echo(f"samples:     {len(t)} per trace (t = {t[0] if len(t) else 0:g} .. {t[-1] if len(t) else 0:g} s)")
    click.echo(f"output:      {_size(n * npop * len(t) * itemsize)} of traces ({sweep.output['dtype']}, "
               f"{-(-n // sweep.output['chunk_points'])} chunks of {sweep.output['chunk_points']} points)")
    if n:
        click.echo("")
        click.echo(_table(table, min(rows, n)))
        if n > rows:
            click.echo(f"... {n - rows} more")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "store", required=True, type=click.Path(), help="The Zarr store to write.")
@click.option("--cluster", type=click.Choice(CLUSTER_KINDS), default="local", show_default=True)
@click.option("--scheduler", default=None, help="Join a running Dask scheduler at this address.")
@click.option("--workers", type=int, default=None, help="Local workers (default: number of cores).")
@click.option("--jobs", type=int, default=None, help="SLURM worker jobs (--cluster slurm).")
@click.option("--queue", "--partition", "queue", default=None, help="SLURM partition (--cluster slurm).")
@click.option("--account", default=None, help="SLURM account (--cluster slurm).")
@click.option("--walltime", default=None, help="SLURM worker job walltime HH:MM:SS (--cluster slurm).")
@click.option("--worker-lifetime", default=None,
              help="SLURM workers retire after this long, e.g. 50m (default: walltime minus 10%).")
@click.option("--interface", default=None, help="Network interface for Dask (e.g. lo, ib0).")
@click.option("--processes", is_flag=True,
              help="Local workers as separate processes (isolates crashes and slow Python builders; "
                   "slower start). Default: threads of this process.")
@click.option("--retry-failed", is_flag=True, help="Also recompute points that failed before.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run(spec, store, cluster, scheduler, workers, jobs, queue, account, walltime, worker_lifetime, interface,
        processes, retry_failed, no_progress):
    """Run SPEC into STORE (resumes and extends an existing store of the same spec)."""
    from ..cluster import connect
    from ..sweep import Sweep, run_sweep
    from ..sweep.runner import prepare_store, writer_lock

    if cluster == "mpi":
        quiet_dask()  # the ranks close each other's connections at shutdown: noise, not news
        # every MPI rank runs this; only the client rank returns from connect()
        with connect("mpi", interface=interface) as client:
            summary = run_sweep(Sweep.from_file(spec), store, client=client, retry_failed=retry_failed,
                                progress=not no_progress)
    else:
        # spec, lock and store errors before any cluster starts
        sweep = Sweep.from_file(spec)
        try:
            with writer_lock(store):
                prepared = prepare_store(sweep, store)
                with connect(cluster if scheduler is None else "local", scheduler=scheduler, n_workers=workers,
                             jobs=jobs, queue=queue, account=account, walltime=walltime,
                             worker_lifetime=worker_lifetime, interface=interface,
                             processes=processes) as client:
                    try:
                        summary = run_sweep(sweep, store, client=client, retry_failed=retry_failed,
                                            progress=not no_progress, lock=False, prepared=prepared)
                    except KeyboardInterrupt:
                        quiet_dask(logging.CRITICAL)  # the cancelled tasks' warnings while the cluster closes
                        raise
        except KeyboardInterrupt:
            from ..store import SweepStore
            c = SweepStore.open(store).counts()
            click.echo(f"sweeper: interrupted; {store} keeps {c['done']} done and {c['failed']} failed points "
                       f"({c['pending']} pending): run the same command again to resume", err=True)
            sys.exit(130)
    c = summary.counts
    click.echo(f"{store}: {c['done']} done, {c['failed']} failed, {c['pending']} pending "
               f"of {summary.points} points ({summary.computed} computed in {summary.seconds:.1f} s)")
    if summary.failures:
        click.echo(f"{len(summary.failures)} point(s) failed in this run:", err=True)
        for index, pid, reason in summary.failures[:20]:
            click.echo(f"  point {index} ({pid}): {reason}", err=True)
        if len(summary.failures) > 20:
            click.echo(f"  ... and {len(summary.failures) - 20} more (see `sweeper status {store}`)", err=True)
    if not summary.ok:
        sys.exit(1)


@main.command()
@click.argument("store", type=click.Path())
def status(store):
    """Counts of pending / done / failed points in STORE, and the failures."""
    from ..analysis import status_text
    click.echo(status_text(store))


@main.command()
@click.argument("store", type=click.Path())
@click.option("-n", "--rows", default=20, show_default=True)
@click.option("--metric", type=click.Choice(["mean_rate", "final_rate"]), default="mean_rate", show_default=True)
@click.option("--spec/--no-spec", "with_spec", default=True, help="Print the spec too.")
def show(store, rows, metric, with_spec):
    """The spec of STORE and a table of its points with their metrics."""
    import pandas as pd
    from ..analysis import points_frame
    from ..store import SweepStore

    if with_spec:
        click.echo(SweepStore.open(store).meta.get("spec", "").rstrip())
        click.echo("---")
    frame = points_frame(store, metric)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 60):
        click.echo(frame.head(rows).to_string(index=True))
    if len(frame) > rows:
        click.echo(f"... {len(frame) - rows} more points")


@main.command()
@click.argument("store", type=click.Path())
@click.option("-o", "--output", "out", default=None, help="PNG file (default: STORE with .png).")
@click.option("-x", default=None, help="Parameter on the x axis (heatmap).")
@click.option("-y", default=None, help="Parameter on the y axis (heatmap).")
@click.option("--metric", type=click.Choice(["mean_rate", "final_rate"]), default="mean_rate", show_default=True)
@click.option("--population", default=None, help="Only this population.")
@click.option("--traces", is_flag=True, help="Plot rate traces instead of a heatmap.")
@click.option("--point", "points", type=int, multiple=True, help="Point index for --traces (repeatable).")
@click.option("--sel", multiple=True, help="NAME=VALUE: fix a parameter (heatmap) or pick points (traces).")
def plot(store, out, x, y, metric, population, traces, points, sel):
    """A heatmap of a metric over two parameters, or rate traces of selected points, as PNG."""
    from ..analysis import plot_heatmap, plot_traces

    fixed = {}
    for item in sel:
        if "=" not in item:
            raise SweeperError(f"--sel expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            fixed[k] = float(v)
        except ValueError:
            fixed[k] = v
    out = out or str(store).rstrip("/").removesuffix(".zarr") + (".traces.png" if traces else ".png")
    if traces:
        path = plot_traces(store, out, points=list(points) or None, population=population, **fixed)
    elif x is None and y is None and not fixed and _adaptive(store):  # sampled points and their map
        from ..adaptive_plot import plot_adaptive
        path = plot_adaptive(store, out, metric=metric, population=population)
    else:
        path = plot_heatmap(store, out, x=x, y=y, metric=metric, population=population, **fixed)
    click.echo(f"wrote {path}")


def _adaptive(store) -> bool:
    from ..adaptive_plot import is_adaptive
    return is_adaptive(store)


@main.command()
@click.argument("store", type=click.Path())
def unlock(store):
    """Clear the writer lock of STORE (after a run that died)."""
    from ..store import SweepStore
    from ..sweep.lock import describe, is_stale, unlock as do_unlock

    SweepStore.open(store)
    info = do_unlock(store)
    if info is None:
        click.echo(f"{store} was not locked")
    else:
        state = "stale" if is_stale(info) else "possibly live"
        click.echo(f"removed the {state} lock of {describe(info)} from {store}")


@main.command()
@click.argument("store", type=click.Path())
@click.option("--no-spec", is_flag=True, help="Skip comparing the coordinates with the spec.")
def verify(store, no_spec):
    """Check STORE: done points have finite traces matching their metrics; coordinates match the spec."""
    from ..verify import verify_store

    problems = verify_store(store, check_spec=not no_spec)
    if problems:
        for p in problems[:50]:
            click.echo(f"{store}: {p}", err=True)
        if len(problems) > 50:
            click.echo(f"... and {len(problems) - 50} more", err=True)
        click.echo(f"{store}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{store}: OK")
