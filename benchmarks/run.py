"""Engine benchmarks against dipde; writes docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/run.py`` (add ``--quick`` for fewer repeats while
developing). Everything runs on one core (BLAS threads pinned to 1; the engine is
single-threaded). Each figure is the median of several runs, taken in interleaved rounds
so that machine noise hits all cases alike. When dipde can be imported it is timed on the
same networks in the same run; otherwise dipde's anchor per case is the median of the four
medians in tests/data/reference/dipde_timings.json (same VM, dipde 0.2.2), and for the
8-population column the 1.41 s measured for dipde's own cortical-column example in issue 16.
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

TARGETS = {  # issue 16: minimum speed-up over dipde per network, and batch over alone for gmres
    "alone": 100.0,
    "batch approx": 400.0,
    "batch gmres": 100.0,
    "gmres batch over alone": 2.0,
}
COLUMN_DIPDE_S = 1.41  # dipde's cortical-column example, measured side by side in issue 16

def anchor(name: str) -> float:
    if name == "column":
        return COLUMN_DIPDE_S
    cases = json.loads((REF / "dipde_timings.json").read_text())["cases"]
    values = [v for k, v in cases[name].items() if k.startswith("median3")]
    return float(np.median(values))


def reference(name: str) -> np.ndarray:
    return np.loadtxt(REF / "rates" / f"{name}.csv", delimiter=",", skiprows=1, ndmin=2)


def rel_err(result, name: str) -> float:
    if name == "column":
        return float("nan")
    ref = reference(name)
    assert np.array_equal(result.t, ref[:, 0])
    return float(np.abs(result.rates.T - ref[:, 1:]).max() / np.abs(ref[:, 1:]).max())


def case(name: str):
    if name == "column":
        return cortical_column()
    return load_network(REF / "cases" / f"{name}.json")


# Potjans & Diesmann's microcircuit (2014), as in dipde's cortical-column example: neurons per
# population, connection probabilities (row: target, column: source; 9 are zero, leaving 55
# recurrent connections) and background in-degrees
COLUMN_N = [20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948]
COLUMN_P = [[0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
            [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
            [0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0],
            [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
            [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
            [0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0],
            [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
            [0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443]]
COLUMN_KBG = [1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100]


def cortical_column():
    """An 8-population gmres network with 63 connections (8 background inputs at 8 Hz, 55
    recurrent with nsyn = probability x source size), built like dipde's cortical-column
    example: weights 0.175 mV excitatory (doubled from layer 4 to 2/3), -4x that inhibitory,
    tau_m 10 ms, threshold 15 mV, 250-bin grids, dt 0.1 ms, 0.1 s. Not its exact parameters."""
    from sweeper import Connection, ExternalPopulation, InternalPopulation, Network, Simulation
    from sweeper.model import parse_rate

    names = [f"{layer}{kind}" for layer in ("23", "4", "5", "6") for kind in ("e", "i")]
    w = 0.000175
    pops = [InternalPopulation(n, tau_m=Dist.delta(0.01), v_min=-0.01, v_max=0.015, dv=1e-4,
                               update_method="gmres", tol=1e-14) for n in names]
    pops += [ExternalPopulation(f"bg{n}", parse_rate(8.0)) for n in names]
    conns = [Connection(f"bg{n}", n, float(k), Dist.delta(w)) for n, k in zip(names, COLUMN_KBG)]
    for t, tgt in enumerate(names):
        for s_, src in enumerate(names):
            if COLUMN_P[t][s_] == 0:
                continue
            ws = (2 * w if (src, tgt) == ("4e", "23e") else w) if src.endswith("e") else -4 * w
            conns.append(Connection(src, tgt, COLUMN_P[t][s_] * COLUMN_N[s_], Dist.delta(ws)))
    return Network(tuple(pops), tuple(conns), Simulation(0.0, 0.1, 1e-4), "column")


def network_data(net) -> dict:
    """A network as the plain data benchmarks/dipde_worker.py builds dipde objects from."""
    from sweeper.model import ConstantRate, ExpressionRate

    def dist(d):
        return [list(d.values), list(d.probs)]

    pops = []
    for p in net.populations:
        if p.kind == "internal":
            pops.append(dict(kind="internal", name=p.name, tau_m=dist(p.tau_m), v_min=p.v_min, v_max=p.v_max,
                             dv=p.dv, update_method=p.update_method, approx_order=p.approx_order, tol=p.tol,
                             norm="inf" if p.norm == np.inf else p.norm, p0=dist(p.p0),
                             initial_firing_rate=p.initial_firing_rate))
        elif isinstance(p.rate, (ConstantRate, ExpressionRate)):
            pops.append(dict(kind="external", name=p.name,
                             rate=p.rate.value if isinstance(p.rate, ConstantRate) else p.rate.expr))
        else:
            raise ValueError(f"{net.name}: dipde comparison needs constant or expression rates")
    conns = [dict(source=c.source, target=c.target, nsyn=c.nsyn, weights=dist(c.weights), delays=dist(c.delays))
             for c in net.connections if c.nsyn != 0]
    sim = net.simulation
    return dict(name=net.name, t0=sim.t0, dt=sim.dt, tf=sim.tf, populations=pops, connections=conns)


class Dipde:
    """dipde 0.2.2 in its own interpreter (benchmarks/dipde_worker.py), timing one network per
    call, so that its rounds interleave with the engine's. ``python`` None: no dipde, and
    :meth:`seconds` answers None (the stored timings are used)."""

    SLOW_S = 20.0

    def __init__(self, python: str | None, nets: dict):
        self.names = list(nets)
        self.times = {name: [] for name in nets}
        self.proc = None
        if not python:
            return
        data = [network_data(net) for net in nets.values()]
        self.proc = subprocess.Popen([python, str(ROOT / "benchmarks" / "dipde_worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""})
        self.proc.stdin.write(json.dumps(data) + "\n")
        self.proc.stdin.flush()

    def round(self) -> None:
        """Time every network once (a network that has taken SLOW_S in 3 runs or more is done:
        dipde needs 100 s for the column)."""
        if self.proc is None:
            return
        for k, name in enumerate(self.names):
            t = self.times[name]
            if t is None or (len(t) >= 3 and sum(t) > self.SLOW_S):
                continue
            self.proc.stdin.write(json.dumps({"case": k}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the dipde worker exited (rc {self.proc.wait()})")
            answer = json.loads(line)
            if "error" in answer:
                print(f"dipde could not run {name}: {answer['error']}", file=sys.stderr)
                self.times[name] = None
            else:
                t.append(answer["seconds"])

    def seconds(self, name: str) -> float | None:
        """Median seconds of dipde on this network in this run, or None."""
        t = self.times.get(name)
        return float(np.median(t)) if t else None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


def timed(fn):
    """CPU seconds of one call, from cold operator caches (as for a sweep's new points). The
    engine is single-threaded, so on an idle core this is its wall time; CPU time is used
    because the shared VM's load (other jobs) stretches wall times, not CPU times."""
    clear_caches()
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


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
ALONE_TARGETS = {"bmtk_tutorial_2pop_gmres", "column", "gmres_weight_dist",
                 "dipde_example_singlepop_exponential_distribution", "single_const_taylor",
                 "dipde_example_singlepop"}


def batch_specs() -> dict:
    """label -> (reference case, 64 networks, target kind)."""
    return {
        "tutorial, 64 weights (E->I x I->E)": ("bmtk_tutorial_2pop_gmres", tutorial_grid(), "batch gmres"),
        "gmres_weight_dist, 64 weights": ("gmres_weight_dist", weight_batch("gmres_weight_dist"), "batch gmres"),
        "single_const_taylor, 64 weights": ("single_const_taylor", weight_batch("single_const_taylor"),
                                            "batch approx"),
        "dipde_example_singlepop, 64 weights": ("dipde_example_singlepop", weight_batch("dipde_example_singlepop"),
                                                "batch approx"),
    }


def measure(singles: dict, batches: dict, rounds: int, batch_rounds: int, probes: list, dipde: Dipde):
    """Interleaved rounds: per single its times and accuracy (and dipde's time, when there is
    a dipde), per batch its times and checks."""
    single_times = {name: [] for name in singles}
    single_err, batch_info = {}, {}
    batch_times = {label: [] for label in batches}
    for r in range(max(rounds, batch_rounds)):
        if r < rounds:
            for name, net in singles.items():
                dt, res = timed(lambda: simulate(net))
                single_times[name].append(dt)
                single_err[name] = rel_err(res, name)
            dipde.round()
        if r < batch_rounds:
            for label, (name, nets, _) in batches.items():
                dt, out = timed(lambda: simulate_batch(nets))
                batch_times[label].append(dt)
                if label not in batch_info:
                    batch_info[label] = check_batch(name, nets, out)
        probes.append(host_probe())
        print(f"round {r + 1} done", file=sys.stderr)
    return single_times, single_err, batch_times, batch_info


def check_batch(name: str, nets: list, out: list) -> dict:
    failed = sum(isinstance(o, Exception) for o in out)
    ref_index = next(i for i, n in enumerate(nets) if n == case(name))
    check = sorted({0, ref_index, len(nets) - 1, len(nets) // 3})
    same = max(float(np.abs(simulate(nets[i]).rates - out[i].rates).max()
                     / max(np.abs(out[i].rates).max(), 1e-300)) for i in check)
    alone = float(np.median([timed(lambda: simulate(nets[i]))[0] for i in check]))
    return dict(n=len(nets), failed=failed, acc=rel_err(out[ref_index], name), same=same, alone=alone)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (for development)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--only", default=None, help="run only rows whose name contains this")
    ap.add_argument("--dipde-python", default=os.environ.get("SWEEPER_DIPDE_PYTHON"),
                    help="a Python that imports dipde 0.2.2 (see benchmarks/dipde_env.sh): dipde is then "
                         "timed in the same run, round by round with the engine "
                         "(default: $SWEEPER_DIPDE_PYTHON; without it, the stored timings)")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else 7
    batch_rounds = 1 if args.quick else 5

    simulate(case("exact_feedforward_chain"))  # compile / load the kernel before timing
    probes = [host_probe()]
    names = sorted(p.stem for p in (REF / "cases").glob("*.json")) + ["column"]
    singles = {name: case(name) for name in names}
    batches = batch_specs()
    if args.only:
        singles = {k: v for k, v in singles.items() if args.only in k}
        batches = {k: v for k, v in batches.items() if args.only in k}
    dipde_nets = dict(singles)
    dipde_nets.update({name: case(name) for name, _, _ in batches.values()})
    dipde = Dipde(args.dipde_python, dipde_nets)
    try:
        single_times, single_err, batch_times, batch_info = measure(singles, batches, rounds, batch_rounds, probes,
                                                                    dipde)
    finally:
        dipde.close()
    side = {name: dipde.seconds(name) for name in dipde_nets}

    rows = []
    for name in singles:
        med = float(np.median(single_times[name]))
        a = side[name] or anchor(name)
        label = "8-population column, 63 connections (gmres)" if name == "column" else f"`{name}`"
        rows.append((f"{label} (single)", med, a, side[name] is not None, a / med, 1.0 / med, single_err[name],
                     None, None, TARGETS["alone"] if name in ALONE_TARGETS else None, None))
    for label, (name, nets, target) in batches.items():
        med = float(np.median(batch_times[label]))
        per = med / len(nets)
        a = side.get(name) or anchor(name)
        info = batch_info[label]
        gain = info["alone"] / per
        rows.append((f"{label} (batch)", per, a, side.get(name) is not None, a / per, len(nets) / med, info["acc"],
                     info["same"], gain, TARGETS[target],
                     TARGETS["gmres batch over alone"] if target == "batch gmres" else None))

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
        "*engine s* is the median CPU time per network (one thread, so the wall time on an idle core; "
        "single: `simulate(net)`, "
        f"median of {rounds}; batch: `simulate_batch(nets)` / len(nets), median of {batch_rounds}), "
        "including building the operators, excluding file reading. *dipde s* is dipde 0.2.2's "
        "`Network.run` (CPU time, median): where marked *same run*, timed in this run on the same "
        "network, one run per case in every round of the engine's (in its own interpreter: "
        "`benchmarks/dipde_env.sh` builds it, `SWEEPER_DIPDE_PYTHON` names it; a case is done after 3 "
        "runs once they took 20 s); otherwise the median of the four medians in "
        "`tests/data/reference/dipde_timings.json` (same VM, another day), and for the column the 1.41 s "
        "of dipde's own cortical-column example measured in issue 16 (the column here is built like it, "
        "not with its exact parameters). *accuracy* is max|x - ref| / max|ref| against dipde's reference "
        "trace (for a batch: the member that is the reference case); *batch = alone* is the largest "
        "relative difference between a member simulated in the batch and alone; *batch gain* is a "
        "member's time alone over its time per network in the batch. Targets (issue 16): 100x dipde per "
        "network; the 200-bin approx batches 400x; gmres batches 2x faster per network than alone.",
        "",
        "| case | engine s / network | dipde s | speed-up | networks/s | accuracy vs reference | batch = alone "
        "| batch gain | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, per, a, same_run, ratio, nps, acc, same, gain, target, gain_target in rows:
        tgt = "" if target is None else f"{'met' if ratio >= target else 'MISSED'} (>= {target:g}x)"
        if gain_target is not None:
            tgt += f"; gain {'met' if gain >= gain_target else 'MISSED'} (>= {gain_target:g}x)"
        acc_text = "" if acc != acc else f"{acc:.1e}"
        lines.append(f"| {label} | {per:.4g} | {a:.3g}{' (same run)' if same_run else ''} | {ratio:.1f}x | "
                     f"{nps:.1f} | {acc_text} | {'' if same is None else f'{same:.0e}'} | "
                     f"{'' if gain is None else f'{gain:.2f}x'} | {tgt} |")
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
        "the last densities. Narrow bands are solved directly (banded LU, the reset and floor rows by "
        "Woodbury), and wider ones too once Gauss-Seidel needs more sweeps than that costs (weight "
        "distributions against strong inhibition). A backward-Euler step whose inputs (density and input rates) are "
        "bit-identical to the previous step's reuses its result (steady states). The whole time loop "
        "of every batch member runs in one compiled call (numba) that releases the GIL.",
        "",
        'Why the missed targets are missed (measured 2026-12-02): (1) *a small network alone* '
        '(`dipde_example_singlepop`, 200 bins, 1000 steps): the compiled time loop takes about 0.6 ms; '
        'the rest of a `simulate` call is Python set-up of the arrays from cold operator caches '
        '(`build_plan` about 0.9 ms, `check_network` about 0.2 ms), which a batch shares, so its members'
        ' run at 1.9-2x the speed of one alone. (2) *many diagonals* (`..._exponential_distribution`: a '
        '201-point weight distribution is 147 diagonals, about 18,000 multiply-adds a step): the step is'
        ' bound by loads, and a dense BLAS matrix-vector product of the same 200 x 200 operator takes '
        '5-7 us, as long as the whole step. (3) *gmres_weight_dist* (25 weights, 15 diagonals, the band '
        'kl = 23 below, ku = 3 above): after the first step it is solved by a banded LU per step (its '
        'inputs change every step until the steady state); the compiled loop is about 55-60 % of the '
        'time (2.9-3.1 ms), Python set-up the rest. (4) *gmres batches*: members are stepped one after '
        'another in the compiled loop, so a batch saves only the per-call set-up; the Gauss-Seidel chain'
        ' is one dependent multiply-add per bin (the chained-FMA probe above), which stepping 16-32 '
        'members in SIMD lanes would hide; that needs the time loop restructured in lockstep over '
        'members (operators per member, convergence per lane), not done. (5) *approx batches at 400x* '
        'need 0.38 us a step (`dipde_example_singlepop`, one Taylor term) and 0.72 us '
        '(`single_const_taylor`, 4.2 terms); they take 0.96 and 1.6 us: each term is a pass over 4-5 '
        'diagonals of 200 bins, then come the threshold and mass passes, and the gather probe above '
        '(about 1 ns per element) puts one pass over 200 bins near 0.2 us.',
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
