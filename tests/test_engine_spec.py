"""The engine against a dense, literal transcription of the method spec, on many small networks.

``dense_reference`` below follows docs/method.md sections 4-11 line by line with dense numpy
matrices and plain loops (nothing shared with sweeper.engine). Randomised networks cover
what the reference cases may not: tau_m and p0 distributions (p0 points exactly on edges,
below v_min, above v_max), exact-0 edges or not, narrow last bins, weight distributions
with both signs and weights wider than the grid, fractional nsyn, delay distributions that
round half-to-even, explicit delay queues, Heaviside at 0, approx_order k, norms other
than inf, exact and gmres.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from sweeper import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
from sweeper.engine import simulate, simulate_batch
from sweeper.engine.grid import check_grid
from sweeper.errors import ModelError, SimulationError
from sweeper.model import parse_rate

EPS = 2.220446049250313e-16


# --------------------------------------------------------------------------- literal spec
def ref_edges(v_min, v_max, dv):
    e = np.concatenate((np.arange(v_min, v_max, dv), [v_max]))
    e[np.abs(e) < EPS] = 0.0
    return e


def ref_zero_bins(e):
    zeros = [k for k, x in enumerate(e) if x == 0.0]
    if len(zeros) == 1:
        k = zeros[0]
        return [0] if k == 0 else [k - 1, k]
    return [sum(1 for x in e if x <= 0.0) - 1]


def ref_leak(e, zb, taus, qs):
    n = len(e) - 1
    L = np.zeros((n, n))
    for tau, q in zip(taus, qs):
        A = np.zeros((n, n))
        for k in range(n):
            if k > max(zb):
                r = e[k + 1] / (tau * (e[k + 1] - e[k]))
                A[k, k] -= r
                A[k - 1, k] += r
            elif k < min(zb):
                r = e[k] / (tau * (e[k] - e[k + 1]))
                A[k, k] -= r
                A[k + 1, k] += r
        L += q * A
    return L


def ref_frac(a1, a2, b1, b2):
    """Length of [a1, a2] inside [b1, b2], over the length of [a1, a2] (docs/method.md §6.1)."""
    if a1 >= b1 and a2 <= b2:
        return 1.0
    return max(0.0, min(a2, b2) - max(a1, b1)) / (a2 - a1)


def ref_jump(e, zb, ws, pis):
    n = len(e) - 1
    F = np.zeros((n, n))
    theta = np.zeros(n)
    for w, pi in zip(ws, pis):
        s = e + w
        M = -pi * np.eye(n)
        for L in range(n):
            for j in range(n):
                f = ref_frac(s[L], s[L + 1], e[j], e[j + 1])
                if f:
                    M[j, L] += f * pi
        lost = np.zeros(n)
        for L in range(n):
            acc = 0.0
            for j in range(n):
                acc += M[j, L]
            lost[L] = -acc
        if w > 0:
            for z in zb:
                M[z, :] += lost / len(zb)
            theta += lost
        else:
            M[0, :] += lost
        F += M
    return F, theta


def ref_p0(e, xs, qs):
    cdf = np.cumsum(qs)

    def F(v):
        if v < xs[0]:
            return 0.0
        if v >= xs[-1]:
            return 1.0
        return cdf[max(j for j, x in enumerate(xs) if x <= v)]
    n = len(e) - 1
    p = np.array([F(e[k + 1]) - F(e[k]) for k in range(n)])
    p[0] += F(e[0])
    p[-1] += 1 - F(e[n])
    return p


def dense_reference(net: Network):
    """(t, rates[recorded]) by the spec, or raises SimulationError for a failed mass check."""
    sim = net.simulation
    t0, dt, tf = sim.t0, sim.dt, sim.tf
    st = {}
    for p in net.populations:
        if isinstance(p, InternalPopulation):
            e = ref_edges(p.v_min, p.v_max, p.dv)
            zb = ref_zero_bins(e)
            st[p.name] = dict(e=e, zb=zb, L=ref_leak(e, zb, p.tau_m.values, p.tau_m.probs),
                              p=ref_p0(e, p.p0.values, p.p0.probs), rate=p.initial_firing_rate, groups=[], pop=p)
        else:
            st[p.name] = dict(f=p.rate, rate=p.rate(t0))
    conns = []
    for c in net.connections:
        if c.nsyn == 0:
            continue
        kmap = {}
        for v, q in zip(c.delays.values, c.delays.probs):
            k = int(np.round(v / dt))
            kmap[k] = kmap.get(k, 0.0) + q
        D = max(kmap)
        src = st[c.source]
        if c.delay_queue is not None:
            queue = list(c.delay_queue)
        elif "f" in src:
            queue = [float(src["f"](t0 - i * dt)) for i in range(D, -1, -1)]
        else:
            queue = [src["rate"]] * (D + 1)
        tgt = st[c.target]
        group = next((g for g in tgt["groups"] if g["w"] == c.weights), None)
        if group is None:
            F, theta = ref_jump(tgt["e"], tgt["zb"], c.weights.values, c.weights.probs)
            group = dict(w=c.weights, F=F, theta=theta, conns=[])
            tgt["groups"].append(group)
        cc = dict(src=c.source, nsyn=c.nsyn, kmap=kmap, D=D, q=queue)
        group["conns"].append(cc)
        conns.append(cc)
    recorded = [p.name for p in net.internal if p.record]
    rows = [[st[name]["rate"] for name in recorded]]
    times = [t0]
    n = 0
    while t0 + n * dt < tf:
        n += 1
        t = t0 + n * dt
        for p in net.populations:
            s = st[p.name]
            if "f" in s:
                s["rate"] = abs(float(s["f"](t)))
                continue
            ip = s["pop"]
            lams = [sum(cc["nsyn"] * sum(q * cc["q"][cc["D"] - k] for k, q in cc["kmap"].items())
                        for cc in g["conns"]) for g in s["groups"]]
            J = s["L"].copy()
            for g, lam in zip(s["groups"], lams):
                J += g["F"] * lam
            x = s["p"].copy()
            if ip.update_method == "approx" and ip.approx_order is None:
                A = J * dt
                term, k, err = x.copy(), 0, np.inf
                while err > ip.tol:
                    k += 1
                    term = A @ term / k
                    x = x + term
                    err = np.linalg.norm(term, ord=ip.norm)
                    assert k < 5000
            elif ip.update_method == "approx":
                term, fact = x.copy(), 1
                for m in range(1, ip.approx_order + 1):
                    fact *= m
                    term = (J @ term) * dt
                    x = x + (1 / fact) * term
            elif ip.update_method == "exact":
                x = scipy.linalg.expm(J * dt) @ x
            else:
                x = np.linalg.solve(np.eye(len(x)) - dt * J, x)
            if ip.update_method != "gmres" and not abs(np.abs(x).sum() - 1) < 1e-12:
                raise SimulationError("mass not conserved")
            if np.any(x < 0) or abs(np.abs(x).sum() - 1) > 1e-15:
                x[x < 0] = 0
                x = x / x.sum()
            s["p"] = x
            flux = sum((g["theta"] * lam for g, lam in zip(s["groups"], lams)), np.zeros(len(x)))
            s["rate"] = float(np.dot(flux, x))
        for cc in conns:
            cc["q"] = cc["q"][1:] + [st[cc["src"]]["rate"]]
        rows.append([st[name]["rate"] for name in recorded])
        times.append(t)
    return np.array(times), np.array(rows).T


# --------------------------------------------------------------------------- networks
def random_network(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    while True:
        v_min = float(rng.choice([0.0, -0.01, -0.02, -0.015, -0.03, -0.0123]))
        v_max = float(rng.choice([0.02, 0.015, 0.0125]))
        dv = float(rng.choice([5e-4, 1e-3, 7e-4, 6e-4, 4e-4]))
        try:
            check_grid(v_min, v_max, dv, "x")
        except ModelError:
            continue
        if math.ceil((v_max - v_min) / dv) <= 70:
            break
    e = ref_edges(v_min, v_max, dv)
    dt = float(rng.choice([1e-4, 2e-4]))
    steps = int(rng.integers(40, 90))
    method = str(rng.choice(["approx", "approx_k", "exact", "gmres"]))
    kw = {}
    if method == "approx":
        kw = dict(update_method="approx", tol=float(rng.choice([1e-14, 1e-12, 1e-10])),
                  norm=float(rng.choice([math.inf, 1.0, 2.0, 3.0])))
    elif method == "approx_k":
        kw = dict(update_method="approx", approx_order=int(rng.integers(1, 4)))
    elif method == "gmres":
        kw = dict(update_method="gmres", tol=1e-14)
    else:
        kw = dict(update_method="exact")

    def tau():
        if rng.random() < 0.5:
            return Dist.delta(float(rng.uniform(0.01, 0.03)))
        vals = rng.uniform(0.01, 0.04, size=3)
        return Dist.parse({"values": list(vals), "probs": [0.25, 0.5, 0.25]})

    def p0():
        r = rng.random()
        if r < 0.4:
            return Dist.delta(0.0)
        # points exactly on interior edges, below v_min and above v_max
        k = int(rng.integers(1, len(e) - 1))
        return Dist.parse({"values": [float(e[k]), float(e[0]) - 0.001, float(e[-1]) + 0.001, float(e[k]) + 1e-5],
                           "probs": [0.5, 0.125, 0.125, 0.25]})

    npop = int(rng.integers(1, 3))
    pops = [InternalPopulation(f"p{i}", tau_m=tau(), v_min=v_min, v_max=v_max, dv=dv, p0=p0(),
                               initial_firing_rate=float(rng.choice([0.0, 3.0])), **kw) for i in range(npop)]
    rate = rng.choice(["const", "heaviside", "sine", "table"])
    ext_rate = {"const": 80.0, "heaviside": "60*Heaviside(t) + 40*Heaviside(t - 0.002)",
                "sine": "50 + 40*sin(300*t)", "table": None}[str(rate)]
    if ext_rate is None:
        ext_rate = parse_rate({"kind": "table", "t": [0.0, 0.004, 0.01], "rate": [10.0, 90.0, 40.0]})
    exts = [ExternalPopulation("bg", parse_rate(ext_rate))]

    def weights():
        r = rng.random()
        if r < 0.45:
            return Dist.delta(float(rng.choice([1, -1]) * rng.uniform(0.3, 3.5) * dv))
        if r < 0.6:
            return Dist.delta(float(rng.choice([0.03, -0.03])))  # wider than the grid
        vals = np.sort(rng.uniform(-2 * dv, 4 * dv, size=4))
        return Dist.parse({"values": list(vals), "probs": [0.1, 0.2, 0.3, 0.4]})

    def delays():
        if rng.random() < 0.5:
            return Dist.delta(float(rng.choice([0.0, 2.5 * dt, 3.5 * dt, 0.001])))
        return Dist.parse({"values": [0.0, 2.5 * dt, 4.5 * dt], "probs": [0.2, 0.3, 0.5]})

    conns = []
    for p in pops:
        conns.append(Connection("bg", p.name, float(rng.choice([5, 7.5, 10])), weights(), delays()))
        if rng.random() < 0.7:
            src = pops[int(rng.integers(0, npop))].name
            d = delays()
            queue = None
            if rng.random() < 0.3:
                D = max(int(np.round(v / dt)) for v in d.values)
                queue = tuple(float(x) for x in rng.uniform(0, 20, size=D + 1))
            conns.append(Connection(src, p.name, float(rng.choice([1, 2.5])), weights(), d, queue))
    conns.append(Connection("bg", pops[0].name, 0, Dist.delta(0.001)))  # nsyn 0: dropped
    return Network(tuple(pops + exts), tuple(conns), Simulation(0.0, steps * dt, dt), f"random{seed}")


def compare(net, tol=1e-9):
    t_ref, r_ref = dense_reference(net)
    res = simulate(net)
    assert np.array_equal(res.t, t_ref)
    scale = max(np.abs(r_ref).max(), 1e-300)
    err = np.abs(res.rates - r_ref).max() / scale
    assert err <= tol, (net.name, err)
    return res


@pytest.mark.parametrize("seed", range(24))
def test_random_networks_follow_the_spec(seed):
    net = random_network(seed)
    try:
        dense_reference(net)
    except SimulationError:
        with pytest.raises(SimulationError, match="mass not conserved|too large"):
            simulate(net)
        return
    compare(net)


def test_random_networks_batched_equal_alone():
    # members of one batch differ in weights, nsyn, tau_m, rates and p0 but share structure
    base = random_network(3)
    nets = []
    for k in range(5):
        conns = tuple(Connection(c.source, c.target, c.nsyn * (1 + 0.1 * k),
                                 c.weights.scaled(1 + 0.05 * k), c.delays, c.delay_queue)
                      for c in base.connections)
        pops = tuple(p if isinstance(p, ExternalPopulation) else
                     InternalPopulation(**{**p.__dict__, "tau_m": p.tau_m.scaled(1 + 0.02 * k)})
                     for p in base.populations)
        nets.append(Network(pops, conns, base.simulation, f"m{k}"))
    batched = simulate_batch(nets)
    for net, b in zip(nets, batched):
        a = simulate(net)
        assert np.array_equal(a.rates, b.rates)
        assert np.array_equal(a.t, b.t)


def special_network(kind: str) -> Network:
    """Hand-picked corners of the method, each compared with the literal reference."""
    method = dict(update_method="gmres", tol=1e-14)
    grid = dict(v_min=-0.02, v_max=0.02, dv=5e-4)  # exact 0 edge: two reset bins
    weights = [Dist.delta(0.003), Dist.delta(-0.004)]
    sim = Simulation(0.0, 0.03, 1e-4)
    if kind == "gmres-vmin0":  # bin 0 is the reset bin and also collects the floor
        grid = dict(v_min=0.0, v_max=0.02, dv=5e-4)
    elif kind == "gmres-one-reset-bin":  # unsnapped edge near 0 (as bmtk's grid)
        grid = dict(v_min=-0.05, v_max=0.02, dv=1e-3)
    elif kind == "gmres-wide-weights":  # weights wider than the grid, both signs
        weights = [Dist.delta(0.05), Dist.delta(-0.05)]
    elif kind == "gmres-small-weights":  # |w| < dv: self-overlaps on the diagonal, offsets +-1
        weights = [Dist.delta(0.0003), Dist.delta(-0.0002)]
    elif kind == "gmres-distributions":
        weights = [Dist.parse({"values": [-0.001, 0.0007, 0.0021, 0.006], "probs": [0.1, 0.2, 0.3, 0.4]}),
                   Dist.parse({"values": [-0.003, -0.0011], "probs": [0.5, 0.5]})]
    elif kind == "gmres-large-dt":  # dt * lambda >> 1: slow Gauss-Seidel convergence
        sim = Simulation(0.0, 0.05, 2e-3)
    elif kind == "approx-narrow-last-bin":
        method = dict(update_method="approx")
        grid = dict(v_min=-0.015, v_max=0.02, dv=3e-4)
    pop = InternalPopulation("e", tau_m=Dist.parse({"values": [0.01, 0.03], "probs": [0.5, 0.5]}), **grid, **method,
                             p0=Dist.parse({"values": [0.0, 0.0051], "probs": [0.5, 0.5]}), initial_firing_rate=2.0)
    exts = (ExternalPopulation("bg", parse_rate("300 + 100*sin(200*t)")), ExternalPopulation("inh", parse_rate(150.0)))
    conns = (Connection("bg", "e", 10, weights[0], Dist.delta(0.0)), Connection("inh", "e", 5, weights[1], Dist.delta(3e-4)),
             Connection("e", "e", 3, weights[0], Dist.delta(1e-3)))
    return Network((pop,) + exts, conns, sim, kind)


SPECIAL = ["gmres-vmin0", "gmres-one-reset-bin", "gmres-wide-weights", "gmres-small-weights", "gmres-distributions",
           "gmres-large-dt", "approx-narrow-last-bin"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_networks_follow_the_spec(kind):
    compare(special_network(kind))


def test_whole_bin_weight_in_a_silent_population_gives_dipdes_roundoff():
    # w = 5 dv: the shifted edges miss the grid edges by float noise; DiPDE keeps the tiny
    # overlaps, so theta is ~1e-17 in columns that do not cross threshold and the rate of a
    # population whose mass is far from threshold is roundoff, not exactly 0
    pop = InternalPopulation("e", v_min=-0.02, v_max=0.02, dv=2e-4, update_method="approx")
    net = Network((ExternalPopulation("bg", parse_rate(100.0)), pop), (Connection("bg", "e", 1, Dist.delta(0.001)),),
                  Simulation(0.0, 3e-4, 1e-4), "silent")
    t_ref, r_ref = dense_reference(net)  # the method's own arithmetic, literally
    res = simulate(net)
    assert np.array_equal(res.t, t_ref)
    assert np.all(r_ref[0, 1:] != 0.0) and np.abs(r_ref[0, 1:]).max() < 1e-12  # roundoff, not 0
    assert np.all(res.rates[0, 1:] != 0.0)
    assert np.abs(res.rates - r_ref).max() <= 1e-6 * np.abs(r_ref[0, 1:]).max()


@pytest.mark.parametrize("grid", [dict(v_min=-0.02, v_max=0.02, dv=5e-4), dict(v_min=0.0, v_max=0.02, dv=5e-4),
                                  dict(v_min=-0.05, v_max=0.02, dv=1e-3)])
def test_gmres_with_a_narrow_band_is_solved_directly_and_follows_the_spec(grid):
    # jumps of a bin or two both ways, strong inputs: solved by the banded direct solver
    # (one solve per step, counted as one iteration) and equal to the literal method
    pop = InternalPopulation("e", tau_m=Dist.delta(0.01), update_method="gmres", tol=1e-14,
                             p0=Dist.parse({"values": [0.0, 0.0051], "probs": [0.5, 0.5]}), **grid)
    exts = (ExternalPopulation("bg", parse_rate("3000 + 1000*sin(200*t)")), ExternalPopulation("inh", parse_rate(800.0)))
    conns = (Connection("bg", "e", 4, Dist.delta(grid["dv"] * 1.5)), Connection("inh", "e", 3, Dist.delta(-grid["dv"] * 2)),
             Connection("e", "e", 20, Dist.delta(grid["dv"] * 0.7), Dist.delta(2e-4)))
    net = Network((pop,) + exts, conns, Simulation(0.0, 0.02, 2e-4), "banded")
    res = compare(net)
    assert res.info["iterations"]["e"] == 100  # one direct solve per step


def test_gmres_switches_to_the_direct_solve_when_sweeps_cost_more_and_follows_the_spec():
    # jumps reaching 17 bins up and 3 down are too wide a band to factorise up front
    # (kl * ku + 4 (kl + ku) = 131 > 96), but with strong inhibition at a large dt Gauss-Seidel
    # needs hundreds of sweeps a step (1506 for the first): it stops after about twice a direct
    # solve's cost (20 sweeps here) and that population is solved directly from then on (one
    # iteration a step). Still equal to the literal method, and alone equal to in a batch (a
    # member switches by its own sweeps)
    def net(k):
        pop = InternalPopulation("e", tau_m=Dist.delta(0.01), v_min=-0.02, v_max=0.02, dv=5e-4, update_method="gmres",
                                 tol=1e-12, p0=Dist.parse({"values": [0.0, 0.0051], "probs": [0.5, 0.5]}))
        exts = (ExternalPopulation("bg", parse_rate(f"{300 + 50 * k} + 100*sin(200*t)")),
                ExternalPopulation("inh", parse_rate(2000.0)))
        w = Dist.parse({"values": [0.001, 0.004, 0.008], "probs": [0.4, 0.4, 0.2]})
        conns = (Connection("bg", "e", 10, w.scaled(1 + 0.02 * k)), Connection("inh", "e", 20, Dist.delta(-0.0012)))
        return Network((pop,) + exts, conns, Simulation(0.0, 0.1, 2e-3), f"switch{k}")

    nets = [net(k) for k in range(3)]
    steps = 50
    for n_, batched in zip(nets, simulate_batch(nets)):
        alone = compare(n_)
        assert steps < alone.info["iterations"]["e"] < 2 * steps
        assert np.array_equal(alone.rates, batched.rates)
