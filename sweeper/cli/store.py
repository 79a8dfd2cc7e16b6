"""``sweeper verify | repair``: prove what a store holds, and make damaged points recomputable."""

from __future__ import annotations

import sys

import click

from . import main


def _recompute(value):
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number or 'all', got {value!r}") from None


def _client_for(scheduler, workers, recompute):
    from contextlib import nullcontext
    if recompute is None:
        return nullcontext(None)
    from ..cluster import connect
    return connect("local", scheduler=scheduler, n_workers=workers)


def _print_problems(store, lines) -> None:
    for p in lines[:50]:
        click.echo(f"{store}: {p}", err=True)
    if len(lines) > 50:
        click.echo(f"... and {len(lines) - 50} more", err=True)


@main.command()
@click.argument("store", type=click.Path())
@click.option("--spec", "spec", type=click.Path(dir_okay=False), default=None,
              help="The spec that made STORE: also check the time axis and populations, and allow --recompute.")
@click.option("--no-spec", is_flag=True, help="Skip comparing the coordinates with a spec.")
@click.option("--recompute", default=None, metavar="N|all",
              help="Simulate N random done points (or all) again; traces must be bit-identical.")
@click.option("--seed", type=int, default=None, help="Seed of the --recompute choice.")
@click.option("--scheduler", default=None, help="Dask scheduler for --recompute (default: a local cluster).")
@click.option("--workers", type=int, default=None, help="Local workers for --recompute.")
def verify(store, spec, no_spec, recompute, seed, scheduler, workers):
    """Check STORE: every chunk decodes; done points have finite traces matching their metrics;
    ids match coordinates; coordinates match the spec. Nothing named in STORE is run."""
    from ..integrity import verify as do_verify

    recompute = _recompute(recompute)
    with _client_for(scheduler, workers, recompute) as client:
        report = do_verify(store, check_spec=not no_spec, spec=spec, recompute=recompute, client=client, seed=seed)
    if report:
        _print_problems(store, report.lines)
        if report.damaged:
            click.echo(f"{store}: {len(report.damaged)} damaged point(s): `sweeper repair {store}` makes them "
                       "pending, the next `sweeper run` recomputes them", err=True)
        click.echo(f"{store}: {len(report.lines)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{store}: OK")


@main.command()
@click.argument("store", type=click.Path())
@click.option("--spec", "spec", type=click.Path(dir_okay=False), default=None,
              help="The spec that made STORE: also rebuild lost coordinates and the time axis from it.")
@click.option("--dry-run", is_flag=True, help="Only list what would be repaired.")
def repair(store, spec, dry_run):
    """Mark every point of STORE that `verify` finds damaged as pending (nothing else changes),
    so the next `sweeper run` recomputes exactly those; rebuild lost point ids."""
    from contextlib import nullcontext
    from ..integrity.repair import repair_store
    from ..store import SweepStore
    from ..sweep.runner import writer_lock

    SweepStore.open(store)  # a clear error for something that is not a store, before any lock
    with nullcontext() if dry_run else writer_lock(store):
        plan = repair_store(store, spec=spec, dry_run=dry_run)
    from ..sweep.resume import readable
    ids = (readable(SweepStore.open(store).point_ids) if plan.pending else None)
    ids = [] if ids is None else ids
    verb = "would mark" if dry_run else "marked"
    for i in plan.pending:
        click.echo(f"point {i} ({ids[i] if i < len(ids) else '?'}): {'; '.join(plan.report.points[i])}")
    for line in plan.rebuilt:
        click.echo(f"{store}: {line}")
    others = [line for line in plan.report.structure]
    if dry_run:
        for line in others:
            click.echo(f"{store}: {line}")
    click.echo(f"{store}: {verb} {len(plan.pending)} damaged point(s) pending"
               + ("" if dry_run or not plan.pending else "; `sweeper run SPEC -o STORE` recomputes them"))
