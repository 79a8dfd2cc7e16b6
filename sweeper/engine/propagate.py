"""Compiled time loop (numba): every member of a batch stepped through spec §7-11.

All data arrive as flat arrays built by :mod:`sweeper.engine.plan`. Members are simulated
one after the other with the same code path, so a network gives bit-identical results
alone or inside any batch. Within a member, populations read only the delay histories,
which change after all populations have stepped (spec §11).

The generator ``J = L + sum_g lam_g F_g`` of a population is never stored dense. Its
off-diagonal part is banded: the leak moves mass one bin (offsets +-1) and a weight w
shifts it by about w/dv bins, so each (member, population) stores it as a few diagonals
(DIA format): per (group, offset) a length-n vector, with offsets +-1 last. Every step
first assembles the diagonals ``V[m] = scale * sum_g lam_g * values`` and the main
diagonal once; the reset and floor rows are rank-1 terms ``(theta_eff . x)/nz`` and
``floor_eff . x``. Loops over a diagonal are contiguous, so they vectorise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# method codes (see plan.method_code)
APPROX_TOL, APPROX_ORDER, BACKWARD_EULER, EXACT = 0, 1, 2, 3

# failure codes returned per member
OK, FAIL_MASS, FAIL_NONFINITE, FAIL_SERIES, FAIL_NEGATIVE_TOTAL = 0, 1, 2, 3, 4

MAX_TAYLOR_TERMS = 2000
MAX_SWEEPS = 2000
EXTRAP = 1e3  # extrapolate the start while ||p_n - p_n-1|| > EXTRAP * tol * ||p_n||
MAX_SUBSTEPS = 100_000  # exact method: dt*||J||_1 beyond 50000 means the network ran away


@njit(cache=True)
def _vnorm(x, n, ord_):
    """numpy.linalg.norm(x, ord) for a vector."""
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
    s = 0.0
    if ord_ == 1.0:
        for k in range(n):
            s += abs(x[k])
        return s
    if ord_ == 2.0:
        for k in range(n):
            s += x[k] * x[k]
        return math.sqrt(s)
    for k in range(n):
        s += abs(x[k]) ** ord_
    return s ** (1.0 / ord_)


@njit(cache=True)
def _assemble(scale, lam, ng, coef, M, K, ctag, cm, cvoff, DV, V, VT, n, lk, gdiag, gbo, diag):
    """Scaled diagonals (into V[m, :n], or row-major into VT[:n, m] when VT has rows) and
    the scaled main diagonal: coef[0] = 1 for the leak, coef[1 + g] = lam_g for group g.
    Loops run over zero-based slices so that numba can vectorise them."""
    coef[0] = scale
    for g in range(ng):
        coef[g + 1] = scale * lam[g]
    if VT.shape[0] > 0:
        for k in range(n):
            row = VT[k]
            for m in range(M):
                row[m] = 0.0
        for c in range(K):
            a = coef[ctag[c]]
            m = cm[c]
            src = DV[cvoff[c]:cvoff[c] + n]
            for k in range(n):
                VT[k, m] += a * src[k]
    else:
        for m in range(M):
            row = V[m]
            for k in range(n):
                row[k] = 0.0
        for c in range(K):
            a = coef[ctag[c]]
            row = V[cm[c]]
            src = DV[cvoff[c]:cvoff[c] + n]
            for k in range(n):
                row[k] += a * src[k]
    for k in range(n):
        diag[k] = -lk[k]
    for g in range(ng):
        lg = lam[g]
        gd = gdiag[gbo[g]:gbo[g] + n]
        for k in range(n):
            diag[k] += lg * gd[k]
    for k in range(n):
        diag[k] *= scale


@njit(cache=True)
def _dot(a, x, n):
    """Dot product with four accumulators (vectorises)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    m = n - n % 4
    for k in range(0, m, 4):
        s0 += a[k] * x[k]
        s1 += a[k + 1] * x[k + 1]
        s2 += a[k + 2] * x[k + 2]
        s3 += a[k + 3] * x[k + 3]
    for k in range(m, n):
        s0 += a[k] * x[k]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _matvec(x, y, n, diag, M, doff, V, theff, fleff, has_th, has_fl, zb0, zb1, nz, scale):
    """y = (scale * J) x, with V and diag assembled at that scale."""
    for k in range(n):
        y[k] = diag[k] * x[k]
    for m in range(M):
        off = doff[m]
        lo = max(0, off)
        hi = min(n, n + off)
        ys = y[lo:hi]
        vs = V[m, lo:hi]
        xs = x[lo - off:hi - off]
        for k in range(hi - lo):
            ys[k] += vs[k] * xs[k]
    if has_th:
        th = scale * _dot(theff, x, n) / nz
        y[zb0] += th
        if zb1 >= 0:
            y[zb1] += th
    if has_fl:
        y[0] += scale * _dot(fleff, x, n)


