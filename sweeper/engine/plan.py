"""Turn a batch of same-structure networks into the flat arrays the compiled loop steps.

Structure (shared by the batch): time grid, populations and their grids and methods,
connection topology, delay step counts, grouping of connections into input groups.
Per member: leak rates (tau_m), jump operators (weights), nsyn, delay probabilities,
initial densities and rates, external rates, tolerances.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache, wraps

import numpy as np

from ..errors import ModelError
from ..model import ConstantRate, Dist, ExternalPopulation, InternalPopulation, Network
from .delays import delay_kernel
from .grid import edges, initial_density, zero_bins
from .operators import jump_operator, leak_dest, leak_rates
from .propagate import APPROX_ORDER, APPROX_TOL, BACKWARD_EULER, EXACT

CACHE_BYTES = 64 * 2**20  # per operator cache: a worker's memory must not grow with the sweep


def _nbytes(obj) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(x) for x in obj)
    return sum(_nbytes(x) for x in vars(obj).values()) if hasattr(obj, "__dict__") else 0


def _bytes_cache(fn):
    """Like ``lru_cache``, but holding at most CACHE_BYTES of arrays (operators can be large:
    a 200-point weight distribution on 2000 bins is megabytes). Thread-safe: local workers are
    threads."""
    entries: OrderedDict = OrderedDict()
    size = 0
    lock = threading.Lock()

    @wraps(fn)
    def cached(*key):
        nonlocal size
        with lock:
            if key in entries:
                entries.move_to_end(key)
                return entries[key][0]
        value = fn(*key)
        nbytes = _nbytes(value)
        with lock:
            if key not in entries:
                entries[key] = (value, nbytes)
                size += nbytes
                while size > CACHE_BYTES and len(entries) > 1:
                    _, (_, dropped) = entries.popitem(last=False)
                    size -= dropped
        return value

    def cache_clear():
        nonlocal size
        with lock:
            entries.clear()
            size = 0

    cached.cache_bytes = lambda: size
    cached.cache_clear = cache_clear
    return cached

def method_code(pop: InternalPopulation) -> int:
    """The kernel's code for a population's update method."""
    if pop.update_method == "gmres":
        return BACKWARD_EULER
    if pop.update_method == "exact":
        return EXACT
    return APPROX_TOL if pop.approx_order is None else APPROX_ORDER


def active_connections(net: Network):
    """Connections the engine simulates: those with nsyn != 0, in network order."""
    return [c for c in net.connections if c.nsyn != 0]


def n_steps(sim) -> int:
    """Steps taken by ``while t0 + n*dt < tf`` (spec §11)."""
    t0, tf, dt = float(sim.t0), float(sim.tf), float(sim.dt)
    n = max(0, int((tf - t0) / dt))
    while n > 0 and t0 + (n - 1) * dt >= tf:
        n -= 1
    while t0 + n * dt < tf:
        n += 1
    return n


def _groups(net: Network, conns) -> list[int]:
    """Input-group number of each connection: same target and identical weights share one."""
    keys: dict[tuple, int] = {}
    out = []
    for c in conns:
        out.append(keys.setdefault((c.target, c.weights), len(keys)))
    return out


def structure_key(net: Network):
    """Hashable key: networks with equal keys can be stepped together in one batch."""
    sim = net.simulation
    index = {p.name: i for i, p in enumerate(net.populations)}
    pops = []
    for p in net.populations:
        if isinstance(p, InternalPopulation):
            pops.append(("internal", p.name, float(p.v_min), float(p.v_max), float(p.dv),
                         method_code(p), p.approx_order, bool(p.record)))
        else:
            pops.append(("external", p.name))
    conns = active_connections(net)
    groups = _groups(net, conns)
    ctuple = tuple((index.get(c.source, -1), index.get(c.target, -1),
                    _delay_kernel(c.delays.values, c.delays.probs, float(sim.dt))[0] if sim.dt else (),
                    c.delay_queue is not None, g) for c, g in zip(conns, groups))
    return (float(sim.t0), float(sim.tf), float(sim.dt), tuple(pops), ctuple)


@lru_cache(maxsize=512)
def _grid(v_min: float, v_max: float, dv: float):
    e = edges(v_min, v_max, dv)
    zb = zero_bins(e)
    n = len(e) - 1
    dest = leak_dest(n, zb)
    for arr in (e, dest):
        arr.setflags(write=False)
    return e, zb, dest


@_bytes_cache
def _jump(v_min: float, v_max: float, dv: float, values: tuple, probs: tuple):
    J = jump_operator(_grid(v_min, v_max, dv)[0], values, probs)
    for arr in (J.offsets, J.values, J.diag, J.theta, J.floor):
        arr.setflags(write=False)
    return J


@_bytes_cache
def _leak(v_min: float, v_max: float, dv: float, values: tuple, probs: tuple) -> np.ndarray:
    e, zb, _ = _grid(v_min, v_max, dv)
    lk = leak_rates(e, zb, values, probs)
    lk.setflags(write=False)
    return lk


@_bytes_cache
def _p0(v_min: float, v_max: float, dv: float, values: tuple, probs: tuple) -> np.ndarray:
    p = initial_density(_grid(v_min, v_max, dv)[0], values, probs, "p0")
    p.setflags(write=False)
    return p


def _diagonals(dest: np.ndarray, lk: np.ndarray, jumps: list):
    """The off-diagonal part of one population's J as diagonals (DIA), for the kernel.

    Returns (offsets, tags, merged index, values): ``offsets`` are the distinct
    row - column offsets, +-1 (the leak) last; each contribution c is a length-n vector
    ``values[c]`` tagged 0 for the leak and 1 + g for input group g, added into diagonal
    ``merged index[c]``.
    """
    n = len(lk)
    keys, vecs = [], []
    for g, J in enumerate(jumps):
        for off, vec in zip(J.offsets.tolist(), J.values):
            keys.append((g + 1, off))
            vecs.append(vec)
    up = np.zeros(n)    # bins below the reset bins leak up: entry (k+1, k), offset +1
    down = np.zeros(n)  # bins above leak down: entry (k-1, k), offset -1
    src = np.flatnonzero(dest >= 0)
    rising = dest[src] > src
    up[dest[src[rising]]] = lk[src[rising]]
    down[dest[src[~rising]]] = lk[src[~rising]]
    for off, vec in ((1, up), (-1, down)):
        if rising.any() if off == 1 else (~rising).any():
            keys.append((0, off))
            vecs.append(vec)
    offsets = sorted({o for _, o in keys}, key=lambda o: (abs(o) == 1, o))
    index = {o: m for m, o in enumerate(offsets)}
    order = sorted(range(len(keys)), key=lambda c: (index[keys[c][1]], keys[c][0]))
    tags = np.array([keys[c][0] for c in order], dtype=np.int64)
    merged = np.array([index[keys[c][1]] for c in order], dtype=np.int64)
    values = np.array([vecs[c] for c in order]).reshape(len(order), n)
    return np.array(offsets, dtype=np.int64), tags, merged, values


@_bytes_cache
def _pop_diagonals(grid: tuple, tau: tuple, jump_keys: tuple):
    """:func:`_diagonals` of a population with grid (v_min, v_max, dv), tau_m (values, probs)
    and one (values, probs) weight key per input group, and whether no input moves mass
    down (cached: members of a sweep often share them)."""
    jumps = [_jump(*grid, *key) for key in jump_keys]
    offsets, tags, merged, values = _diagonals(_grid(*grid)[2], _leak(*grid, *tau), jumps)
    up_only = not any((J.offsets < 0).any() or J.floor.any() for J in jumps)
    values = values.ravel()
    for arr in (offsets, tags, merged, values):
        arr.setflags(write=False)
    return offsets, tags, merged, values, up_only


@lru_cache(maxsize=1024)
def _delay_kernel(values: tuple, probs: tuple, dt: float):
    """:func:`delay_kernel` of a delay distribution, cached (called per member and connection)."""
    return delay_kernel(Dist(values, probs), dt)


def clear_caches() -> None:
    """Forget every cached grid, operator and delay kernel (benchmarks time cold starts)."""
    from .grid import _grid_problem
    for fn in (_grid, _jump, _leak, _p0, _pop_diagonals, _delay_kernel, _grid_problem):
        fn.cache_clear()


def _rate_values(rate, t: np.ndarray, where: str) -> np.ndarray:
    """Evaluate an external rate at times t and apply dipde's checks (spec §2.2)."""
    if isinstance(rate, ConstantRate) and rate.value >= 0:
        return np.full(t.shape, float(rate.value))
    try:
        v = np.asarray(rate(t), dtype=float)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's callable may raise anything
        raise ModelError(f"rate could not be evaluated: {exc}", where) from None
    v = np.broadcast_to(v, t.shape).astype(float)
    bad = ~np.isfinite(v) | (v <= -1e-14)
    if bad.any():
        i = int(np.argmax(bad))
        raise ModelError(f"rate is {v[i]!r} Hz at t={t[i]!r} (rates must be finite and >= 0)", where)
    return np.abs(v)


