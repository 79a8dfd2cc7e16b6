"""Engine benchmarks against dipde's own timings; writes docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/run.py`` (add ``--quick`` for fewer repeats while
developing). Everything runs on one core (BLAS threads pinned to 1; the engine is
single-threaded). Each figure is the median of several runs, taken in interleaved rounds
so that machine noise hits all cases alike. dipde's anchor per case is the median of the
four medians in tests/data/reference/dipde_timings.json (same VM, dipde 0.2.2).
Not part of the test suite.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "reference"
sys.path.insert(0, str(ROOT))

from sweeper import Dist  # noqa: E402
from sweeper.engine import simulate, simulate_batch  # noqa: E402
from sweeper.engine.caches import clear_caches  # noqa: E402
from sweeper.io import load_network  # noqa: E402

TARGETS = {  # issue 5: minimum speed-up over dipde per network
    "single tutorial": 10.0,
    "batch tutorial": 30.0,
    "batch small approx": 50.0,
}


def anchor(name: str) -> float:
    cases = json.loads((REF / "dipde_timings.json").read_text())["cases"]
    values = [v for k, v in cases[name].items() if k.startswith("median3")]
    return float(np.median(values))


def reference(name: str) -> np.ndarray:
    return np.loadtxt(REF / "rates" / f"{name}.csv", delimiter=",", skiprows=1, ndmin=2)


def rel_err(result, name: str) -> float:
    ref = reference(name)
    assert np.array_equal(result.t, ref[:, 0])
    return float(np.abs(result.rates.T - ref[:, 1:]).max() / np.abs(ref[:, 1:]).max())


def case(name: str):
    return load_network(REF / "cases" / f"{name}.json")


def timed(fn):
    """Seconds of one call, from cold operator caches (as for a sweep's new points)."""
    clear_caches()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


# --------------------------------------------------------------------------- batches
def tutorial_grid() -> list:
    """64 tutorial networks: E->I weight x I->E weight, 8 x 8, the tutorial's own point included."""
    net = case("bmtk_tutorial_2pop_gmres")
    ie = next(i for i, c in enumerate(net.connections) if c.source == "inhibitory")
    ei = next(i for i, c in enumerate(net.connections) if c.source == "excitatory")
    nets = []
    for w_ei in np.linspace(0.0035, 0.007, 8):       # includes 0.005
        for w_ie in np.linspace(-0.0005, -0.004, 8):  # includes -0.002
            n = net.replace_connection(ei, weights=Dist.delta(round(float(w_ei), 6)))
            n = n.replace_connection(ie, weights=Dist.delta(round(float(w_ie), 6)))
            nets.append(n)
    return nets


def weight_batch(name: str, count: int = 64) -> list:
    """``count`` copies of a one-input case with the input weight and nsyn varied (+-20%)."""
    net = case(name)
    c0 = net.connections[0]
    nets = []
    for k in range(count):
        f = 0.8 + 0.4 * k / (count - 1)
        nets.append(net.replace_connection(0, weights=c0.weights.scaled(f), nsyn=c0.nsyn * (1.2 - 0.4 * k / (count - 1))))
    nets[count // 2] = net  # the reference point itself, for accuracy
    return nets


# --------------------------------------------------------------------------- host speed
def host_probe() -> tuple[float, float]:
    """How fast this VM's core is right now (it drifts by up to 2x on a shared host, and
    every figure here moves with it): ns per step of a chained multiply-add loop (latency)
    and ns per element of a gather-multiply-add loop like the engine's sweeps (throughput)."""
    from numba import njit

    @njit
    def chain(x, y, reps):
        for _ in range(reps):
            for i in range(1, x.shape[0]):
                y[i] = (x[i] + 0.5 * y[i - 1]) * 0.7
        return y

    @njit
    def gather(x, y, idx, reps):
        s = 0.0
        for _ in range(reps):
            for i in range(x.shape[0]):
                s += x[idx[i]] * y[i]
                y[i] = s * 1e-3
        return s

    rng = np.random.default_rng(0)
    x, y = rng.random(700), np.zeros(700)
    idx = rng.integers(0, 700, 700)
    chain(x, y, 1)
    gather(x, y, idx, 1)
    lat = min(timed(lambda: chain(x, y, 5000))[0] for _ in range(5)) / 5000 / 699 * 1e9
    thr = min(timed(lambda: gather(x, y, idx, 5000))[0] for _ in range(5)) / 5000 / 700 * 1e9
    return lat, thr


# --------------------------------------------------------------------------- compile time
COMPILE_SNIPPET = """
import time, sys
t = time.perf_counter()
sys.path.insert(0, {root!r})
from sweeper.engine import simulate
from sweeper.io import load_network
net = load_network({case!r})
simulate(net)
print(time.perf_counter() - t)
"""


def compile_times() -> tuple[float, float, float]:
    """(first call with an empty numba cache, first call with the cache filled, warm call)."""
    small = str(REF / "cases" / "exact_feedforward_chain.json")
    code = COMPILE_SNIPPET.format(root=str(ROOT), case=small)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout.split()[-1])
        cached = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout.split()[-1])
    warm, _ = timed(lambda: simulate(case("exact_feedforward_chain")))
    return cold, cached, warm


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (for development)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--only", default=None, help="run only rows whose name contains this")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else 7
    batch_rounds = 1 if args.quick else 5

    simulate(case("exact_feedforward_chain"))  # compile / load the kernel before timing
    probes = [host_probe()]
    names = sorted(p.stem for p in (REF / "cases").glob("*.json"))
    singles = {name: case(name) for name in names}
    batches = {
        "tutorial, 64 weights (E->I x I->E)": ("bmtk_tutorial_2pop_gmres", tutorial_grid(), "batch tutorial"),
        "single_const_taylor, 64 weights": ("single_const_taylor", weight_batch("single_const_taylor"),
                                            "batch small approx"),
        "dipde_example_singlepop, 64 weights": ("dipde_example_singlepop", weight_batch("dipde_example_singlepop"),
                                                "batch small approx"),
    }
    if args.only:
        singles = {k: v for k, v in singles.items() if args.only in k}
        batches = {k: v for k, v in batches.items() if args.only in k}

    single_times = {name: [] for name in singles}
    single_err = {}
    batch_times = {label: [] for label in batches}
    batch_info = {}
    for r in range(max(rounds, batch_rounds)):
        if r < rounds:
            for name, net in singles.items():
                dt, res = timed(lambda: simulate(net))
                single_times[name].append(dt)
                single_err[name] = rel_err(res, name)
        if r < batch_rounds:
            for label, (name, nets, _) in batches.items():
                dt, out = timed(lambda: simulate_batch(nets))
                batch_times[label].append(dt)
                if label not in batch_info:
                    failed = sum(isinstance(o, Exception) for o in out)
                    ref_index = next(i for i, n in enumerate(nets) if n == singles.get(name, case(name)))
                    check = sorted({0, ref_index, len(nets) - 1, len(nets) // 3})
                    same = max(float(np.abs(simulate(nets[i]).rates - out[i].rates).max()
                                     / max(np.abs(out[i].rates).max(), 1e-300)) for i in check)
                    batch_info[label] = dict(n=len(nets), failed=failed, acc=rel_err(out[ref_index], name),
                                             same=same)
        probes.append(host_probe())
        print(f"round {r + 1} done", file=sys.stderr)

    rows = []
    for name in singles:
        med = float(np.median(single_times[name]))
        a = anchor(name)
        rows.append((f"`{name}` (single)", med, a, a / med, 1.0 / med, single_err[name], None,
                     TARGETS["single tutorial"] if name == "bmtk_tutorial_2pop_gmres" else None))
    for label, (name, nets, target) in batches.items():
        med = float(np.median(batch_times[label]))
        per = med / len(nets)
        a = anchor(name)
        info = batch_info[label]
        rows.append((f"{label} (batch)", per, a, a / per, len(nets) / med, info["acc"], info["same"],
                     TARGETS[target]))

    cold, cached, warm = compile_times()
    text = render(rows, batch_info, cold, cached, warm, rounds, batch_rounds, probes)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


def render(rows, batch_info, cold, cached, warm, rounds, batch_rounds, probes) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [
        "# Engine benchmarks",
        "",
        f"Produced by `.venv/bin/python benchmarks/run.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, numba {_version('numba')}; one thread; "
        f"load average at the end {load[0]:.2f}. Host speed probes during the run (lower is faster; "
        "they drift by up to 2x on this shared VM, and so does every time below): chained "
        f"multiply-add {min(p[0] for p in probes):.2f}-{max(p[0] for p in probes):.2f} ns, "
        f"gather multiply-add {min(p[1] for p in probes):.2f}-{max(p[1] for p in probes):.2f} ns.",
        "",
        "*engine s* is the median wall time per network (single: `simulate(net)`, "
        f"median of {rounds}; batch: `simulate_batch(nets)` / len(nets), median of {batch_rounds}), "
        "including building the operators, excluding file reading. *dipde s* is dipde 0.2.2's "
        "`Network.run` on this VM (median of the four medians in `tests/data/reference/dipde_timings.json`). "
        "*accuracy* is max|x - ref| / max|ref| against dipde's reference trace (for a batch: the member "
        "that is the reference case); *batch = alone* is the largest relative difference between a "
        "member simulated in the batch and alone.",
        "",
        "| case | engine s / network | dipde s | speed-up | networks/s | accuracy vs reference | batch = alone | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, per, a, ratio, nps, acc, same, target in rows:
        tgt = "" if target is None else f"{'met' if ratio >= target else 'MISSED'} (>= {target:g}x)"
        lines.append(f"| {label} | {per:.4g} | {a:.3g} | {ratio:.1f}x | {nps:.1f} | {acc:.1e} | "
                     f"{'' if same is None else f'{same:.0e}'} | {tgt} |")
    lines += [
        "",
        "Compile time (numba, `cache=True`): first call in a fresh process with an empty cache "
        f"{cold:.1f} s; first call in a fresh process with the cache filled {cached:.2f} s (import, "
        f"cache load and a small network); a warm call {warm * 1e3:.1f} ms.",
        "",
        "How the engine gets there: operators are stored as a few diagonals (the leak moves mass one "
        "bin, a weight w shifts it by ~w/dv bins) plus rank-1 reset/floor rows, never dense, and "
        "assembled only when a population's inputs change. Taylor steps (approx) are diagonal-by-"
        "diagonal passes that vectorise, with the threshold dot product over theta's nonzero span "
        "only. gmres (backward Euler) is solved exactly by Gauss-Seidel sweeps ordered along the leak "
        "(toward 0 V from both sides), so the stiff leak is triangular; jumps that point against the "
        "sweep are summed a whole diagonal at a time, jumps that point along it in blocks shorter than "
        "their offset, leaving one multiply-add per bin in sequence; the start is extrapolated from "
        "the last densities. A backward-Euler step whose inputs (density and input rates) are "
        "bit-identical to the previous step's reuses its result (steady states). The whole time loop "
        "of every batch member runs in one compiled call (numba) that releases the GIL.",
        "",
    ]
    return "\n".join(lines)


def _version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