@njit(cache=True)
def _gauss_seidel(p, ypad, pad, n, dt, tol, inv, achain, diag, M, doff, VT, uoff, cneg, cpos,
                  theff, fleff, has_th, has_fl, zb0, zb1, nz, x0):
    """Backward Euler ``(I - dt J) y = p`` by Gauss-Seidel sweeps in leak order.

    The leak moves mass one bin toward 0 V from both sides, so each sweep goes up the bins
    below the reset bins, down the bins above them, and ends with the reset bins: the
    stiff leak is then exactly triangular and only jumps that point against the sweep lag
    (I - dt J is an M-matrix, so the sweeps converge). The neighbour just updated enters
    through a register (``achain``), which keeps the sweep's dependency chain to one
    multiply-add per bin. VT holds the diagonals row by row; ``ypad[pad:pad + n]`` is the
    solution, zero-padded so that the row loops need no bounds branches. The reset and
    floor rows are rank-1 (their dot products are taken fresh when those rows come up).

    Starts from x0; a start that already meets the tolerance is returned unchanged, which
    makes steady states exact fixed points (as with dipde's GMRES). Returns the sweeps.
    """
    zmin = zb0
    zmax = zb0 if zb1 < 0 else zb1
    bnorm = math.sqrt(_dot(p, p, n))
    yv = ypad[pad:pad + n]
    for k in range(n):
        yv[k] = x0[k]
        inv[k] = 1.0 - diag[k]
    if has_th:
        inv[zb0] -= dt * theff[zb0] / nz
        if zb1 >= 0:
            inv[zb1] -= dt * theff[zb1] / nz
    if has_fl:
        inv[0] -= dt * fleff[0]
    for k in range(n):
        inv[k] = 1.0 / inv[k]
    # the chain column of each side: offset +1 below the reset bins, -1 above them
    mp = -1
    mm = -1
    for m in range(M):
        uoff[m] = np.uint64(pad - doff[m])
        if doff[m] == 1:
            mp = m
        elif doff[m] == -1:
            mm = m
    nneg = 0
    npos = 0
    for m in range(M):
        if m != mp:
            cneg[nneg] = m
            nneg += 1
        if m != mm:
            cpos[npos] = m
            npos += 1
    for k in range(n):
        achain[k] = 0.0
    if mp >= 0:
        for k in range(zmin):
            achain[k] = VT[k, mp] * inv[k]
    if mm >= 0:
        for k in range(zmax + 1, n):
            achain[k] = VT[k, mm] * inv[k]
    lim = tol * bnorm
    sweeps = 0
    for it in range(MAX_SWEEPS):
        delta2 = 0.0
        fl = _dot(fleff, yv, n) if (has_fl and zmin > 0) else 0.0
        yprev = 0.0
        for k in range(zmin):  # below the reset bins, upward
            ku = np.uint64(k)
            s = p[k]
            for j in range(nneg):
                m = cneg[j]
                s += VT[ku, m] * ypad[ku + uoff[m]]
            if k == 0 and has_fl:
                s += dt * (fl - fleff[0] * yv[0])
            ynew = s * inv[k] + achain[k] * yprev
            d = ynew - yv[k]
            delta2 += d * d
            yv[k] = ynew
            yprev = ynew
        yprev = 0.0
        for k in range(n - 1, zmax, -1):  # above the reset bins, downward
            ku = np.uint64(k)
            s = p[k]
            for j in range(npos):
                m = cpos[j]
                s += VT[ku, m] * ypad[ku + uoff[m]]
            ynew = s * inv[k] + achain[k] * yprev
            d = ynew - yv[k]
            delta2 += d * d
            yv[k] = ynew
            yprev = ynew
        th = _dot(theff, yv, n) if has_th else 0.0
        for z in range(zmin, zmax + 1):  # the reset bins, with the rank-1 rows
            zu = np.uint64(z)
            s = p[z]
            for m in range(M):
                s += VT[zu, m] * ypad[zu + uoff[m]]
            yz = yv[z]
            if has_th:
                s += dt * (th - theff[z] * yz) / nz
            if has_fl and z == 0:
                s += dt * (_dot(fleff, yv, n) - fleff[0] * yz)
            ynew = s * inv[z]
            d = ynew - yz
            delta2 += d * d
            yv[z] = ynew
            th += theff[z] * d
        sweeps = it + 1
        if not math.sqrt(delta2) > lim:  # converged (NaN also stops; the caller catches it)
            if it == 0:
                for k in range(n):
                    yv[k] = x0[k]
            break
    return sweeps