@dataclass
class Plan:
    """Flat arrays for :func:`sweeper.engine.propagate.run_members` (see there)."""

    nets: list
    steps: int
    t: np.ndarray
    internal: list          # internal population names, network order
    recorded: list          # indices into internal of recorded populations
    args: tuple


def build_plan(nets: list[Network]) -> Plan:
    """Arrays for a batch of networks that all share ``structure_key``."""
    net0 = nets[0]
    sim = net0.simulation
    t0, dt = float(sim.t0), float(sim.dt)
    steps = n_steps(sim)
    t = t0 + np.arange(steps + 1, dtype=float) * dt
    B = len(nets)

    ints = [p for p in net0.populations if isinstance(p, InternalPopulation)]
    exts = [p for p in net0.populations if isinstance(p, ExternalPopulation)]
    iidx = {p.name: i for i, p in enumerate(ints)}
    eidx = {p.name: i for i, p in enumerate(exts)}
    P, E = len(ints), len(exts)

    grids = [_grid(float(p.v_min), float(p.v_max), float(p.dv)) for p in ints]
    nbins = np.array([len(g[0]) - 1 for g in grids], dtype=np.int64)
    boff = np.zeros(P + 1, dtype=np.int64)
    boff[1:] = np.cumsum(nbins)
    N = int(boff[-1])
    zb0s = np.array([g[1][0] for g in grids], dtype=np.int64)
    zb1s = np.array([g[1][1] if len(g[1]) > 1 else -1 for g in grids], dtype=np.int64)
    method = np.array([method_code(p) for p in ints], dtype=np.int64)
    approx_order = np.array([p.approx_order or 0 for p in ints], dtype=np.int64)

    conns0 = active_connections(net0)
    groups0 = _groups(net0, conns0)
    # global group numbering: by target population, then first appearance
    first: dict[int, tuple[int, int]] = {}
    for c, g in zip(conns0, groups0):
        first.setdefault(g, (iidx[c.target], g))
    gorder = sorted(first, key=lambda g: first[g])
    gmap = {g: k for k, g in enumerate(gorder)}
    G = len(gorder)
    gpop = np.array([first[g][0] for g in gorder], dtype=np.int64)
    gstart = np.searchsorted(gpop, np.arange(P + 1)).astype(np.int64)
    gboff = np.zeros(G + 1, dtype=np.int64)
    gboff[1:] = np.cumsum(nbins[gpop]) if G else []
    GB = int(gboff[-1])

    C = len(conns0)
    c_group = np.array([gmap[g] for g in groups0], dtype=np.int64)
    c_srckind = np.array([0 if c.source in iidx else 1 for c in conns0], dtype=np.int64)
    c_src = np.array([iidx.get(c.source, eidx.get(c.source, -1)) for c in conns0], dtype=np.int64)
    kernels0 = [delay_kernel(c.delays, dt) for c in conns0]
    c_D = np.array([max(ks) for ks, _ in kernels0], dtype=np.int64)
    c_kptr = np.zeros(C + 1, dtype=np.int64)
    c_kptr[1:] = np.cumsum([len(ks) for ks, _ in kernels0])
    c_ks = np.array([k for ks, _ in kernels0 for k in ks], dtype=np.int64)
    c_hoff = np.zeros(C + 1, dtype=np.int64)
    c_hoff[1:] = np.cumsum(c_D + 1 + steps)
    tgt = np.array([iidx[c.target] for c in conns0], dtype=np.int64)
    pconn = np.argsort(tgt, kind="stable").astype(np.int64)
    pconn_ptr = np.searchsorted(tgt[pconn], np.arange(P + 1)).astype(np.int64)

    leak = np.zeros((B, N))
    p0 = np.zeros((B, N))
    rate0 = np.zeros((B, P))
    tol = np.zeros((B, P))
    normord = np.zeros((B, P))
    theta = np.zeros((B, GB))
    floor = np.zeros((B, GB))
    gdiag = np.zeros((B, GB))
    dptr = np.zeros((B, P), dtype=np.int64)
    up_only = np.zeros((B, P), dtype=np.bool_)
    dcnt = np.zeros((B, P), dtype=np.int64)
    cptr = np.zeros((B, P), dtype=np.int64)
    ccnt = np.zeros((B, P), dtype=np.int64)
    offs_l, tags_l, merged_l, vals_l = [], [], [], []
    noff = ncon = 0
    c_pk = np.zeros((B, len(c_ks)))
    c_nsyn = np.zeros((B, C))
    ext_now = np.zeros((B, E, steps + 1))
    hist = np.zeros((B, int(c_hoff[-1])))

    for b, net in enumerate(nets):
        name = net.name
        pops = {p.name: p for p in net.populations}
        conns = active_connections(net)
        jumps: dict[int, object] = {}
        jkeys: dict[int, tuple] = {}
        for c, g in zip(conns, _groups(net, conns)):
            gg = gmap[g]
            if gg not in jumps:
                tp = pops[c.target]
                jkeys[gg] = (c.weights.values, c.weights.probs)
                J = jumps[gg] = _jump(float(tp.v_min), float(tp.v_max), float(tp.dv), *jkeys[gg])
                theta[b, gboff[gg]:gboff[gg + 1]] = J.theta
                floor[b, gboff[gg]:gboff[gg + 1]] = J.floor
                gdiag[b, gboff[gg]:gboff[gg + 1]] = J.diag
        for i, pname in enumerate(iidx):
            p = pops[pname]
            where = f"{name}: populations[{p.name!r}]"
            o, n = boff[i], int(nbins[i])
            grid = (float(p.v_min), float(p.v_max), float(p.dv))
            lk = _leak(*grid, p.tau_m.values, p.tau_m.probs)
            leak[b, o:o + n] = lk
            try:
                p0[b, o:o + n] = _p0(*grid, p.p0.values, p.p0.probs)
            except ModelError as exc:
                raise ModelError(exc.message, f"{where}.p0") from None
            rate0[b, i] = p.initial_firing_rate
            tol[b, i] = min(p.tol, 1e-12) if p.update_method == "gmres" else p.tol
            normord[b, i] = float(p.norm)
            gs = range(gstart[i], gstart[i + 1])
            offsets, tags, merged, values, up = _pop_diagonals(
                grid, (p.tau_m.values, p.tau_m.probs), tuple(jkeys[g] for g in gs))
            dptr[b, i], dcnt[b, i] = noff, len(offsets)
            # no input moves mass down: then nothing reaches the bins below the density's
            # lowest occupied bin (under the reset bins), and the kernel skips them exactly
            up_only[b, i] = up
            cptr[b, i], ccnt[b, i] = ncon, len(tags)
            offs_l.append(offsets)
            tags_l.append(tags)
            merged_l.append(merged)
            vals_l.append(values)
            noff += len(offsets)
            ncon += len(tags)
        for k, ename in enumerate(eidx):
            ext_now[b, k] = _rate_values(pops[ename].rate, t, f"{name}: populations[{ename!r}].rate")
        for ci, c in enumerate(conns):
            ks, pk = _delay_kernel(c.delays.values, c.delays.probs, dt)
            c_pk[b, c_kptr[ci]:c_kptr[ci + 1]] = pk
            c_nsyn[b, ci] = float(c.nsyn)
            D = int(c_D[ci])
            h = c_hoff[ci]
            where = f"{name}: connections[{c.source}->{c.target}]"
            if c.delay_queue is not None:
                q = np.asarray(c.delay_queue, dtype=float)
            elif c.source in eidx:
                ts = t0 - np.arange(D, -1, -1, dtype=float) * dt  # oldest first: t0 - D*dt ... t0
                q = _rate_values(pops[c.source].rate, ts, f"{name}: populations[{c.source!r}].rate")
            else:
                q = np.full(D + 1, float(pops[c.source].initial_firing_rate))
            if len(q) != D + 1:
                raise ModelError(f"delay_queue has {len(q)} entries, the delays need {D + 1}",
                                 f"{where}.delay_queue")
            hist[b, h:h + D + 1] = q

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
    doff, ctag, cm = cat(offs_l, np.int64), cat(tags_l, np.int64), cat(merged_l, np.int64)
    DV = cat(vals_l, np.float64)
    # where each contribution's vector starts in DV
    sizes = np.concatenate([np.full(len(t), nbins[i]) for (b_, i), t in
                            zip(((b_, i) for b_ in range(B) for i in range(P)), tags_l)]) if tags_l else []
    cvoff = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(sizes) else np.zeros(0, np.int64)
    recorded = [i for i, p in enumerate(ints) if p.record]
    th_any = np.zeros((B, G), dtype=np.bool_)
    fl_any = np.zeros((B, G), dtype=np.bool_)
    for g in range(G):
        th_any[:, g] = np.any(theta[:, gboff[g]:gboff[g + 1]] != 0, axis=1)
        fl_any[:, g] = np.any(floor[:, gboff[g]:gboff[g + 1]] != 0, axis=1)
    args = (steps, dt, P, nbins, boff, method, approx_order, tol, normord,
            zb0s, zb1s, gstart, gboff, leak, gdiag, theta, floor, th_any, fl_any, up_only,
            dptr, dcnt, doff, cptr, ccnt, ctag, cm, cvoff, DV, p0, rate0,
            c_srckind, c_src, c_group, c_D, c_kptr, c_ks, c_pk, c_nsyn, c_hoff, pconn_ptr, pconn,
            ext_now, hist)
    return Plan(nets, steps, t, [p.name for p in ints], recorded, args)


def fail_reason(code: int, method: str) -> str:
    """The message for a member's failure code from the kernel."""
    from . import propagate as pr
    if code == pr.FAIL_MASS:
        return ("probability mass not conserved (|sum(p) - 1| >= 1e-12): dt is too large or dv too "
                f"small for update_method {method!r}; use a smaller dt or update_method 'gmres'")
    if code == pr.FAIL_SERIES:
        return (f"update_method {method!r} cannot step this network: dt*||J|| is too large (the "
                "Taylor series does not converge or the rates ran away); use a smaller dt or 'gmres'")
    if code == pr.FAIL_NEGATIVE_TOTAL:
        return "density lost all its mass (no positive entries left)"
    return "firing rate became non-finite (NaN or inf)"
