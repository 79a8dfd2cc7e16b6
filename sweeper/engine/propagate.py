"""Compiled time loop (numba): every member of a batch stepped through spec §7-11.

All data arrive as flat arrays built by :mod:`sweeper.engine.plan`. Members are simulated
one after the other with the same code path, so a network gives bit-identical results
alone or inside any batch. Within a member, populations read only the delay histories,
which change after all populations have stepped (spec §11).

The generator ``J = L + sum_g lam_g F_g`` of a population is never stored dense. Its
off-diagonal part is banded: the leak moves mass one bin (offsets +-1) and a weight w
shifts it by about w/dv bins, so each (member, population) stores it as a few diagonals
(DIA format): per (group, offset) a length-n vector, with offsets +-1 last. Whenever a
population's inputs lam change, the diagonals ``V[m] = scale * sum_g lam_g * values`` and
the main diagonal are assembled once (and kept while the inputs stay); the reset and floor
rows are rank-1 terms ``(theta_eff . x)/nz`` and ``floor_eff . x``. Loops over a diagonal
are contiguous, so they vectorise (hot loops index with unsigned integers, which spares
numba's negative-index checks). The explicit methods' per-step helpers are compiled
without reference counting (``_nrt=False``: they only index arrays they are given), as
at 200 bins a reference count update costs about as much as a pass over the density.

Update methods: Taylor series (approx, spec §8.1-8.2) and the matrix exponential (exact,
§8.3, as a Taylor series over substeps) use matrix-vector products; backward Euler (gmres,
§8.4, any exact solver allowed) is solved by Gauss-Seidel sweeps along the leak (V then
divided by the diagonal of I - dt J), see :func:`_gauss_seidel`; each step starts from
an extrapolation of the last densities. A backward-Euler step whose inputs (density and
lam) are bit-equal to the previous step's reuses its result, so steady states cost
almost nothing.
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
def _assemble(scale, lam, ng, coef, M, K, ctag, cm, cvoff, DV, V, n, lk, gdiag, gbo, diag):
    """Scaled diagonals (into V[m, :n]) and the scaled main diagonal: coef[0] = 1 for the
    leak, coef[1 + g] = lam_g for group g. Loops run over zero-based slices so that numba
    can vectorise them."""
    coef[0] = scale
    for g in range(ng):
        coef[g + 1] = scale * lam[g]
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


@njit(cache=True, fastmath={"reassoc"}, _nrt=False)
def _dot_span(a, x, lo, hi, n):
    """``_dot(a, x, n)`` up to rounding when ``a[k] * x[k]`` is 0 outside [lo, hi): the sum
    over the span only, regrouped (fastmath 'reassoc' on this function only) so that it
    vectorises; the grouping depends only on lo and hi, so results stay reproducible."""
    s = 0.0
    for k in range(np.uint64(lo), np.uint64(max(lo, min(hi, n)))):
        s += a[k] * x[k]
    return s


@njit(cache=True, inline='always')
def _matvec(x, y, lo, n, diag, M, doff, V, theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, scale):
    """y = (scale * J) x, with V and diag assembled at that scale. Rows and columns below
    ``lo`` are known to be 0 (see run_members) and are left alone; theff is nonzero only
    in [tlo, thi). Unsigned indices spare numba's negative-index checks, so the loops
    vectorise; the arithmetic per row is the same as one diagonal after the other (the
    main diagonal and the first one share a pass)."""
    a = lo
    hi = lo
    if M > 0:
        off = doff[0]
        a = min(n, lo + max(off, 0))
        hi = max(a, min(n, n + off))
        uoff = np.uint64(off)
        z = np.uint64(0)
        for k in range(np.uint64(a), np.uint64(hi)):
            y[k] = diag[k] * x[k] + V[z, k] * x[k - uoff]
    for k in range(np.uint64(lo), np.uint64(a)):
        y[k] = diag[k] * x[k]
    for k in range(np.uint64(hi), np.uint64(n)):
        y[k] = diag[k] * x[k]
    for m in range(1, M):
        off = doff[m]
        a = lo + max(off, 0)  # the columns read, k - off, stay at or above lo
        hi = min(n, n + off)
        if hi <= a:
            continue
        um = np.uint64(m)
        uoff = np.uint64(off)  # wraps for off < 0: k - uoff is still k - off
        for k in range(np.uint64(a), np.uint64(hi)):
            y[k] += V[um, k] * x[k - uoff]
    if has_th:
        th = scale * _dot_span(theff, x, max(lo, tlo), thi, n) / nz
        y[zb0] += th
        if zb1 >= 0:
            y[zb1] += th
    if has_fl:
        y[0] += scale * _dot(fleff, x, n)


@njit(cache=True, _nrt=False)
def _taylor_tol(p, o, term, tmp, lo, n, tl, ordv, i, diag, M, doff, d0, V, theff, tlo, thi, fleff, has_th, has_fl,
                zb0, zb1, nz, dt):
    """Spec §8.1 in place on x = p[o:o + n]: A = J*dt; term = (A term) / k; x += term until
    norm(term, ordv) <= tl, with population i's operator (its diagonals' offsets at
    doff[d0:]). Returns (terms taken, converged). For the max norm only "some |term| > tl
    or NaN" matters, one comparison per entry (vectorises); a NaN never leaves the terms, so
    such a series runs to MAX_TAYLOR_TERMS and fails, as max|term| = NaN would."""
    x = p[o:o + n]
    diag, doff, V, theff, fleff = diag[i], doff[d0:d0 + M], V[i], theff[i], fleff[i]
    for k in range(np.uint64(n)):
        term[k] = x[k]
    kterm = 0
    while kterm < MAX_TAYLOR_TERMS:
        kterm += 1
        _matvec(term, tmp, lo, n, diag, M, doff, V, theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, dt)
        rk = 1.0 / kterm  # term = (A term) / k, as a multiply
        nan = False
        big = False
        for k in range(np.uint64(lo), np.uint64(n)):
            t_ = tmp[k] * rk
            term[k] = t_
            x[k] += t_
            big |= not abs(t_) <= tl
        if ordv != np.inf:
            err = _vnorm(term, n, ordv)
            nan = err != err
            big = err > tl
        if nan or not big:
            return kterm, not nan
    return kterm, False


@njit(cache=True, _nrt=False)
def _taylor_order(p, o, term, tmp, lo, n, order, i, diag, M, doff, d0, V, theff, tlo, thi, fleff, has_th, has_fl,
                  zb0, zb1, nz, dt):
    """Spec §8.2 in place on x = p[o:o + n]: term = (J term) * dt; x += term / m! for m = 1..order
    (population i's operator, as in :func:`_taylor_tol`)."""
    x = p[o:o + n]
    diag, doff, V, theff, fleff = diag[i], doff[d0:d0 + M], V[i], theff[i], fleff[i]
    for k in range(np.uint64(n)):
        term[k] = x[k]
    fact = 1.0
    for mm in range(1, order + 1):
        fact *= mm
        _matvec(term, tmp, lo, n, diag, M, doff, V, theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, 1.0)
        inv_f = 1.0 / fact
        for k in range(np.uint64(lo), np.uint64(n)):
            t_ = tmp[k] * dt
            term[k] = t_
            x[k] = x[k] + inv_f * t_


@njit(cache=True)
def _gs_setup(n, dt, inv, achain, diag, M, doff, V, cols, info, theff, fleff, has_th, has_fl, zb0, zb1, nz):
    """Per-operator part of :func:`_gauss_seidel`. Divides every row of V by the diagonal
    of I - dt J (inv holds its inverse) and sets the chain coefficients. For each side of
    the reset bins (0: below, swept upward; 1: above, swept downward) ``cols[side]`` lists
    its columns other than the chain one, those pointing against the sweep (they read the
    previous sweep's values) first, and ``info[4 * side:4 * side + 4]`` = (how many of
    those, how many pointing the sweep's way, block length = their shortest offset, 1 if
    the side reads nothing from later in the sweep: then its first sweep is final).
    info[8:10] is the range of bins where theff is nonzero."""
    zmin = zb0
    zmax = zb0 if zb1 < 0 else zb1
    for k in range(n):
        inv[k] = 1.0 - diag[k]
    if has_th:
        inv[zb0] -= dt * theff[zb0] / nz
        if zb1 >= 0:
            inv[zb1] -= dt * theff[zb1] / nz
    if has_fl:
        inv[0] -= dt * fleff[0]
    for k in range(n):
        inv[k] = 1.0 / inv[k]
    for m in range(M):
        row = V[m, :n]
        for k in range(n):
            row[k] *= inv[k]
    for side in range(2):
        sgn = 1 if side == 0 else -1  # offsets of this sign point the sweep's way
        r0, r1 = (0, zmin) if side == 0 else (zmax + 1, n)
        chain = -1
        nlag = 0
        for m in range(M):
            if doff[m] == sgn:
                chain = m
            elif doff[m] * sgn < 0:
                cols[side, nlag] = m
                nlag += 1
        nlead = 0
        blk = n
        for m in range(M):
            if doff[m] * sgn > 1:
                cols[side, nlag + nlead] = m
                nlead += 1
                blk = min(blk, doff[m] * sgn)
        final = not (side == 0 and has_fl and zmin > 0)
        for j in range(nlag):
            row = V[cols[side, j]]
            for k in range(r0, r1):
                if row[k] != 0.0:
                    final = False
                    break
        info[4 * side] = nlag
        info[4 * side + 1] = nlead
        info[4 * side + 2] = blk
        info[4 * side + 3] = 1 if final else 0
        for k in range(r0, r1):
            achain[k] = 0.0 if chain < 0 else V[chain, k]
    for z in range(zmin, zmax + 1):
        achain[z] = 0.0
    t0 = 0
    t1 = n if has_th else 0
    while t0 < t1 and theff[t0] == 0.0:
        t0 += 1
    while t1 > t0 and theff[t1 - 1] == 0.0:
        t1 -= 1
    info[8] = t0
    info[9] = t1


@njit(cache=True, fastmath={"contract"})
def _gauss_seidel(p, ypad, pad, n, lo, dt, lim, inv, achain, M, V, doff, cols, info,
                  theff, fleff, has_th, has_fl, zb0, zb1, nz, x0, s, pinv):
    """Backward Euler ``(I - dt J) y = p`` by Gauss-Seidel sweeps in leak order, until a
    sweep changes y by at most ``lim`` (2-norm).

    The leak moves mass one bin toward 0 V from both sides, so each sweep goes up the bins
    below the reset bins, down the bins above them, and ends with the reset bins: the
    stiff leak is then exactly triangular and only jumps that point against the sweep lag
    (I - dt J is an M-matrix, so the sweeps converge). V comes divided by the diagonal
    (see :func:`_gs_setup`). The neighbour just updated enters through ``achain``, so the
    sequential part of a sweep is one fused multiply-add per bin. All other columns are
    summed into ``s`` by contiguous (vectorised) loops over the diagonals V[m]: those
    pointing against the sweep over the whole side at once, the others a block of bins at
    a time, a block being no longer than their shortest offset, so that every read sees
    the same value as in bin-by-bin Gauss-Seidel. A side that reads nothing from later in
    the sweep is final after the first sweep and is skipped afterwards.
    ``ypad[pad:pad + n]`` is the solution, zero-padded so that shifted slices stay in
    bounds. The reset and floor rows are rank-1 (their dot products are taken fresh when
    those rows come up).

    Bins below ``lo`` (under the reset bins) are known to stay exactly 0 and are skipped.
    Starts from x0; a start that already meets the tolerance is returned unchanged, which
    makes steady states exact fixed points (as with dipde's GMRES). Returns the sweeps.
    """
    zmin = zb0
    zmax = zb0 if zb1 < 0 else zb1
    t0 = info[8]
    nt = info[9] - t0
    yv = ypad[pad:pad + n]
    for k in range(lo):
        yv[k] = 0.0
    for k in range(lo, n):
        yv[k] = x0[k]
        pinv[k] = p[k] * inv[k]
    sweeps = 0
    for it in range(MAX_SWEEPS):
        delta2 = 0.0
        for side in range(2):
            r0, r1 = (lo, zmin) if side == 0 else (zmax + 1, n)
            nlag = info[4 * side]
            nlead = info[4 * side + 1]
            blk = info[4 * side + 2]
            if r1 <= r0 or (it > 0 and info[4 * side + 3]):
                continue
            w = r1 - r0
            sb = s[r0:r1]
            pb = pinv[r0:r1]
            for k in range(w):
                sb[k] = pb[k]
            for j in range(nlag):  # against the sweep: this sweep has not reached them yet
                m = cols[side, j]
                vs = V[m, r0:r1]
                a = pad + r0 - doff[m]
                ys = ypad[a:a + w]
                for k in range(w):
                    sb[k] += vs[k] * ys[k]
            if side == 0 and r0 == 0 and has_fl:
                s[0] += inv[0] * dt * (_dot(fleff, yv, n) - fleff[0] * yv[0])
            yprev = 0.0
            nb = (w + blk - 1) // blk
            for bi in range(nb):
                if side == 0:
                    k0 = r0 + bi * blk
                    k1 = min(r1, k0 + blk)
                else:
                    k1 = r1 - bi * blk
                    k0 = max(r0, k1 - blk)
                wb = k1 - k0
                sb = s[k0:k1]
                for j in range(nlag, nlag + nlead):  # the sweep's way: final in earlier blocks
                    m = cols[side, j]
                    vs = V[m, k0:k1]
                    a = pad + k0 - doff[m]
                    ys = ypad[a:a + wb]
                    for k in range(wb):
                        sb[k] += vs[k] * ys[k]
                ab = achain[k0:k1]
                yb = yv[k0:k1]
                if side == 0:
                    for k in range(wb):
                        ynew = sb[k] + ab[k] * yprev
                        d = ynew - yb[k]
                        delta2 += d * d
                        yb[k] = ynew
                        yprev = ynew
                else:
                    for k in range(wb - 1, -1, -1):
                        ynew = sb[k] + ab[k] * yprev
                        d = ynew - yb[k]
                        delta2 += d * d
                        yb[k] = ynew
                        yprev = ynew
        th = _dot(theff[t0:t0 + nt], yv[t0:t0 + nt], nt) if has_th else 0.0
        for z in range(zmin, zmax + 1):  # the reset bins, with the rank-1 rows
            sz = pinv[z]
            for m in range(M):
                sz += V[m, z] * ypad[pad + z - doff[m]]
            yz = yv[z]
            extra = 0.0
            if has_th:
                extra += dt * (th - theff[z] * yz) / nz
            if has_fl and z == 0:
                extra += dt * (_dot(fleff, yv, n) - fleff[0] * yz)
            ynew = sz + inv[z] * extra
            d = ynew - yz
            delta2 += d * d
            yv[z] = ynew
            th += theff[z] * d
        sweeps = it + 1
        if not math.sqrt(delta2) > lim:  # converged (NaN also stops; the caller catches it)
            if it == 0:
                for k in range(lo, n):
                    yv[k] = x0[k]
            break
    return sweeps


@njit(cache=True, fastmath={"reassoc"}, _nrt=False)
def _abs_sum(x, lo, n):
    """(sum |x[lo:n]|, whether some entry is negative). The additions may be regrouped
    (fastmath 'reassoc' on this function only) so that the sum vectorises; the grouping
    depends only on lo and n, so a member's result is the same alone or in any batch."""
    s = 0.0
    neg = False
    for k in range(np.uint64(lo), np.uint64(n)):
        a = x[k]
        s += abs(a)
        neg |= a < 0.0
    return s, neg


@njit(cache=True, fastmath={"reassoc"}, _nrt=False)
def _clip_sum(x, lo, n):
    """Set negative entries of x[lo:n] to 0 and return their sum (grouped as _abs_sum)."""
    s = 0.0
    for k in range(np.uint64(lo), np.uint64(n)):
        a = max(x[k], 0.0)
        x[k] = a
        s += a
    return s


@njit(cache=True, _nrt=False)
def _finish_span(buf, xo, lo, n, theff, i, tlo, thi, check_mass):
    """Mass check of the explicit methods (spec §8.1-8.3), post-step cleanup (§8.5: clip
    negatives, renormalise) and the output rate theta_eff . p (§9); returns (status, rate).
    x = buf[xo:xo + n] and theta_eff = theff[i], where x[:lo] is known to be 0 and theta_eff
    to be 0 outside [tlo, thi): the passes skip what cannot change the result (a non-finite density takes the full rate dot product, so that failures come out
    as before). Taking the buffer and offset, not a view, spares reference counting."""
    x = buf[xo:xo + n]
    theff = theff[i]
    s, neg = _abs_sum(x, lo, n)
    if check_mass and not abs(s - 1.0) < 1e-12:
        return FAIL_MASS, 0.0
    if neg or abs(s - 1.0) > 1e-15:
        if neg:  # without negatives the clipped sum is s itself
            s = _clip_sum(x, lo, n)
        if not s > 0.0:
            return FAIL_NEGATIVE_TOTAL, 0.0
        rs = 1.0 / s
        for k in range(np.uint64(lo), np.uint64(n)):
            x[k] = x[k] * rs
    if not math.isfinite(s):
        tlo = 0
        thi = n
    r = _dot_span(theff, x, tlo, thi, n)
    if not math.isfinite(r):
        return FAIL_NONFINITE, r
    return OK, r


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
            _matvec(term, work, 0, n, diag, M, doff, V, theff, 0, n, fleff, has_th, has_fl, zb0, zb1, nz, 1.0)
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


@njit(cache=True, _nrt=False)
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


@njit(cache=True, nogil=True)
def run_members(steps, dt, n_pop, nbins, boff, method, approx_order, tol, normord,
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
    sweep_info = np.zeros((P, 10), dtype=np.int64)
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
                m = method[i]
                _delayed_inputs(b, i, step, g0, ng, lam, pconn_ptr, pconn, c_hoff, c_D, c_kptr, c_ks,
                                c_pk, c_group, c_nsyn, hist)
                explicit = m != BACKWARD_EULER
                # (views of a population's rows are made only where needed: each costs a
                # reference count update, comparable to a short loop at these sizes; the
                # explicit methods take p and the offset o instead)
                if not explicit:  # the memo and the extrapolated start of backward Euler
                    pp = p[o:o + n]
                    if has_prev[i]:
                        pin = prev_in[o:o + n]
                        pout = prev_out[o:o + n]
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
                    pin = prev_in[o:o + n]
                    prev_prev2[o:o + n] = prev_prev[o:o + n]
                    has_prev3[i] = has_prev2[i]
                    prev_prev[o:o + n] = pin
                    has_prev2[i] = has_prev[i]
                    pin[:] = pp
                    for g in range(ng):
                        prev_lam[i, g] = lam[g]
                same = asm_ok[i]
                for g in range(ng):
                    if lam[g] != asm_lam[i, g]:
                        same = False
                if not same:
                    # effective threshold flux, floor and operator for these inputs
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
                    M = dcnt[b, i]
                    K = ccnt[b, i]
                    c0 = cptr[b, i]
                    scale = dt if (m == BACKWARD_EULER or m == APPROX_TOL) else 1.0
                    _assemble(scale, lam, ng, coef, M, K, ctag[c0:c0 + K], cm[c0:c0 + K], cvoff[c0:c0 + K], DV,
                              V[i], n, leak[b, o:o + n], gdiag[b], gboff[g0:g0 + ng], dg)
                    if m == BACKWARD_EULER:
                        _gs_setup(n, dt, inv[i], achain[i], dg, M, doff[dptr[b, i]:dptr[b, i] + M], V[i], cols[i],
                                  sweep_info[i], th, fl, has_th, has_fl, zb0, zb1, nz)
                    asm_ok[i] = True
                has_th = flags[i, 0]
                has_fl = flags[i, 1]
                M = dcnt[b, i]
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
                if m == BACKWARD_EULER:
                    pp = p[o:o + n]
                    th = theff[i, :n]
                    fl = fleff[i, :n]
                    x0 = pp
                    pp2 = _dot(pp, pp, n)
                    if has_prev2[i]:
                        # start from the extrapolation of the last densities (linear, quadratic
                        # once there are three) while the density still moves; near a steady
                        # state from p_n, so that fixed points are exact
                        pq = prev_prev[o:o + n]
                        dp = term[:n]
                        for k in range(n):
                            dp[k] = pp[k] - pq[k]
                        if _dot(dp, dp, n) > (EXTRAP * tol[b, i]) ** 2 * pp2:
                            if has_prev3[i]:  # p_n + 2 (p_n - p_n-1) - (p_n-1 - p_n-2)
                                pr = prev_prev2[o:o + n]
                                for k in range(n):
                                    dp[k] = 3.0 * dp[k] + pr[k]
                            else:  # p_n + (p_n - p_n-1)
                                for k in range(n):
                                    dp[k] = pp[k] + dp[k]
                            x0 = dp
                    lim = tol[b, i] * math.sqrt(pp2)  # relative to ||p||_2, as GMRES's rtol (spec §8.4)
                    work_out[b, i] += _gauss_seidel(pp, ypad, pad, n, lo, dt, lim, inv[i], achain[i], M, V[i],
                                                    doff[dptr[b, i]:dptr[b, i] + M],
                                                    cols[i], sweep_info[i], th, fl, has_th, has_fl, zb0, zb1, nz,
                                                    x0, tmp, tmp2)
                else:  # explicit methods update the density in place
                    if m == APPROX_TOL:
                        kterm, ok = _taylor_tol(p, o, term, tmp, lo, n, tol[b, i], normord[b, i], i, diag, M, doff,
                                                dptr[b, i], V, theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, dt)
                        work_out[b, i] += kterm
                        if not ok:
                            status[b] = FAIL_SERIES
                    elif m == APPROX_ORDER:
                        _taylor_order(p, o, term, tmp, lo, n, approx_order[i], i, diag, M, doff, dptr[b, i], V,
                                      theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, dt)
                        work_out[b, i] += approx_order[i]
                    elif not _expm_action(p[o:o + n], n, dt, tmp, term, diag[i, :n], M, doff[dptr[b, i]:dptr[b, i] + M], V[i],
                                          theff[i, :n], fleff[i, :n], has_th, has_fl, zb0, zb1, nz):
                        status[b] = FAIL_SERIES
                if status[b] == OK:
                    if explicit:
                        st, r = _finish_span(p, o, lo, n, theff, i, tlo, thi, True)
                    else:
                        st, r = _finish_span(ypad, pad, 0, n, theff, i, tlo, thi, False)
                    status[b] = st
                    newrate[i] = r
                if status[b] != OK:
                    fail_step[b] = step
                    fail_pop[b] = i
                    break
                if not explicit:
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