@njit(cache=True)
def _expm_action(x, n, dt, work, term, diag, M, doff, V, theff, fleff, has_th, has_fl, zb0, zb1, nz):
    """x <- expm(dt J) x (V, diag assembled at scale 1): Taylor series over substeps with
    ||dt J / s||_1 <= 1/2, each summed to full double precision."""
    colabs = work
    for k in range(n):
        colabs[k] = abs(diag[k]) + (abs(theff[k]) + abs(fleff[k]))
    for m in range(M):
        off = doff[m]
        for k in range(max(0, off), min(n, n + off)):
            colabs[k - off] += abs(V[m, k])
    nrm = 0.0
    for k in range(n):
        if colabs[k] > nrm:
            nrm = colabs[k]
    if not dt * nrm <= 0.5 * MAX_SUBSTEPS:
        return False
    s = max(1, int(math.ceil(dt * nrm / 0.5)))
    h = dt / s
    for _ in range(s):
        for k in range(n):
            term[k] = x[k]
        for m in range(1, 100):
            _matvec(term, work, n, diag, M, doff, V, theff, fleff, has_th, has_fl, zb0, zb1, nz, 1.0)
            tn = 0.0
            xn = 0.0
            for k in range(n):
                term[k] = work[k] * h / m
                x[k] += term[k]
                tn += abs(term[k])
                xn += abs(x[k])
            if not tn > 1e-18 * xn:
                break
    return True


@njit(cache=True)
def _delayed_inputs(b, i, step, g0, ng, lam, pconn_ptr, pconn, c_hoff, c_D, c_kptr, c_ks, c_pk, c_group,
                    c_nsyn, hist):
    """lam_g of population i at this step: delayed source rates times nsyn (spec §6.3, §10)."""
    for g in range(ng):
        lam[g] = 0.0
    for ci in range(pconn_ptr[i], pconn_ptr[i + 1]):
        c = pconn[ci]
        h = c_hoff[c] + (step - 1) + c_D[c]
        r = 0.0
        for kk in range(c_kptr[c], c_kptr[c + 1]):
            r += c_pk[b, kk] * hist[b, h - c_ks[kk]]
        lam[c_group[c] - g0] += r * c_nsyn[b, c]


