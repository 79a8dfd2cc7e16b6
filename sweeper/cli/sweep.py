"""``sweeper expand | run | status | show | plot | export | metrics | unlock`` (``verify`` and
``repair``: cli/store.py)."""

from __future__ import annotations

import sys

import click
import numpy as np

from . import main
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
@click.option("--paths", "list_paths", is_flag=True,
              help="List the parameter paths the network offers (SPEC may also be a network file).")
def expand(spec, rows, list_paths):
    """Show how many points SPEC makes, the first rows and the output size; simulate nothing."""
    from ..sweep import Sweep, sizing
    from ..sweep.runner import time_axis

    if list_paths:
        from ..io.formats import guess_format
        from ..sweep.paths import offered_paths
        text = open(spec, errors="replace").read(65536)
        is_spec = any(line.split(":")[0] in ("parameters", "builder", "axes") for line in text.splitlines())
        if not is_spec and guess_format(spec) is not None:
            from ..io import load_network
            net = load_network(spec)
        else:
            net = Sweep.from_file(spec).base_network()
        for text, units in offered_paths(net):
            click.echo(f"{text:40s} {units or ''}".rstrip())
        return
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
    task = sizing.for_sweep(sweep, base, max(n, 1), len(t)).task_points  # as the store will be made
    click.echo(f"spec:        {spec}")
    click.echo(f"points:      {n}")
    click.echo(f"parameters:  {', '.join(sweep.parameter_names)}")
    click.echo(f"populations: {', '.join(base.recorded)}")
    click.echo(f"samples:     {len(t)} per trace (t = {t[0] if len(t) else 0:g} .. {t[-1] if len(t) else 0:g} s)")
    click.echo(f"output:      {_size(n * npop * len(t) * itemsize)} of traces ({sweep.output['dtype']}, "
               f"{-(-n // task)} tasks of {task} points)")
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
@click.option("--processes/--threads", default=None,
              help="Local workers as separate processes (isolates crashes; a few seconds to start) or as "
                   "threads of this process. Default: processes for a sweep of many cheap points "
                   "(cluster.local.auto-processes), else threads.")
@click.option("--retry-failed", is_flag=True, help="Also recompute points that failed before.")
@click.option("--accept-changed", is_flag=True,
              help="Extend or resume STORE although the builder, metric code or network files changed "
                   "since it was made (recorded in its history).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run(spec, store, cluster, scheduler, workers, jobs, queue, account, walltime, worker_lifetime, interface,
        processes, retry_failed, accept_changed, no_progress):
    """Run SPEC into STORE (resumes and extends an existing store of the same spec).

    SIGINT (Ctrl-C) or SIGTERM (Slurm's time limit) stops the run cleanly: exit status 130 / 143,
    the lock released, the store resumable; a second Ctrl-C exits at once.
    """
    from ..cluster import make_kind
    from .running import run_here, run_mpi, store_path

    store_path(store)
    if cluster == "mpi":
        summary = run_mpi(spec, store, interface=interface, retry_failed=retry_failed,
                          progress=not no_progress, accept_changed=accept_changed)
    else:
        kind = make_kind(cluster if scheduler is None else "local", scheduler=scheduler, n_workers=workers,
                         jobs=jobs, queue=queue, account=account, walltime=walltime,
                         worker_lifetime=worker_lifetime, interface=interface, processes=processes)
        summary = run_here(spec, store, kind, retry_failed=retry_failed, progress=not no_progress,
                           accept_changed=accept_changed)
    c = summary.counts
    click.echo(f"{store}: {c['done']} done, {c['failed']} failed, {c['pending']} pending "
               f"of {summary.points} points ({summary.computed} computed in {summary.seconds:.1f} s)")
    if getattr(summary, "adaptive", None):  # an adaptive sweep: where its learners stand
        from ..sweep.adaptive import goal_text
        click.echo(goal_text(summary.adaptive))
    if summary.failures:
        click.echo(f"{len(summary.failures)} point(s) failed in this run:", err=True)
        for index, pid, reason in summary.failures[:20]:
            click.echo(f"  point {index} ({pid}): {reason}", err=True)
        if len(summary.failures) > 20:
            click.echo(f"  ... and {len(summary.failures) - 20} more (see `sweeper status {store}`)", err=True)
    if summary.counts.get("failed", 0) and not retry_failed:
        click.echo(f"sweeper: {summary.counts['failed']} point(s) of {store} failed; after fixing the cause, "
                   "run the same command with --retry-failed to compute them again", err=True)
    if not summary.ok:
        sys.exit(1)


@main.command()
@click.argument("store", type=click.Path())
def status(store):
    """Counts of pending / done / failed points in STORE, and the failures."""
    from ..analysis import status_text
    from ..store import SweepStore
    from ..store.lock import describe, holder

    lock = holder(SweepStore.open(store).path)
    click.echo(status_text(store, describe(lock) if lock else None))


@main.command()
@click.argument("store", type=click.Path())
@click.option("-n", "--rows", default=20, show_default=True)
@click.option("--metric", default="mean_rate", show_default=True, help="Any metric in the store.")
@click.option("--spec/--no-spec", "with_spec", default=True, help="Print the spec too.")
@click.option("--history", is_flag=True, help="Print only the store's history: each run, its code and files.")
def show(store, rows, metric, with_spec, history):
    """The spec of STORE and a table of its points with their metrics."""
    import pandas as pd
    from ..analysis import points_frame
    from ..store import SweepStore

    if history:
        from ..sweep.provenance import history_text
        SweepStore.open(store)
        click.echo(history_text(store))
        return

    frame = points_frame(store, metric)
    if with_spec:
        click.echo(SweepStore.open(store).meta.get("spec", "").rstrip())
        click.echo("---")
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 60):
        click.echo(frame.head(rows).to_string(index=True))
    if len(frame) > rows:
        click.echo(f"... {len(frame) - rows} more points")


