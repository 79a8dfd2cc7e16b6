"""Compiled time loop (numba): every member of a batch stepped through docs/method.md §7-11.

All data arrive as flat arrays built by :mod:`sweeper.engine.plan` (the fields of a
:class:`~sweeper.engine.plan.Plan`). Members are simulated one after the other with the
same code path, so a network gives bit-identical results alone or inside any batch. Within
a member, populations read only the delay histories, which change after all populations
have stepped (§11).

The generator ``J = L + sum_g lam_g F_g`` of a population is never stored dense. Its
off-diagonal part is banded: the leak moves mass one bin (offsets +-1) and a weight w
shifts it by about w/dv bins, so each (member, population) stores it as a few diagonals
(DIA format): per (group, offset) a length-n vector, with offsets +-1 last. Whenever a
population's inputs lam change, the diagonals ``V[m] = scale * sum_g lam_g * values`` and
the main diagonal are assembled once (and kept while the inputs stay); the reset and floor
rows are rank-1 terms (see kernels_common.py).

Each update method's step is its own function (kernels_taylor.py: approx and exact;
kernels_gmres.py: backward Euler); one branch in :func:`run_members` picks it by the
method's kernel code (sweeper.engine.methods.METHODS says which code a population
gets). A backward-Euler step whose inputs (density and lam) are bit-equal to the previous
step's reuses its result, so steady states cost almost nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .codes import APPROX_ORDER, APPROX_TOL, BACKWARD_EULER, FAIL_SERIES, OK
from .kernels_common import _assemble, _finish_span
from .kernels_gmres import (BAND_MAX, MAX_SWEEPS, _reuse_last_step, band_cap, band_cost, band_setup, band_widths,
                            step_backward_euler, step_backward_euler_banded, use_band)
from .kernels_taylor import _expm_action, _taylor_order, _taylor_tol


@njit(cache=True, _nrt=False)
def _delayed_inputs(b, i, step, g0, ng, lam, pconn_ptr, pconn, c_hoff, c_D, c_kptr, c_ks, c_pk, c_group,
                    c_nsyn, hist):
    """lam_g of population i at this step: delayed source rates times nsyn (§6.3, §10)."""
    for g in range(ng):
        lam[g] = 0.0
    for ci in range(pconn_ptr[i], pconn_ptr[i + 1]):
        c = pconn[ci]
        h = c_hoff[c] + (step - 1) + c_D[c]
        r = 0.0
        for kk in range(c_kptr[c], c_kptr[c + 1]):
            r += c_pk[b, kk] * hist[b, h - c_ks[kk]]
        lam[c_group[c] - g0] += r * c_nsyn[b, c]


@njit(cache=True, nogil=True)
def run_members(steps, dt, n_pop, nbins, boff, method, implicit, scaled, approx_order, tol, normord,
                zb0s, zb1s, gstart, gboff, leak, gdiag, theta, floor, th_any, fl_any, up_only,
                dptr, dcnt, doff, cptr, ccnt, ctag, cm, cvoff, DV, p0, rate0,
                c_srckind, c_src, c_group, c_D, c_kptr, c_ks, c_pk, c_nsyn, c_hoff, pconn_ptr, pconn,
                ext_now, hist, rates, status, fail_step, fail_pop, work_out):
    """Simulate every member; fill ``rates[b, i, n]``; per-member failures go to ``status``.

    ``work_out[b, i]`` counts Taylor terms / Gauss-Seidel sweeps (diagnostics).
    """
    B = p0.shape[0]
    N = p0.shape[1]
    C = c_src.shape[0]
    P = max(n_pop, 1)
    nmax = 1
    gmax = 0
    mmax = 1
    pad = 1
    for i in range(n_pop):
        nmax = max(nmax, nbins[i])
        gmax = max(gmax, gstart[i + 1] - gstart[i])
        for b in range(B):
            mmax = max(mmax, dcnt[b, i])
            for m in range(dptr[b, i], dptr[b, i] + dcnt[b, i]):
                pad = max(pad, abs(doff[m]))
    # gmres operators with a narrow band are solved directly, and wider ones once Gauss-Seidel
    # proves dearer (per member and population, from its own offsets and sweeps, so that a
    # network's arithmetic does not depend on its batch)
    banded = np.zeros((B, P), dtype=np.bool_)
    kwidth = np.zeros((B, P, 2), dtype=np.int64)
    gs_cap = np.zeros((B, P), dtype=np.int64)
    wmax = 1
    for b in range(B):
        for i in range(n_pop):
            if method[i] == BACKWARD_EULER:
                kl, ku = band_widths(dcnt[b, i], doff[dptr[b, i]:dptr[b, i] + dcnt[b, i]])
                kwidth[b, i, 0] = kl
                kwidth[b, i, 1] = ku
                gs_cap[b, i] = band_cap(dcnt[b, i], kl, ku)
                if use_band(kl, ku):
                    banded[b, i] = True
                if band_cost(kl, ku) <= BAND_MAX:
                    wmax = max(wmax, kl + ku + 1)
    ab = np.empty((P, wmax, nmax))
    bz = np.empty((P, 2, nmax))
    bs = np.empty((P, 2, 2))
    term = np.empty(nmax)
    tmp = np.empty(nmax)
    tmp2 = np.empty(nmax)
    ypad = np.zeros(nmax + 2 * pad)
    coef = np.empty(gmax + 1)
    lam = np.empty(gmax + 1)
    newrate = np.empty(n_pop)
    # per population: the operator assembled for the current inputs (reused while they stay)
    V = np.empty((P, mmax, nmax))
    diag = np.empty((P, nmax))
    theff = np.empty((P, nmax))
    fleff = np.empty((P, nmax))
    inv = np.empty((P, nmax))
    achain = np.empty((P, nmax))
    cols = np.empty((P, 2, mmax), dtype=np.int64)
    sweep_info = np.zeros((P, 11), dtype=np.int64)
    flags = np.zeros((P, 2), dtype=np.bool_)
    asm_lam = np.empty((P, gmax + 1))
    asm_ok = np.zeros(P, dtype=np.bool_)
    tspan = np.zeros((P, 2), dtype=np.int64)  # theff is 0 outside [tspan[i, 0], tspan[i, 1])
    lo_from = np.zeros(P, dtype=np.int64)  # the density is known to be 0 below this bin
    # exact memo of the last step per population: the same inputs give the same outputs
    prev_in = np.empty(N)
    prev_out = np.empty(N)
    prev_prev = np.empty(N)
    prev_prev2 = np.empty(N)
    prev_lam = np.empty((P, gmax + 1))
    prev_rate = np.empty(P)
    has_prev = np.zeros(P, dtype=np.bool_)
    has_prev2 = np.zeros(P, dtype=np.bool_)
    has_prev3 = np.zeros(P, dtype=np.bool_)
    for b in range(B):
        p = p0[b].copy()
        has_prev[:] = False
        has_prev2[:] = False
        has_prev3[:] = False
        asm_ok[:] = False
        lo_from[:] = 0
        for i in range(n_pop):
            rates[b, i, 0] = rate0[b, i]
        for step in range(1, steps + 1):
            for i in range(n_pop):
                n = nbins[i]
                o = boff[i]
                g0 = gstart[i]
                ng = gstart[i + 1] - g0
                zb0 = zb0s[i]
                zb1 = zb1s[i]
                nz = 1.0 if zb1 < 0 else 2.0
                _delayed_inputs(b, i, step, g0, ng, lam, pconn_ptr, pconn, c_hoff, c_D, c_kptr, c_ks,
                                c_pk, c_group, c_nsyn, hist)
                if implicit[i] and _reuse_last_step(p, o, n, i, ng, lam, prev_in, prev_out, prev_prev, prev_prev2,
                                                    prev_lam, has_prev, has_prev2, has_prev3):
                    newrate[i] = prev_rate[i]
                    continue
                M = dcnt[b, i]
                K = ccnt[b, i]
                c0 = cptr[b, i]
                scale = dt if scaled[i] else 1.0
                fresh = not asm_ok[i]
                for g in range(ng):
                    if lam[g] != asm_lam[i, g]:
                        fresh = True
                if fresh:
                    th = theff[i, :n]
                    fl = fleff[i, :n]
                    dg = diag[i, :n]
                    has_th = False
                    has_fl = False
                    th[:] = 0.0
                    fl[:] = 0.0
                    for g in range(ng):
                        lg = lam[g]
                        asm_lam[i, g] = lg
                        if lg == 0.0:
                            continue
                        go = gboff[g0 + g]
                        if th_any[b, g0 + g]:
                            has_th = True
                            src = theta[b, go:go + n]
                            for k in range(n):
                                th[k] += src[k] * lg
                        if fl_any[b, g0 + g]:
                            has_fl = True
                            src = floor[b, go:go + n]
                            for k in range(n):
                                fl[k] += src[k] * lg
                    flags[i, 0] = has_th
                    flags[i, 1] = has_fl
                    tlo = 0
                    thi = 0
                    for k in range(n):
                        if th[k] != 0.0:
                            if thi == 0:
                                tlo = k
                            thi = k + 1
                    tspan[i, 0] = tlo
                    tspan[i, 1] = thi
                    _assemble(scale, lam, ng, coef, M, K, ctag[c0:c0 + K], cm[c0:c0 + K], cvoff[c0:c0 + K], DV,
                              V[i], n, leak[b, o:o + n], gdiag[b], gboff[g0:g0 + ng], dg)
                    asm_ok[i] = True
                has_th = flags[i, 0]
                has_fl = flags[i, 1]
                # with no input moving mass down, bins below the lowest occupied one stay 0
                # (and those bins stay 0, so the next step's search starts where this one ends)
                lo = 0
                if up_only[b, i] and not has_fl:
                    lo = lo_from[i]
                    while lo < zb0 and p[o + lo] == 0.0:
                        lo += 1
                lo_from[i] = lo
                tlo = tspan[i, 0]
                thi = tspan[i, 1]
                # the one place that picks a method's step by its kernel code (methods.METHODS)
                m = method[i]
                d0 = dptr[b, i]
                if m == BACKWARD_EULER:  # writes its solution to ypad[pad:pad + n]
                    if not banded[b, i]:
                        sweep_info[i, 10] = gs_cap[b, i]
                        sweeps = step_backward_euler(p, o, n, lo, dt, tol[b, i], i, fresh, diag, M, doff[d0:d0 + M], V,
                                                     theff, fleff, flags, zb0, zb1, inv, achain, cols, sweep_info, term,
                                                     tmp, tmp2, ypad, pad, prev_prev, prev_prev2, has_prev2, has_prev3)
                        work_out[b, i] += sweeps
                        if sweeps >= gs_cap[b, i] and gs_cap[b, i] < MAX_SWEEPS:
                            # a direct solve is cheaper: this step and every later one (the operator is
                            # assembled again: Gauss-Seidel's set-up scaled V in place)
                            banded[b, i] = True
                            fresh = True
                            _assemble(scale, lam, ng, coef, M, K, ctag[c0:c0 + K], cm[c0:c0 + K], cvoff[c0:c0 + K],
                                      DV, V[i], n, leak[b, o:o + n], gdiag[b], gboff[g0:g0 + ng], diag[i, :n])
                    if banded[b, i]:
                        kl = kwidth[b, i, 0]
                        ku = kwidth[b, i, 1]
                        if fresh:
                            band_setup(n, dt, diag[i], M, doff[d0:d0 + M], V[i], kl, ku, ab[i], bz[i], bs[i], theff[i],
                                       fleff[i], has_th, has_fl, zb0, zb1, nz)
                        work_out[b, i] += step_backward_euler_banded(p, o, n, dt, kl, ku, ab[i], bz[i], bs[i], theff[i],
                                                                     fleff[i], has_th, has_fl, nz, ypad[pad:pad + n])
                elif m == APPROX_TOL:  # explicit methods update p[o:o + n] in place
                    kterm, ok = _taylor_tol(p, o, term, tmp, lo, n, tol[b, i], normord[b, i], i, diag, M, doff, d0,
                                            V, theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, dt)
                    work_out[b, i] += kterm
                    if not ok:
                        status[b] = FAIL_SERIES
                elif m == APPROX_ORDER:
                    _taylor_order(p, o, term, tmp, lo, n, approx_order[i], i, diag, M, doff, d0, V, theff, tlo, thi,
                                  fleff, has_th, has_fl, zb0, zb1, nz, dt)
                    work_out[b, i] += approx_order[i]
                elif not _expm_action(p[o:o + n], n, dt, tmp, term, diag[i, :n], M, doff[d0:d0 + M], V[i],
                                      theff[i, :n], fleff[i, :n], has_th, has_fl, zb0, zb1, nz):  # EXACT
                    status[b] = FAIL_SERIES
                if status[b] == OK:
                    if implicit[i]:
                        st, r = _finish_span(ypad, pad, 0, n, theff, i, tlo, thi, False)
                    else:
                        st, r = _finish_span(p, o, lo, n, theff, i, tlo, thi, True)
                    status[b] = st
                    newrate[i] = r
                if status[b] != OK:
                    fail_step[b] = step
                    fail_pop[b] = i
                    break
                if implicit[i]:
                    x = ypad[pad:pad + n]
                    p[o:o + n] = x
                    prev_out[o:o + n] = x
                    prev_rate[i] = newrate[i]
                    has_prev[i] = True
            if status[b] != OK:
                break
            for i in range(n_pop):
                rates[b, i, step] = newrate[i]
            # push the rates computed at t_step into every connection's history
            for c in range(C):
                D = c_D[c]
                if c_srckind[c] == 0:
                    hist[b, c_hoff[c] + D + step] = newrate[c_src[c]]
                else:
                    hist[b, c_hoff[c] + D + step] = ext_now[b, c_src[c], step]


def _refresh_cache() -> None:
    import sys

    from . import codes, kernel_cache, kernels_common, kernels_gmres, kernels_taylor
    kernel_cache.refresh([codes, kernels_common, kernels_taylor, kernels_gmres, sys.modules[__name__]])


_refresh_cache()