@njit(cache=True)
def _cleanup(x, n):
    """Post-step cleanup (spec §8.5): clip negatives and renormalise when needed.
    Returns False if no mass is left."""
    neg = False
    s = 0.0
    for k in range(n):
        if x[k] < 0.0:
            neg = True
        s += abs(x[k])
    if neg or abs(s - 1.0) > 1e-15:
        for k in range(n):
            x[k] = max(x[k], 0.0)
        s = 0.0
        for k in range(n):
            s += x[k]
        if not s > 0.0:
            return False
        for k in range(n):
            x[k] = x[k] / s
    return True


@njit(cache=True)
def run_members(steps, dt, n_pop, nbins, boff, method, approx_order, tol, normord,
                zb0s, zb1s, gstart, gboff, leak, gdiag, theta, floor, th_any, fl_any,
                dptr, dcnt, doff, cptr, ccnt, ctag, cm, cvoff, DV, p0, rate0,
                c_srckind, c_src, c_group, c_D, c_kptr, c_ks, c_pk, c_nsyn, c_hoff, pconn_ptr, pconn,
                ext_now, hist, rates, status, fail_step, fail_pop, work_out):
    """Simulate every member; fill ``rates[b, i, n]``; per-member failures go to ``status``.

    ``work_out[b, i]`` counts Taylor terms / Gauss-Seidel sweeps (diagnostics).
    """
    B = p0.shape[0]
    N = p0.shape[1]
    C = c_src.shape[0]
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
    x = np.empty(nmax)
    term = np.empty(nmax)
    tmp = np.empty(nmax)
    inv = np.empty(nmax)
    diag = np.empty(nmax)
    theff = np.empty(nmax)
    fleff = np.empty(nmax)
    V = np.empty((mmax, nmax))
    VT = np.empty((nmax, mmax))
    no_rows = np.empty((0, mmax))
    uoff = np.empty(mmax, dtype=np.uint64)
    cneg = np.empty(mmax, dtype=np.int64)
    cpos = np.empty(mmax, dtype=np.int64)
    achain = np.empty(nmax)
    ypad = np.zeros(nmax + 2 * pad)
    lam = np.empty(gmax + 1)
    coef = np.empty(gmax + 1)
    newrate = np.empty(n_pop)
    # exact memo of the last step per population: the same inputs give the same outputs
    prev_in = np.empty(N)
    prev_out = np.empty(N)
    prev_lam = np.empty((n_pop, gmax + 1))
    prev_rate = np.empty(n_pop)
    has_prev = np.zeros(n_pop, dtype=np.bool_)
    has_prev2 = np.zeros(n_pop, dtype=np.bool_)
    prev_prev = np.empty(N)
    for b in range(B):
        p = p0[b].copy()
        has_prev[:] = False
        has_prev2[:] = False
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
                pp = p[o:o + n]
                pin = prev_in[o:o + n]
                pout = prev_out[o:o + n]
                if has_prev[i]:
                    same = True
                    for g in range(ng):
                        if lam[g] != prev_lam[i, g]:
                            same = False
                    if same:
                        for k in range(n):
                            if pp[k] != pin[k]:
                                same = False
                                break
                    if same:
                        pp[:] = pout
                        newrate[i] = prev_rate[i]
                        continue
                prev_prev[o:o + n] = pin
                has_prev2[i] = has_prev[i]
                pin[:] = pp
                for g in range(ng):
                    prev_lam[i, g] = lam[g]
                # effective threshold flux and floor vectors of this step
                has_th = False
                has_fl = False
                th = theff[:n]
                fl = fleff[:n]
                th[:] = 0.0
                fl[:] = 0.0
                for g in range(ng):
                    lg = lam[g]
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
                lk = leak[b, o:o + n]
                gbo = gboff[g0:g0 + ng]
                M = dcnt[b, i]
                do = doff[dptr[b, i]:dptr[b, i] + M]
                K = ccnt[b, i]
                ct = ctag[cptr[b, i]:cptr[b, i] + K]
                cmm = cm[cptr[b, i]:cptr[b, i] + K]
                cvo = cvoff[cptr[b, i]:cptr[b, i] + K]
                m = method[i]
                if m == BACKWARD_EULER:
                    _assemble(dt, lam, ng, coef, M, K, ct, cmm, cvo, DV, V, VT, n, lk, gdiag[b], gbo, diag)
                    x0 = pp
                    if has_prev2[i]:
                        # start from the linear extrapolation p_n + (p_n - p_n-1) while the density
                    # still moves; near a steady state from p_n, so that fixed points are exact
                        pq = prev_prev[o:o + n]
                        d2 = 0.0
                        for k in range(n):
                            d2 += (pp[k] - pq[k]) ** 2
                        if d2 > (EXTRAP * tol[b, i]) ** 2 * _dot(pp, pp, n):
                            for k in range(n):
                                term[k] = 2.0 * pp[k] - pq[k]
                            x0 = term[:n]
                    work_out[b, i] += _gauss_seidel(pp, ypad, pad, n, dt, tol[b, i], inv, achain, diag,
                                                    M, do, VT, uoff, cneg, cpos, theff, fleff, has_th, has_fl,
                                                    zb0, zb1, nz, x0)
                    x[:n] = ypad[pad:pad + n]
                else:
                    x[:n] = pp
                    term[:n] = pp
                    if m == APPROX_TOL:
                        # A = J*dt; term = A term / k; p += term until norm(term) <= tol (spec §8.1)
                        _assemble(dt, lam, ng, coef, M, K, ct, cmm, cvo, DV, V, no_rows, n, lk, gdiag[b], gbo,
                                  diag)
                        err = np.inf
                        kterm = 0
                        while err > tol[b, i] and kterm < MAX_TAYLOR_TERMS:
                            kterm += 1
                            _matvec(term, tmp, n, diag, M, do, V, theff, fleff, has_th, has_fl,
                                    zb0, zb1, nz, dt)
                            fk = float(kterm)
                            for k in range(n):
                                t_ = tmp[k] / fk
                                term[k] = t_
                                x[k] += t_
                            err = _vnorm(term, n, normord[b, i])
                        work_out[b, i] += kterm
                        if not err <= tol[b, i]:
                            status[b] = FAIL_SERIES
                    elif m == APPROX_ORDER:
                        # term = (J term) * dt; p += term / m! (spec §8.2)
                        _assemble(1.0, lam, ng, coef, M, K, ct, cmm, cvo, DV, V, no_rows, n, lk, gdiag[b], gbo,
                                  diag)
                        fact = 1.0
                        for mm in range(1, approx_order[i] + 1):
                            fact *= mm
                            _matvec(term, tmp, n, diag, M, do, V, theff, fleff, has_th, has_fl,
                                    zb0, zb1, nz, 1.0)
                            inv_f = 1.0 / fact
                            for k in range(n):
                                t_ = tmp[k] * dt
                                term[k] = t_
                                x[k] = x[k] + inv_f * t_
                        work_out[b, i] += approx_order[i]
                    else:
                        _assemble(1.0, lam, ng, coef, M, K, ct, cmm, cvo, DV, V, no_rows, n, lk, gdiag[b], gbo,
                                  diag)
                        if not _expm_action(x, n, dt, tmp, term, diag, M, do, V, theff, fleff,
                                            has_th, has_fl, zb0, zb1, nz):
                            status[b] = FAIL_SERIES
                    # mass conservation check of the explicit methods (spec §8.1-8.3)
                    s = 0.0
                    for k in range(n):
                        s += abs(x[k])
                    if status[b] == OK and not abs(s - 1.0) < 1e-12:
                        status[b] = FAIL_MASS
                if status[b] == OK:
                    if not _cleanup(x, n):
                        status[b] = FAIL_NEGATIVE_TOTAL
                    r = _dot(theff, x, n)
                    if status[b] == OK and not math.isfinite(r):
                        status[b] = FAIL_NONFINITE
                    newrate[i] = r
                if status[b] != OK:
                    fail_step[b] = step
                    fail_pop[b] = i
                    break
                pp[:] = x[:n]
                pout[:] = x[:n]
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
