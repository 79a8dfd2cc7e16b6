"""Sweep scale, measured in one run on this machine (issue 17); writes docs/scale.md.

Usage: python benchmarks/scale.py [--sizes 10000,100000[,1000000]] [--workers 2] [--repeats 3]
                                  [--tutorial 1000] [--compile] [--out docs/scale.md]

For the tiny network (jobs/networks/single_population.json at tf 0.002 s) at each size: the
engine alone (simulate_batch in this process, one thread, network building excluded), the wall
time of a whole `sweeper run` (default settings: tasks sized from cost), files and bytes of the
store, peak RSS of the run's process (the client; the default local workers are its threads) and
of any worker processes; then reading a metric over all points and `open_sweep`.  Also the
tutorial network swept over ``--tutorial`` points, the start-up of `sweeper simulate`, and, with
``--compile``, the first-run compile on an empty numba cache (`sweeper warmup`).
Figures are medians of ``--repeats`` runs where repeated; the machine's load is recorded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NET = ROOT / "jobs" / "networks" / "single_population.json"
TUTORIAL = ROOT / "jobs" / "networks" / "popnet_tutorial" / "config.json"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))
MARK = "<!-- benchmarks/scale.py writes below this line -->"


def tiny_spec(folder: Path, n: int) -> Path:
    n_nsyn = 100
    path = folder / f"tiny{n}.yaml"
    path.write_text(f"network: {NET}\nname: tiny{n}\nsimulation: {{tf: 0.002}}\nparameters:\n"
                    f"  rate: {{path: inputs.bg.rate, linspace: [10, 500, {n // n_nsyn}]}}\n"
                    f"  nsyn: {{path: \"connections[bg->e].nsyn\", linspace: [1, 20, {n_nsyn}]}}\n"
                    "axes:\n  - grid: [rate, nsyn]\n")
    return path


def tutorial_spec(folder: Path, n: int) -> Path:
    a = max(1, int(round(n ** 0.5)))
    b = max(1, n // a)
    path = folder / f"tutorial{a * b}.yaml"
    path.write_text(f"network: {TUTORIAL}\nname: tutorial{a * b}\nsimulation: {{tf: 0.5}}\nparameters:\n"
                    f"  w_ei: {{path: \"connections[excitatory->inhibitory].weight\", linspace: [0.001, 0.008, {a}]}}\n"
                    f"  w_ie: {{path: \"connections[inhibitory->excitatory].weight\", linspace: [-0.004, -0.0005, {b}]}}\n"
                    "axes:\n  - grid: [w_ei, w_ie]\noutput: {metric_window: 0.2}\n")
    return path


class Peak:
    """Peak RSS of a process and, separately, of its descendants, sampled every 50 ms."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.own = self.children = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self._stop.is_set():
            try:
                self.own = max(self.own, self.proc.memory_info().rss)
                kids = self.proc.children(recursive=True)
                self.children = max(self.children, max((k.memory_info().rss for k in kids), default=0))
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self.thread.join()


def engine_seconds(spec: Path, block: int = 5000) -> float:
    """simulate_batch of every point of ``spec``, one thread, building the networks excluded."""
    from sweeper.engine import simulate_batch
    from sweeper.sweep import Sweep

    sweep = Sweep.from_file(spec)
    table = sweep.points()
    n = len(next(iter(table.values())))
    total = 0.0
    for start in range(0, n, block):
        nets = [sweep.network_for({k: v[i] for k, v in table.items()}) for i in range(start, min(n, start + block))]
        t0 = time.perf_counter()
        simulate_batch(nets)
        total += time.perf_counter() - t0
    return total


