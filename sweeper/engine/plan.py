"""Turn a batch of same-structure networks into the flat arrays the compiled loop steps.

Structure (shared by the batch): time grid, populations and their grids and methods,
connection topology, delay step counts, grouping of connections into input groups.
Per member: leak rates (tau_m), jump operators (weights), nsyn, delay probabilities,
initial densities and rates, external rates, tolerances.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..model import ExternalPopulation, InternalPopulation, Network
from . import caches
from .caches import clear_caches  # noqa: F401  (benchmarks clear the caches through here)
from .check import initial_density, queue_times, rate_values
from .methods import METHODS
from .timeaxis import n_steps, sample_times

__all__ = ["Plan", "build_plan", "structure_key", "active_connections", "n_steps", "clear_caches"]


def method_code(pop: InternalPopulation) -> int:
    """The kernel's code for a population's update method."""
    return METHODS[pop.update_method].kernel_code(pop.approx_order)


def active_connections(net: Network):
    """Connections the engine simulates: those with nsyn != 0, in network order."""
    return [c for c in net.connections if c.nsyn != 0]


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
                    caches.delays(c.delays.values, c.delays.probs, float(sim.dt))[0] if sim.dt else (),
                    c.delay_queue is not None, g) for c, g in zip(conns, groups))
    return (float(sim.t0), float(sim.tf), float(sim.dt), tuple(pops), ctuple)


def _arr(values, dtype=np.int64) -> np.ndarray:
    return np.array(values, dtype=dtype)


@dataclass
class Plan:
    """What :func:`sweeper.engine.propagate.run_members` steps, by name.

    The fields after ``recorded`` are the kernel's arguments (same names): ``b`` indexes
    members, ``i`` internal populations, ``g`` input groups, ``c`` connections. Flat
    per-population vectors are concatenated (population i's bins at ``boff[i]:boff[i+1]``,
    group g's at ``gboff[g]:gboff[g+1]``).
    """

    nets: list = field(repr=False)
    t: np.ndarray = field(repr=False)   # sample times
    internal: list = field(default_factory=list)   # internal population names, network order
    recorded: list = field(default_factory=list)   # indices into internal of recorded populations
    # time axis and populations
    steps: int = 0
    dt: float = 0.0
    n_pop: int = 0
    nbins: np.ndarray = None            # (P,) bins per population
    boff: np.ndarray = None             # (P+1,) offsets of each population's bins
    method: np.ndarray = None           # (P,) kernel code (codes.py)
    implicit: np.ndarray = None         # (P,) the method solves a linear system per step
    scaled: np.ndarray = None           # (P,) the operator is assembled as dt * J
    approx_order: np.ndarray = None     # (P,) fixed Taylor order (0: none)
    tol: np.ndarray = None              # (B, P) tolerance the kernel runs at
    normord: np.ndarray = None          # (B, P) norm of the Taylor stopping test
    zb0s: np.ndarray = None             # (P,) first reset bin
    zb1s: np.ndarray = None             # (P,) second reset bin or -1
    # input groups (connections to one target with identical weights)
    gstart: np.ndarray = None           # (P+1,) population i's groups are gstart[i]:gstart[i+1]
    gboff: np.ndarray = None            # (G+1,) offsets of each group's bins
    leak: np.ndarray = None             # (B, N) leak rate of every bin
    gdiag: np.ndarray = None            # (B, GB) main diagonal of each group's jump operator
    theta: np.ndarray = None            # (B, GB) threshold flux row of each group
    floor: np.ndarray = None            # (B, GB) row of mass pushed below v_min
    th_any: np.ndarray = None           # (B, G) theta has a nonzero entry
    fl_any: np.ndarray = None           # (B, G) floor has a nonzero entry
    up_only: np.ndarray = None          # (B, P) no input moves mass down
    # each population's off-diagonals (DIA, see caches._diagonals)
    dptr: np.ndarray = None             # (B, P) first offset in doff
    dcnt: np.ndarray = None             # (B, P) number of offsets
    doff: np.ndarray = None             # offsets, all populations and members concatenated
    cptr: np.ndarray = None             # (B, P) first contribution in ctag/cm/cvoff
    ccnt: np.ndarray = None             # (B, P) number of contributions
    ctag: np.ndarray = None             # contribution's source: 0 leak, 1 + g group g
    cm: np.ndarray = None               # contribution's diagonal (index into the offsets)
    cvoff: np.ndarray = None            # where the contribution's vector starts in DV
    DV: np.ndarray = None               # the contributions' vectors
    # initial state
    p0: np.ndarray = None               # (B, N) initial densities
    rate0: np.ndarray = None            # (B, P) initial firing rates
    # connections and delays
    c_srckind: np.ndarray = None        # (C,) 0 internal, 1 external source
    c_src: np.ndarray = None            # (C,) source index among internal or external
    c_group: np.ndarray = None          # (C,) input group
    c_D: np.ndarray = None              # (C,) longest delay in steps
    c_kptr: np.ndarray = None           # (C+1,) connection c's delay steps at c_ks[c_kptr[c]:c_kptr[c+1]]
    c_ks: np.ndarray = None             # delay step counts
    c_pk: np.ndarray = None             # (B, K) their probabilities
    c_nsyn: np.ndarray = None           # (B, C)
    c_hoff: np.ndarray = None           # (C+1,) offsets of each connection's rate history
    pconn_ptr: np.ndarray = None        # (P+1,) population i's incoming connections ...
    pconn: np.ndarray = None            # ... are pconn[pconn_ptr[i]:pconn_ptr[i+1]]
    ext_now: np.ndarray = None          # (B, E, steps+1) external rates at the sample times
    hist: np.ndarray = None             # (B, H) rate histories, initial queues filled in

    def kernel_args(self) -> dict:
        """The kernel's arguments by name."""
        skip = {"nets", "t", "internal", "recorded"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def build_plan(nets: list[Network]) -> Plan:
    """Arrays for a batch of networks that all share ``structure_key``."""
    net0 = nets[0]
    plan = Plan(nets, sample_times(net0.simulation))
    plan.steps, plan.dt = n_steps(net0.simulation), float(net0.simulation.dt)
    ints = [p for p in net0.populations if isinstance(p, InternalPopulation)]
    layout = _population_layout(plan, ints)
    groups = _group_layout(plan, net0, layout)
    _connection_layout(plan, net0, layout, groups)
    _allocate(plan, len(nets), layout)
    diagonals = _Diagonals()
    for b, net in enumerate(nets):
        jumps = _member_jumps(net, groups)
        _fill_groups(plan, b, jumps)
        _fill_populations(plan, b, net, layout, jumps, diagonals)
        _fill_connections(plan, b, net, layout)
    _concat_diagonals(plan, diagonals)
    plan.internal = [p.name for p in ints]
    plan.recorded = [i for i, p in enumerate(ints) if p.record]
    return plan


@dataclass
class _Layout:
    """Names and sizes of a batch's populations."""

    iidx: dict
    eidx: dict
    N: int


def _population_layout(plan: Plan, ints: list) -> _Layout:
    net0 = plan.nets[0]
    exts = [p for p in net0.populations if isinstance(p, ExternalPopulation)]
    grids = [caches.grid(float(p.v_min), float(p.v_max), float(p.dv)) for p in ints]
    P = len(ints)
    plan.n_pop = P
    plan.nbins = _arr([len(g[0]) - 1 for g in grids])
    plan.boff = np.zeros(P + 1, dtype=np.int64)
    plan.boff[1:] = np.cumsum(plan.nbins)
    plan.zb0s = _arr([g[1][0] for g in grids])
    plan.zb1s = _arr([g[1][1] if len(g[1]) > 1 else -1 for g in grids])
    plan.method = _arr([method_code(p) for p in ints])
    plan.implicit = _arr([METHODS[p.update_method].implicit for p in ints], np.bool_)
    plan.scaled = _arr([METHODS[p.update_method].scaled_operator(p.approx_order) for p in ints], np.bool_)
    plan.approx_order = _arr([p.approx_order or 0 for p in ints])
    return _Layout({p.name: i for i, p in enumerate(ints)}, {p.name: i for i, p in enumerate(exts)},
                   int(plan.boff[-1]))


def _group_layout(plan: Plan, net0: Network, layout: _Layout) -> dict:
    """Global group numbering (by target population, then first appearance); returns the
    map from a network's own group numbers to it."""
    conns0 = active_connections(net0)
    first: dict[int, tuple[int, int]] = {}
    for c, g in zip(conns0, _groups(net0, conns0)):
        first.setdefault(g, (layout.iidx[c.target], g))
    gorder = sorted(first, key=lambda g: first[g])
    gpop = _arr([first[g][0] for g in gorder])
    plan.gstart = np.searchsorted(gpop, np.arange(plan.n_pop + 1)).astype(np.int64)
    plan.gboff = np.zeros(len(gorder) + 1, dtype=np.int64)
    plan.gboff[1:] = np.cumsum(plan.nbins[gpop]) if len(gorder) else []
    return {g: k for k, g in enumerate(gorder)}


def _connection_layout(plan: Plan, net0: Network, layout: _Layout, gmap: dict) -> None:
    conns0 = active_connections(net0)
    iidx, eidx = layout.iidx, layout.eidx
    C = len(conns0)
    plan.c_group = _arr([gmap[g] for g in _groups(net0, conns0)])
    plan.c_srckind = _arr([0 if c.source in iidx else 1 for c in conns0])
    plan.c_src = _arr([iidx.get(c.source, eidx.get(c.source, -1)) for c in conns0])
    kernels0 = [caches.delays(c.delays.values, c.delays.probs, plan.dt) for c in conns0]
    plan.c_D = _arr([max(ks) for ks, _ in kernels0])
    plan.c_kptr = np.zeros(C + 1, dtype=np.int64)
    plan.c_kptr[1:] = np.cumsum([len(ks) for ks, _ in kernels0])
    plan.c_ks = _arr([k for ks, _ in kernels0 for k in ks])
    plan.c_hoff = np.zeros(C + 1, dtype=np.int64)
    plan.c_hoff[1:] = np.cumsum(plan.c_D + 1 + plan.steps)
    tgt = _arr([iidx[c.target] for c in conns0])
    plan.pconn = np.argsort(tgt, kind="stable").astype(np.int64)
    plan.pconn_ptr = np.searchsorted(tgt[plan.pconn], np.arange(plan.n_pop + 1)).astype(np.int64)


def _allocate(plan: Plan, B: int, layout: _Layout) -> None:
    P, N, GB, G = plan.n_pop, layout.N, int(plan.gboff[-1]), len(plan.gboff) - 1
    for name in ("leak", "p0"):
        setattr(plan, name, np.zeros((B, N)))
    for name in ("rate0", "tol", "normord"):
        setattr(plan, name, np.zeros((B, P)))
    for name in ("theta", "floor", "gdiag"):
        setattr(plan, name, np.zeros((B, GB)))
    for name in ("dptr", "dcnt", "cptr", "ccnt"):
        setattr(plan, name, np.zeros((B, P), dtype=np.int64))
    plan.up_only = np.zeros((B, P), dtype=np.bool_)
    plan.th_any = np.zeros((B, G), dtype=np.bool_)
    plan.fl_any = np.zeros((B, G), dtype=np.bool_)
    plan.c_pk = np.zeros((B, len(plan.c_ks)))
    plan.c_nsyn = np.zeros((B, len(plan.c_D)))
    plan.ext_now = np.zeros((B, len(layout.eidx), plan.steps + 1))
    plan.hist = np.zeros((B, int(plan.c_hoff[-1])))


def _member_jumps(net: Network, gmap: dict) -> dict:
    """Global group -> (target population, weight key) of one member."""
    pops = {p.name: p for p in net.populations}
    conns = active_connections(net)
    out: dict = {}
    for c, g in zip(conns, _groups(net, conns)):
        out.setdefault(gmap[g], (pops[c.target], (c.weights.values, c.weights.probs)))
    return out


def _fill_groups(plan: Plan, b: int, jumps: dict) -> None:
    for gg, (tp, key) in jumps.items():
        J = caches.jump(float(tp.v_min), float(tp.v_max), float(tp.dv), *key)
        sl = slice(plan.gboff[gg], plan.gboff[gg + 1])
        plan.theta[b, sl] = J.theta
        plan.floor[b, sl] = J.floor
        plan.gdiag[b, sl] = J.diag
        plan.th_any[b, gg] = np.any(J.theta != 0)
        plan.fl_any[b, gg] = np.any(J.floor != 0)


def _fill_populations(plan: Plan, b: int, net: Network, layout: _Layout, jumps: dict,
                      diagonals: "_Diagonals") -> None:
    pops = {p.name: p for p in net.populations}
    jkeys = {gg: key for gg, (_, key) in jumps.items()}
    for i, pname in enumerate(layout.iidx):
        p = pops[pname]
        o, n = plan.boff[i], int(plan.nbins[i])
        grid = (float(p.v_min), float(p.v_max), float(p.dv))
        plan.leak[b, o:o + n] = caches.leak(*grid, p.tau_m.values, p.tau_m.probs)
        plan.p0[b, o:o + n] = initial_density(p, f"{net.name}: populations[{p.name!r}]")
        plan.rate0[b, i] = p.initial_firing_rate
        plan.tol[b, i] = METHODS[p.update_method].effective_tol(p.tol)
        plan.normord[b, i] = float(p.norm)
        gs = range(plan.gstart[i], plan.gstart[i + 1])
        offsets, tags, merged, values, up = caches.pop_diagonals(
            grid, (p.tau_m.values, p.tau_m.probs), tuple(jkeys[g] for g in gs))
        plan.dptr[b, i], plan.dcnt[b, i] = diagonals.noff, len(offsets)
        plan.cptr[b, i], plan.ccnt[b, i] = diagonals.ncon, len(tags)
        # no input moves mass down: then nothing reaches the bins below the density's
        # lowest occupied bin (under the reset bins), and the kernel skips them exactly
        plan.up_only[b, i] = up
        diagonals.add(offsets, tags, merged, values, n)


def _fill_connections(plan: Plan, b: int, net: Network, layout: _Layout) -> None:
    pops = {p.name: p for p in net.populations}
    t0, dt = float(net.simulation.t0), plan.dt
    for k, ename in enumerate(layout.eidx):
        plan.ext_now[b, k] = rate_values(pops[ename].rate, plan.t, f"{net.name}: populations[{ename!r}].rate")
    for ci, c in enumerate(active_connections(net)):
        _, pk = caches.delays(c.delays.values, c.delays.probs, dt)
        plan.c_pk[b, plan.c_kptr[ci]:plan.c_kptr[ci + 1]] = pk
        plan.c_nsyn[b, ci] = float(c.nsyn)
        D, h = int(plan.c_D[ci]), plan.c_hoff[ci]
        if c.delay_queue is not None:  # its length was checked by check_network
            q = np.asarray(c.delay_queue, dtype=float)
        elif c.source in layout.eidx:
            q = rate_values(pops[c.source].rate, queue_times(c, t0, dt), f"{net.name}: populations[{c.source!r}].rate")
        else:
            q = np.full(D + 1, float(pops[c.source].initial_firing_rate))
        plan.hist[b, h:h + D + 1] = q


class _Diagonals:
    """Every (member, population)'s diagonals, in order, and how many offsets and
    contributions came before."""

    def __init__(self):
        self.parts: list = []
        self.noff = self.ncon = 0

    def add(self, offsets, tags, merged, values, n: int) -> None:
        self.parts.append((offsets, tags, merged, values, n))
        self.noff += len(offsets)
        self.ncon += len(tags)


def _concat_diagonals(plan: Plan, diagonals: _Diagonals) -> None:
    """Concatenate the diagonals; cvoff: where each contribution's vector starts in DV."""
    parts = diagonals.parts

    def cat(k, dtype):
        return np.concatenate([d[k] for d in parts]).astype(dtype) if parts else np.zeros(0, dtype)
    plan.doff, plan.ctag, plan.cm = cat(0, np.int64), cat(1, np.int64), cat(2, np.int64)
    plan.DV = cat(3, np.float64)
    sizes = np.concatenate([np.full(len(d[1]), d[4]) for d in parts]) if parts else []
    plan.cvoff = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(sizes) else np.zeros(0, np.int64)
