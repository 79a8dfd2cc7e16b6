"""``sweeper submit``: run a sweep as one Slurm allocation (dask-mpi under srun)."""

from __future__ import annotations

import sys

import click

from . import main


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "store", required=True, type=click.Path(),
              help="The Zarr store the job writes (resumed if it exists).")
@click.option("--nodes", type=int, default=1, show_default=True, help="Nodes to allocate.")
@click.option("--time", "time_limit", required=True, help="Wall-time limit, HH:MM:SS or D-HH:MM:SS.")
@click.option("--partition", default=None, help="Slurm partition.")
@click.option("--account", default=None, help="Slurm account to charge.")
@click.option("--ntasks-per-node", type=int, default=4, show_default=True,
              help="MPI ranks per node; two of all the ranks are the scheduler and the client.")
@click.option("--launcher", default="srun", show_default=True,
              help="'srun' (srun --mpi=pmi2), 'mpiexec', or a command line of your own.")
@click.option("--interface", default=None,
              help="Network interface for Dask inside the job (e.g. ib0; default: the host's).")
@click.option("--retry-failed", is_flag=True, help="Also recompute points that failed before.")
@click.option("--accept-changed", is_flag=True,
              help="Let the job extend or resume STORE although its code or network files changed.")
@click.option("--sbatch-option", "extra", multiple=True, metavar="OPTION",
              help="Extra #SBATCH line, e.g. --sbatch-option=--mem-per-cpu=2G (repeatable).")
@click.option("--log", "log_file", default=None, type=click.Path(),
              help="Job output file (default: STORE's name with -slurm-JOBID.out, next to it).")
@click.option("--template", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Your own edited copy of the packaged template sweeper/templates/sweep.sbatch.template "
                   "(print it filled in with --dry-run).")
@click.option("--dry-run", is_flag=True, help="Print the sbatch script; submit nothing.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit with its exit status.")
@click.option("--timeout", type=float, default=None,
              help="With --wait: cancel the job after this many seconds.")
def submit(spec, store, nodes, time_limit, partition, account, ntasks_per_node, launcher, interface,
           retry_failed, accept_changed, extra, log_file, template, dry_run, wait, timeout):
    """Submit SPEC as one Slurm job that runs `sweeper run SPEC -o STORE --cluster mpi`.

    Prints the job id. Watch progress with `sweeper status STORE` from the login node; if the job
    runs out of time, submit the same command again and it computes only the missing points.
    """
    from .. import cluster
    from ..cluster.sbatch import safe
    from ..sweep import Sweep

    sweep = Sweep.from_file(spec)  # spec errors now, not in the job's log
    if interface:
        safe(interface, "--interface")
    if not accept_changed and not dry_run:  # and a store made with other code or files
        from ..sweep.provenance import refuse_changed
        refuse_changed(store, sweep)
    run_args = (["--interface", interface] if interface else []) + (
        ["--retry-failed"] if retry_failed else []) + (["--accept-changed"] if accept_changed else [])
    options = dict(partition=partition, account=account, ntasks_per_node=ntasks_per_node,
                   launcher=launcher, extra=extra, run_args=run_args, output=log_file,
                   template=template)
    if dry_run:
        click.echo(cluster.render_sbatch(spec, store, nodes, time_limit, **options), nl=False)
        return
    job = cluster.submit(spec, store, nodes, time_limit, **options)
    click.echo(job)
    click.echo(f"submitted job {job}; follow it with: sweeper status {store}", err=True)
    if wait:
        code = cluster.wait_job(job, timeout=timeout)
        click.echo(f"job {job} ended with exit status {code}", err=True)
        sys.exit(code)
