"""End-to-end sweep benchmark: `sweeper run` on a local cluster against the engine alone,
and the peak memory of a worker against the batch size. Writes docs/sweep_e2e.md.

Usage: python benchmarks/sweep_e2e.py [--points 1000] [--workers 2] [--out docs/sweep_e2e.md]

1. Engine only: every point of a tutorial weight grid (bmtk PopNet tutorial, tf 1.5 s) is
   built and simulated in this process, one thread, in the same batches a worker would use.
2. `sweeper run` (the CLI, a fresh local cluster with --workers workers) on the same spec;
   wall time from process start to exit, so it includes starting Dask, importing and loading
   the compiled kernels, and writing the Zarr store. Target (issue 5):
   wall <= 1.25 * engine / workers.
3. Worker memory: the same network swept at a short tf with three sweep sizes and two chunk
   (batch) sizes, each on a fresh local cluster of worker processes through the Python API;
   the peak RSS of each worker (ru_maxrss) is read at the end. Bounded by the batch size, not
   the sweep size, means: flat across sweep sizes at one chunk size.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NETWORK = ROOT / "jobs" / "networks" / "popnet_tutorial" / "config.json"


def spec_text(points: int, chunk: int, tf: float | None = None) -> str:
    """A w_ei x w_ie grid with about ``points`` points on the PopNet tutorial network."""
    n_ei = max(1, round(math.sqrt(points * 1.6)))
    n_ie = max(1, points // n_ei)
    sim = "" if tf is None else f"simulation: {{tf: {tf}}}\n"
    return f"""name: e2e_{n_ei}x{n_ie}
network: {NETWORK}
{sim}parameters:
  w_ei: {{path: "connections[excitatory->inhibitory].weight", linspace: [0.001, 0.008, {n_ei}]}}
  w_ie: {{path: "connections[inhibitory->excitatory].weight", linspace: [-0.004, -0.0005, {n_ie}]}}
axes:
  - grid: [w_ei, w_ie]
