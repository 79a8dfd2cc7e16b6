"""Compiled time loop (numba): every member of a batch stepped through spec §7-11.

All data arrive as flat arrays described by :class:`sweeper.engine.plan.Plan`. Members are
simulated one after the other with the same code path, so a network gives bit-identical
results alone or inside any batch. Within a member, populations read only the delay
histories, which change after all populations have stepped (spec §11).

Per population and step the generator is never assembled:
``J x = leak(x) + sum_g lam_g * band_g x + reset_bins * (theta_eff . x) / nz + e_0 * (floor_eff . x)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# method codes (plan.METHODS order)
APPROX_TOL, APPROX_ORDER, BACKWARD_EULER, EXACT = 0, 1, 2, 3

# failure codes returned per member
OK, FAIL_MASS, FAIL_NONFINITE, FAIL_SERIES, FAIL_NEGATIVE_TOTAL = 0, 1, 2, 3, 4

MAX_TAYLOR_TERMS = 2000
MAX_SWEEPS = 2000


@njit(cache=True)
def _vnorm(x, n, ord_):
    if ord_ == np.inf:
        m = 0.0
        for k in range(n):
            a = abs(x[k])
            if a > m or a != a:
                m = a
        return m
    if ord_ == -np.inf:
        m = np.inf
        for k in range(n):
            a = abs(x[k])
            if a < m or a != a:
                m = a
        return m
    if ord_ == 1.0:
        s = 0.0
        for k in range(n):
            s += abs(x[k])
        return s
    if ord_ == 2.0:
        s = 0.0
        for k in range(n):
            s += x[k] * x[k]
        return math.sqrt(s)
    s = 0.0
    for k in range(n):
        s += abs(x[k]) ** ord_
    return s ** (1.0 / ord_)


@njit(cache=True)
def _matvec(x, y, n, lk, dest, g0, g1, lam, bptr_b, rowptr, cols, vals,
            theff, fleff, zb0, zb1, nz):
    """y = J x for one population of one member (all vectors local, length n)."""
    for k in range(n):
        y[k] = -lk[k] * x[k]
    for k in range(n):
        d = dest[k]
        if d >= 0:
            y[d] += lk[k] * x[k]
    for g in range(g0, g1):
        lg = lam[g - g0]
        base = bptr_b[g]
        for r in range(n):
            s = 0.0
            for q in range(rowptr[base + r], rowptr[base + r + 1]):
                s += vals[q] * x[cols[q]]
            y[r] += lg * s
    th = 0.0
    fl = 0.0
    for k in range(n):
        th += theff[k] * x[k]
        fl += fleff[k] * x[k]
    y[zb0] += th / nz
    if zb1 >= 0:
        y[zb1] += th / nz
    y[0] += fl


@njit(cache=True)
def _be_solve(p, y, dd, n, dt, tol, lk, srca, srcb, order, g0, g1, lam, bptr_b, rowptr, cols, vals,
              theff, fleff, zb0, zb1, nz):
    """Backward Euler ``(I - dt J) y = p`` by Gauss-Seidel sweeps in leak order.

    The leak moves mass one bin toward 0 V from both sides, so sweeping each side toward
    the reset bins makes the stiff leak part exactly triangular; only the jumps that point
    against the sweep (and the rank-1 reset/floor rows) lag one sweep. The matrix is an
    M-matrix, so the sweeps converge; x0 = p as in dipde's GMRES, and a start that already
    satisfies the tolerance is returned unchanged.
    """
    bnorm = 0.0
    for k in range(n):
        y[k] = p[k]
        bnorm += p[k] * p[k]
    bnorm = math.sqrt(bnorm)
    # diagonal of I - dt J (rank-1 diagonal entries included, their off-diagonal parts lag)
    for k in range(n):
        dd[k] = 1.0 + dt * lk[k]
    for g in range(g0, g1):
        lg = lam[g - g0]
        base = bptr_b[g]
        for r in range(n):
            for q in range(rowptr[base + r], rowptr[base + r + 1]):
                if cols[q] == r:
                    dd[r] -= dt * lg * vals[q]
    dd[zb0] -= dt * theff[zb0] / nz
    if zb1 >= 0:
        dd[zb1] -= dt * theff[zb1] / nz
    dd[0] -= dt * fleff[0]
    sweeps = 0
    for it in range(MAX_SWEEPS):
        delta2 = 0.0
        for idx in range(n):
            k = order[idx]
            s = 0.0
            a = srca[k]
            if a >= 0:
                s += lk[a] * y[a]
            a = srcb[k]
            if a >= 0:
                s += lk[a] * y[a]
            for g in range(g0, g1):
                base = bptr_b[g]
                acc = 0.0
                for q in range(rowptr[base + k], rowptr[base + k + 1]):
                    j = cols[q]
                    if j != k:
                        acc += vals[q] * y[j]
                s += lam[g - g0] * acc
            if k == 0:
                fl = 0.0
                for j in range(1, n):
                    fl += fleff[j] * y[j]
                s += fl
            if k == zb0 or k == zb1:
                th = 0.0
                for j in range(n):
                    if j != k:
                        th += theff[j] * y[j]
                s += th / nz
            ynew = (p[k] + dt * s) / dd[k]
            dlt = ynew - y[k]
            delta2 += dlt * dlt
            y[k] = ynew
        sweeps = it + 1
        if not math.sqrt(delta2) > tol * bnorm:  # also stops on NaN; caught by the caller
            if it == 0:
                for k in range(n):
                    y[k] = p[k]
            break
    return sweeps


@njit(cache=True)
def _expm_action(x, n, dt, work, term, lk, dest, g0, g1, lam, bptr_b, rowptr, cols, vals,
                 theff, fleff, zb0, zb1, nz):
    """x <- expm(dt J) x by Taylor series over substeps with ||dt J / s||_1 <= 1/2."""
    # 1-norm of J: column sums of |J|
    colabs = work
    for k in range(n):
        colabs[k] = 2.0 * abs(lk[k]) + (abs(theff[k]) + abs(fleff[k]))
    for g in range(g0, g1):
        lg = abs(lam[g - g0])
        base = bptr_b[g]
        for r in range(n):
            for q in range(rowptr[base + r], rowptr[base + r + 1]):
                colabs[cols[q]] += lg * abs(vals[q])
    nrm = 0.0
    for k in range(n):
        if colabs[k] > nrm:
            nrm = colabs[k]
    s = max(1, int(math.ceil(dt * nrm / 0.5)))
    h = dt / s
    for _ in range(s):
        for k in range(n):
            term[k] = x[k]
        for m in range(1, 100):
            _matvec(term, work, n, lk, dest, g0, g1, lam, bptr_b, rowptr, cols, vals,
                    theff, fleff, zb0, zb1, nz)
            tn = 0.0
            xn = 0.0
            for k in range(n):
                term[k] = work[k] * h / m
                x[k] += term[k]
                tn += abs(term[k])
                xn += abs(x[k])
            if not tn > 1e-18 * xn:
                break


@njit(cache=True)
def run_members(steps, dt, n_pop, nbins, boff, method, approx_order, tol, normord,
                zb0s, zb1s, dest, srca, srcb, order,
                gstart, gboff, leak, bptr, rowptr, cols, vals, theta, floor,
                p0, rate0,
                c_srckind, c_src, c_group, c_D, c_kptr, c_ks, c_pk, c_nsyn, c_hoff, pconn_ptr, pconn,
                ext_now, hist, rates, status, fail_step, fail_pop, sweeps_out):
    """Simulate every member; fill ``rates[b, i, n]``; per-member failures go to ``status``."""
    B = p0.shape[0]
    N = p0.shape[1]
    nmax = 1
    for i in range(n_pop):
        if nbins[i] > nmax:
            nmax = nbins[i]
    gmax = 1
    for i in range(n_pop):
        if gstart[i + 1] - gstart[i] > gmax:
            gmax = gstart[i + 1] - gstart[i]
    x = np.empty(nmax)
    term = np.empty(nmax)
    tmp = np.empty(nmax)
    dd = np.empty(nmax)
    theff = np.empty(nmax)
    fleff = np.empty(nmax)
    lam = np.empty(gmax)
    newrate = np.empty(n_pop)
    C = c_src.shape[0]
    for b in range(B):
        p = p0[b].copy()
        lk_b = leak[b]
        bptr_b = bptr[b]
        for i in range(n_pop):
            rates[b, i, 0] = rate0[b, i]
        failed = False
        for step in range(1, steps + 1):
            for i in range(n_pop):
                n = nbins[i]
                o = boff[i]
                g0 = gstart[i]
                g1 = gstart[i + 1]
                zb0 = zb0s[i]
                zb1 = zb1s[i]
                nz = 1.0 if zb1 < 0 else 2.0
                # frozen inputs of this step: lam_g from the delay histories (spec §6.3, §10)
                for g in range(g1 - g0):
                    lam[g] = 0.0
                for ci in range(pconn_ptr[i], pconn_ptr[i + 1]):
                    c = pconn[ci]
                    D = c_D[c]
                    h = c_hoff[c] + (step - 1) + D
                    r = 0.0
                    for kk in range(c_kptr[c], c_kptr[c + 1]):
                        r += c_pk[b, kk] * hist[b, h - c_ks[kk]]
                    lam[c_group[c] - g0] += r * c_nsyn[b, c]
                for k in range(n):
                    theff[k] = 0.0
                    fleff[k] = 0.0
                for g in range(g0, g1):
                    lg = lam[g - g0]
                    go = gboff[g]
                    for k in range(n):
                        theff[k] += theta[b, go + k] * lg
                        fleff[k] += floor[b, go + k] * lg
                lk = lk_b[o:o + n]
                dst = dest[o:o + n]
                m = method[i]
                pp = p[o:o + n]
                if m == BACKWARD_EULER:
                    sw = _be_solve(pp, x, dd, n, dt, tol[b, i], lk, srca[o:o + n], srcb[o:o + n],
                                   order[o:o + n], g0, g1, lam, bptr_b, rowptr, cols, vals,
                                   theff, fleff, zb0, zb1, nz)
                    sweeps_out[b, i] += sw
                else:
                    for k in range(n):
                        x[k] = pp[k]
                    if m == APPROX_TOL:
                        for k in range(n):
                            term[k] = pp[k]
                        err = np.inf
                        kterm = 0
                        while err > tol[b, i]:
                            kterm += 1
                            _matvec(term, tmp, n, lk, dst, g0, g1, lam, bptr_b, rowptr, cols, vals,
                                    theff, fleff, zb0, zb1, nz)
                            for k in range(n):
                                term[k] = (tmp[k] * dt) / kterm
                                x[k] += term[k]
                            err = _vnorm(term, n, normord[b, i])
                            if kterm >= MAX_TAYLOR_TERMS:
                                break
                        sweeps_out[b, i] += kterm
                        if kterm >= MAX_TAYLOR_TERMS or not err <= tol[b, i]:
                            status[b] = FAIL_SERIES
                    elif m == APPROX_ORDER:
                        for k in range(n):
                            term[k] = pp[k]
                        fact = 1.0
                        for mm in range(1, approx_order[i] + 1):
                            fact *= mm
                            _matvec(term, tmp, n, lk, dst, g0, g1, lam, bptr_b, rowptr, cols, vals,
                                    theff, fleff, zb0, zb1, nz)
                            inv = 1.0 / fact
                            for k in range(n):
                                term[k] = tmp[k] * dt
                                x[k] = x[k] + inv * term[k]
                    else:
                        _expm_action(x, n, dt, tmp, term, lk, dst, g0, g1, lam, bptr_b, rowptr, cols,
                                     vals, theff, fleff, zb0, zb1, nz)
                    # mass conservation check of the explicit methods (spec §8.1-8.3)
                    s = 0.0
                    for k in range(n):
                        s += abs(x[k])
                    if status[b] == OK and not abs(s - 1.0) < 1e-12:
                        status[b] = FAIL_MASS
                if status[b] == OK:
                    # post-step cleanup (spec §8.5): clip negatives, renormalise
                    neg = False
                    s = 0.0
                    for k in range(n):
                        if x[k] < 0.0:
                            neg = True
                        s += abs(x[k])
                    if neg or abs(s - 1.0) > 1e-15:
                        s = 0.0
                        for k in range(n):
                            if x[k] < 0.0:
                                x[k] = 0.0
                            s += x[k]
                        if not s > 0.0:
                            status[b] = FAIL_NEGATIVE_TOTAL
                        for k in range(n):
                            x[k] = x[k] / s
                    r = 0.0
                    for k in range(n):
                        r += theff[k] * x[k]
                    if status[b] == OK and not math.isfinite(r):
                        status[b] = FAIL_NONFINITE
                    newrate[i] = r
                if status[b] != OK:
                    fail_step[b] = step
                    fail_pop[b] = i
                    failed = True
                    break
                for k in range(n):
                    pp[k] = x[k]
            if failed:
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