def run_store(spec: Path, store: Path, workers: int, *extra: str) -> dict:
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", str(workers), "--no-progress",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = Peak(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    peak.stop()
    if proc.returncode != 0:
        raise SystemExit(f"sweeper run failed ({proc.returncode}):\n{out}")
    files = [p for p in store.rglob("*") if p.is_file()]
    per_array = {}
    for p in files:
        top = p.relative_to(store).parts[0]
        per_array[top] = per_array.get(top, 0) + 1
    kind = "processes" if "worker processes" in out else "threads"
    return {"wall": wall, "kind": kind, "files": len(files), "max_files_per_array": max(per_array.values()),
            "bytes": sum(p.stat().st_size for p in files), "client_rss": peak.own, "worker_rss": peak.children}


def _small(folder: Path) -> Path:
    path = folder / "small.yaml"
    path.write_text(f"network: {NET}\nname: small\nsimulation: {{tf: 0.002}}\nparameters:\n"
                    "  rate: {path: inputs.bg.rate, linspace: [10, 500, 16]}\naxes:\n  - grid: [rate]\n")
    return path


def data_bytes(store: Path) -> int:
    from sweeper.store import SweepStore
    st = SweepStore.open(store)
    return sum(int(st.group[name].nbytes) for name in st.group.array_keys()
               if st.group[name].dtype.kind in "fiub")


def read_back(store: Path, repeats: int) -> tuple[float, float]:
    """Seconds to open the store as a dataset, and to read a metric over every point."""
    from sweeper.sweep import open_sweep
    opens, reads = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ds = open_sweep(store)
        opens.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        float(ds["mean_rate"].mean())
        reads.append(time.perf_counter() - t0)
    return statistics.median(opens), statistics.median(reads)


def startup(repeats: int, folder: Path) -> tuple[float, float]:
    """Whole-process seconds of `sweeper simulate` for the tiny network and the tutorial network."""
    out = []
    for net in (NET, TUTORIAL):
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([SWEEPER, "simulate", str(net), "-o", str(folder / "rates.csv")], check=True,
                           capture_output=True)
            walls.append(time.perf_counter() - t0)
        out.append(statistics.median(walls))
    return out[0], out[1]