output: {{chunk_points: {chunk}}}
"""


def engine_only(spec_path: Path, threads: int = 1) -> tuple[float, int]:
    """Seconds to build and simulate every point, batch by batch as the workers do, on
    ``threads`` threads of this process (no Dask, no store)."""
    from sweeper.engine import simulate_batch
    from sweeper.engine.plan import clear_caches
    from sweeper.sweep.spec import Sweep

    sweep = Sweep.from_file(spec_path)
    params = sweep.points()
    n = len(next(iter(params.values())))
    chunk = sweep.output["chunk_points"]
    simulate_batch([sweep.network_for({k: v[0] for k, v in params.items()})])  # load the kernel
    clear_caches()  # operators are built afresh, as in the `sweeper run` process
    def batch(s):
        nets = [sweep.network_for({k: v[j] for k, v in params.items()}) for j in range(s, min(n, s + chunk))]
        bad = [o for o in simulate_batch(nets) if isinstance(o, Exception)]
        if bad:
            raise SystemExit(f"engine failed on a point: {bad[0]}")

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(batch, range(0, n, chunk)))
    return time.perf_counter() - t, n


def cli_run(spec_path: Path, store: Path, workers: int, *extra: str) -> float:
    exe = Path(sys.executable).with_name("sweeper")
    t = time.perf_counter()
    subprocess.run([str(exe), "run", str(spec_path), "-o", str(store), "--workers", str(workers),
                    "--no-progress", *extra], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def worker_peak_rss(spec_path: Path, store: Path, workers: int) -> list[float]:
    """Peak RSS (MiB) of each worker after a run on a fresh local cluster."""
    from distributed import Client, LocalCluster

    from sweeper.sweep.runner import run_sweep

    def peak():
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        summary = run_sweep(spec_path, store, client=client)
        if not summary.ok:
            raise SystemExit(f"sweep failed: {summary.failures[:3]}")
        return sorted(client.run(peak).values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=16, help="points per chunk (= engine batch)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="engine-only / sweeper run pairs (medians)")
    ap.add_argument("--memory-tf", type=float, default=0.05, help="tf of the memory runs (s)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "sweep_e2e.md"))
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sweeper-e2e-") as tmp:
        tmp = Path(tmp)
        spec = tmp / "e2e.yaml"
        spec.write_text(spec_text(args.points, args.chunk))
        engines, threaded, walls = [], [], []
        for r in range(args.rounds):  # interleaved, so that the host's drift hits all alike
            t, n = engine_only(spec)
            engines.append(t)
            threaded.append(engine_only(spec, args.workers)[0])
            walls.append(cli_run(spec, tmp / f"e2e-{r}.zarr", args.workers))
            print(f"round {r + 1}: engine only {n} points {t:.1f} s, on {args.workers} threads "
                  f"{threaded[-1]:.1f} s, sweeper run {walls[-1]:.1f} s", file=sys.stderr)
        engine, wall, engine_par = (statistics.median(x) for x in (engines, walls, threaded))
        wall_proc = cli_run(spec, tmp / "e2e-processes.zarr", args.workers, "--processes")
        print(f"sweeper run --processes: {wall_proc:.1f} s", file=sys.stderr)

        mem_rows = []
        sizes = (max(args.workers * 40, args.points // 10), args.points, 4 * args.points)
        for chunk in (10, 80):
            for points in sizes:
                mspec = tmp / f"mem-{chunk}-{points}.yaml"
                mspec.write_text(spec_text(points, chunk, tf=args.memory_tf))
                rss = worker_peak_rss(mspec, tmp / f"mem-{chunk}-{points}.zarr", args.workers)
                mem_rows.append((chunk, points, rss))
                print(f"memory: chunk {chunk}, {points} points: {rss}", file=sys.stderr)

    ideal = engine / args.workers
    target = 1.25 * ideal
    load = os.getloadavg()
    lines = [
        "# End-to-end sweep benchmark",
        "",
        f"Produced by `.venv/bin/python benchmarks/sweep_e2e.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average at "
        f"the end {load[0]:.2f}. Network: the bmtk PopNet tutorial (SONATA files, "
        f"`jobs/networks/popnet_tutorial`), gmres, 700 bins, 2 populations, tf 1.5 s; a "
        f"w_ei x w_ie grid of {n} points in chunks of {args.chunk} (one chunk = one task = one engine batch).",
        "",
        f"Medians of {args.rounds} rounds; each round runs the engine alone (one thread, then as many "
        "threads as workers), then `sweeper run` into a "
        f"fresh store. Per round: engine {', '.join(f'{t:.1f}' for t in engines)} s; engine on "
        f"{args.workers} threads {', '.join(f'{t:.1f}' for t in threaded)} s; `sweeper run` "
        f"{', '.join(f'{t:.1f}' for t in walls)} s; wall / ideal "
        f"{', '.join(f'{w / (e / args.workers):.2f}' for e, w in zip(engines, walls))}.",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| engine only, one process, all {n} points | {engine:.1f} |",
        f"| ideal on {args.workers} workers (engine / {args.workers}) | {ideal:.1f} |",
        f"| `sweeper run --workers {args.workers}`, wall, process start to exit | {wall:.1f} |",
        f"| target: 1.25 x ideal | {target:.1f} ({'met' if wall <= target else 'MISSED'}) |",
        f"| Dask + Zarr + start-up overhead (wall - ideal) | {wall - ideal:.1f} ({(wall - ideal) / ideal:.0%} of ideal) |",
        f"| engine alone on {args.workers} threads of one process (no Dask, no store) | {engine_par:.1f} "
        f"({engine / engine_par:.2f}x the one-thread speed) |",
        f"| of the overhead, Dask + Zarr + start-up (wall - engine on {args.workers} threads) | "
        f"{wall - engine_par:.1f} ({(wall - engine_par) / engine_par:.0%}) |",
        f"| `sweeper run --workers {args.workers} --processes`, wall (one run) | {wall_proc:.1f} "
        f"(overhead {wall_proc - ideal:.1f}, {(wall_proc - ideal) / ideal:.0%}) |",
        "",
        f"The wall time includes starting the local cluster, importing sweeper and loading the compiled "
        f"kernels, creating the store and writing {n} traces; per point that is "
        f"{wall / n * 1e3:.1f} ms of wall against {engine / n * 1e3:.1f} ms of engine time. The default "
        "local workers are threads (the engine releases the GIL); `--processes` starts one process per "
        "worker, each importing everything and loading the kernels, which is what its extra overhead is.",
        "",
        "## Worker memory",
        "",
        f"Peak RSS of each worker process (ru_maxrss) after a run on a fresh local cluster of "
        f"{args.workers} worker processes (so that each worker has a peak of its own), same network at "
        f"tf {args.memory_tf} s. A chunk is one task and one engine batch.",
        "",
        "| points per chunk | sweep points | peak RSS per worker (MiB) |",
        "|---|---|---|",
    ]
    for chunk, points, rss in mem_rows:
        lines.append(f"| {chunk} | {points} | {', '.join(f'{r:.0f}' for r in rss)} |")
    def peak(chunk, points):
        return max(r for c, p, rss in mem_rows if c == chunk and p == points for r in rss)

    lines += [
        "",
        "Reading: from "
        + "; ".join(f"{sizes[0]} to {sizes[1]} to {sizes[2]} points at chunks of {c}, the largest worker peak "
                    f"moves by {peak(c, sizes[1]) - peak(c, sizes[0]):+.0f} and "
                    f"{peak(c, sizes[2]) - peak(c, sizes[1]):+.0f} MiB" for c in (10, 80))
        + ". Each task reads its chunk's parameters, simulates them as one batch, writes its chunk and "
        "keeps nothing; what stays is bounded whatever the sweep's size: the Dask worker's logs "
        "(fixed-length) and operator caches of at most 64 MiB each (for points that share weights). So a "
        "worker's memory is its baseline (Python, numpy, numba, Dask, Zarr: about 240 MiB) plus one "
        "batch's operators and traces.",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