def _fixed(sel) -> dict:
    fixed = {}
    for item in sel:
        if "=" not in item:
            raise SweeperError(f"--sel expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        fixed[k] = v  # text: read as the coordinate's type when it is looked up (analysis.dataset.nearest)
    return fixed


@main.command()
@click.argument("store", type=click.Path())
@click.option("-o", "--output", "out", default=None, help="PNG file (default: STORE with .png).")
@click.option("-x", default=None, help="Parameter on the x axis.")
@click.option("-y", default=None, help="Parameter on the y axis (heatmap or scatter).")
@click.option("--metric", default="mean_rate", show_default=True,
              help="Any metric in the store (built-in or your own).")
@click.option("--population", default=None, help="Only this population.")
@click.option("--reduce", type=click.Choice(["mean", "max", "min"]), default=None,
              help="Reduce over the parameters that are on no axis (default: a panel per value).")
@click.option("--traces", is_flag=True, help="Plot rate traces instead of a metric.")
@click.option("--point", "points", type=int, multiple=True, help="Point index for --traces (repeatable).")
@click.option("--color-by", default=None, help="Parameter that colours the traces (--traces).")
@click.option("--sel", multiple=True, help="NAME=VALUE: fix a parameter (repeatable).")
def plot(store, out, x, y, metric, population, reduce, traces, points, color_by, sel):
    """A metric over the sweep (lines, heatmap, facets or scatter, by the sweep's shape), or
    rate traces of selected points, as PNG."""
    from ..analysis.plots import plot_metric, plot_traces

    fixed = _fixed(sel)
    out = out or str(store).rstrip("/").removesuffix(".zarr") + (".traces.png" if traces else ".png")
    if traces:
        path = plot_traces(store, out, points=list(points) or None, population=population, color_by=color_by,
                           **fixed)
    elif x is None and y is None and not fixed and _adaptive(store):  # sampled points and their map
        from ..analysis.adaptive_plot import plot_adaptive
        given = click.get_current_context().get_parameter_source("metric") != click.core.ParameterSource.DEFAULT
        path = plot_adaptive(store, out, metric=metric if given else None, population=population)  # default: its own
    else:
        path = plot_metric(store, out, x=x, y=y, metric=metric, population=population, reduce=reduce, **fixed)
    click.echo(f"wrote {path}")


def _adaptive(store) -> bool:
    from ..analysis.adaptive_plot import is_adaptive
    return is_adaptive(store)


@main.command()
@click.argument("store", type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="points.csv or points.parquet")
def export(store, out):
    """One row per point of STORE: parameters, status, error and every metric per population."""
    from ..analysis.export import export_points

    path, rows = export_points(store, out)
    click.echo(f"wrote {rows} points to {path}")


@main.command()
@click.argument("store", type=click.Path())
@click.option("--add", "add", multiple=True, metavar="NAME=MODULE:FUNCTION",
              help="Compute a metric of your own for every done point (repeatable).")
@click.option("--units", multiple=True, metavar="NAME=UNITS", help="Units of an added metric.")
@click.option("--recompute", is_flag=True, help="Compute every metric of STORE again from its traces.")
@click.option("--workers", type=int, default=None, help="Local workers (default: number of cores).")
@click.option("--spec", "spec", type=click.Path(dir_okay=False), default=None,
              help="The spec naming the store's own metrics (needed to --recompute them).")
def metrics(store, add, units, recompute, workers, spec):
    """Metrics of STORE: list them, add your own, or compute them again, from the stored traces
    (one Dask task per chunk; nothing is simulated again)."""
    from ..store import SweepStore

    if add or recompute:
        from ..cluster import connect
        from ..sweep.recompute import add_metrics

        for what, items in (("--add", add), ("--units", units)):
            for item in items:
                if "=" not in item:
                    raise SweeperError(f"{what} expects NAME=VALUE, got {item!r}")
        pairs = dict(item.split("=", 1) for item in add)
        with connect("local", n_workers=workers) as client:
            summary = add_metrics(store, pairs, recompute=recompute,
                                  units=dict(item.split("=", 1) for item in units), client=client, spec=spec)
        click.echo(f"{store}: computed {', '.join(summary.computed) or 'nothing'} "
                   f"({summary.chunks} chunks)")
        for index, reason in summary.failures[:20]:
            click.echo(f"  point {index}: {reason}", err=True)
        if summary.failures:
            sys.exit(1)
        return
    st = SweepStore.open(store)
    for var in st.variables:
        if var.metric:
            click.echo(f"{var.name:14s} {var.units or '-':4s} {var.long_name}")


@main.command()
@click.argument("store", type=click.Path())
def unlock(store):
    """Clear the writer lock of STORE (after a run that died)."""
    from ..store import SweepStore
    from ..store.lock import describe, is_stale, unlock as do_unlock

    SweepStore.open(store)
    info = do_unlock(store)
    if info is None:
        click.echo(f"{store} was not locked")
    else:
        state = "stale" if is_stale(info) else "possibly live"
        click.echo(f"removed the {state} lock of {describe(info)} from {store}")