def first_compile(folder: Path) -> tuple[float, float]:
    """(seconds to the first line, seconds in all) of `sweeper warmup` on an empty numba cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba-empty"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([SWEEPER, "warmup"], stderr=subprocess.PIPE, text=True, env=env)
    first = None
    for line in proc.stderr:
        if first is None:
            first = time.perf_counter() - t0
    proc.wait()
    return first or 0.0, time.perf_counter() - t0


def mb(x: float) -> str:
    return f"{x / 1e6:.1f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tutorial", type=int, default=1000)
    ap.add_argument("--compile", action="store_true", help="also time a first run on an empty numba cache")
    ap.add_argument("--out", default=str(ROOT / "docs" / "scale.md"))
    args = ap.parse_args()
    from sweeper.engine.warm import ensure_warm
    ensure_warm(print)
    tmp = Path(tempfile.mkdtemp(prefix="sweeper-scale-"))
    load0 = os.getloadavg()[0]
    rows, lines = [], []
    t_sim, t_tut_sim = startup(args.repeats, tmp)
    print(f"startup: simulate tiny {t_sim:.2f} s, tutorial {t_tut_sim:.2f} s", flush=True)
    # the start-up a run pays whatever its size: a 16-point sweep, with each kind of worker
    start = {kind: statistics.median(run_store(_small(tmp), tmp / "small.zarr",
                                               args.workers, f"--{kind}")["wall"] for _ in range(args.repeats))
             for kind in ("threads", "processes")}
    print(f"startup: sweeper run of 16 points: threads {start['threads']:.2f} s, processes {start['processes']:.2f} s",
          flush=True)
    for n in [int(x) for x in args.sizes.split(",") if x]:
        spec = tiny_spec(tmp, n)
        eng = engine_seconds(spec)
        store = tmp / f"tiny{n}.zarr"
        walls = []
        for _ in range(args.repeats if n <= 100_000 else 1):
            r = run_store(spec, store, args.workers)
            walls.append(r["wall"])
        r["wall"] = statistics.median(walls)
        from sweeper.store import SweepStore
        r["tasks"] = SweepStore.open(store).nchunks
        o, rd = read_back(store, args.repeats)
        r.update(n=n, engine=eng, data=data_bytes(store), open=o, read=rd)
        rows.append(r)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    tut = tutorial_spec(tmp, args.tutorial)
    eng_t = engine_seconds(tut, block=200)
    rt = run_store(tut, tmp / "tutorial.zarr", args.workers)
    print(f"tutorial: engine {eng_t:.1f} s, run {rt['wall']:.1f} s", flush=True)
    compile_first = compile_all = None
    if args.compile:
        compile_first, compile_all = first_compile(tmp)
        print(f"compile: first line after {compile_first:.2f} s, {compile_all:.1f} s in all", flush=True)
    load1 = os.getloadavg()[0]

    w = args.workers
    lines += ["## Measured", "",
              f"Measured by `python benchmarks/scale.py --sizes {args.sizes}{' --compile' if args.compile else ''}` "
              f"on this machine ({psutil.cpu_count()} cores, load average {load0:.1f} at the start and "
              f"{load1:.1f} at the end: the machine is shared, so the ratios matter more than the seconds), "
              f"{w} local workers, default settings (tasks sized from cost: `sweep.task-seconds`; threads or "
              "processes chosen by cost, `cluster.local.auto-processes`). "
              "`sweeper run` walls are medians of "
              f"{args.repeats} runs up to 10^5 points, one run above.", "",
              f"Start-up, the wall of a 16-point `sweeper run` (medians of {args.repeats}): threads "
              f"{start['threads']:.2f} s, processes {start['processes']:.2f} s. Target (issue 17): "
              "wall <= 2 x (engine / workers) + start-up, i.e. (wall - start-up) / (engine / workers) <= 2.", "",
              "### Tiny network (single_population.json, tf 0.002 s)", "",
              "| points | tasks | workers | engine alone, 1 thread | `sweeper run` wall | (wall - start-up) / (engine / workers) "
              "| files (max per array) | disk / data | run process peak RSS | worker peak RSS | `open_sweep` | mean of a metric |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['tasks']} | {r['kind']} | {r['engine']:.2f} s | {r['wall']:.2f} s | "
                     f"{(r['wall'] - start[r['kind']]) / (r['engine'] / w):.2f} | {r['files']} ({r['max_files_per_array']}) | "
                     f"{mb(r['bytes'])} / {mb(r['data'])} | {mb(r['client_rss'])} | "
                     f"{mb(r['worker_rss']) if r['kind'] == 'processes' else '(threads of the run)'} | {r['open']:.2f} s | {r['read']:.3f} s |")
    lines += ["", "### Tutorial network", "",
              f"{args.tutorial} points (E->I x I->E weight grid, tf 0.5 s): engine alone {eng_t:.1f} s (1 thread), "
              f"`sweeper run` {rt['wall']:.1f} s with {w} worker {rt['kind']}: {rt['wall'] / (eng_t / w):.2f} x (engine / workers), "
              f"{(rt['wall'] - start[rt['kind']]) / (eng_t / w):.2f} x after start-up (target 1.2); "
              f"{rt['files']} files, {mb(rt['bytes'])}.", "",
              "### Start-up and first run", "",
              f"- `sweeper simulate` whole process (warm cache): tiny network {t_sim:.2f} s, tutorial PopNet config "
              f"{t_tut_sim:.2f} s (medians of {args.repeats}).",
              ("- First run on an empty numba cache (`sweeper warmup`): first line "
               f"(\"compiling the engine once, about N s\") after {compile_first:.2f} s, compiled in {compile_all:.1f} s."
               if args.compile else "- First-run compile: not measured in this run (`--compile`)."), ""]
    out = Path(args.out)
    kept = out.read_text().split(MARK)[0] if out.exists() and MARK in out.read_text() else ""
    out.write_text(kept + MARK + "\n" + "\n".join(lines))
    print("\n".join(lines))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
