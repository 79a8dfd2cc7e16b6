"""Compiled building blocks shared by every update method: operator assembly, the
matrix-vector product with a population's operator, norms and dot products, and the
post-step cleanup and output rate (docs/method.md §7-9).

The off-diagonal part of a population's generator is stored as a few diagonals (DIA): per
(input group, offset) a length-n vector, offsets +-1 (the leak) last; the reset and floor
rows are rank-1 terms ``(theta_eff . x)/nz`` and ``floor_eff . x``. Hot loops index with
unsigned integers, which spares numba's negative-index checks so that they vectorise.
Helpers compiled with ``_nrt=False`` only index arrays they are given (no reference
counting: at 200 bins an update costs about as much as a pass over the density).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .codes import FAIL_MASS, FAIL_NEGATIVE_TOTAL, FAIL_NONFINITE, OK


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
def _add_diagonal(y, V, m, x, off, a, hi):
    """y[k] += V[m, k] * x[k - off] for k in [a, hi) (nothing when the range is empty)."""
    if hi <= a:
        return
    um = np.uint64(m)
    uoff = np.uint64(off)  # wraps for off < 0: k - uoff is still k - off
    for k in range(np.uint64(a), np.uint64(hi)):
        y[k] += V[um, k] * x[k - uoff]


@njit(cache=True, inline='always')
def _matvec(x, y, lo, n, diag, M, doff, V, theff, tlo, thi, fleff, has_th, has_fl, zb0, zb1, nz, scale):
    """y = (scale * J) x, with V and diag assembled at that scale. Rows and columns below
    ``lo`` are known to be 0 (see run_members) and are left alone; theff is nonzero only
    in [tlo, thi). Unsigned indices spare numba's negative-index checks, so the loops
    vectorise; the arithmetic per row is the same as one diagonal after the other (the
    main diagonal and the first one share a pass, the others go two to a pass)."""
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
    m = 1
    while m < M:  # the other diagonals two at a time: (y + V1 x1) + V2 x2 row by row, as one after the other
        a1 = lo + max(doff[m], 0)  # the columns read, k - off, stay at or above lo
        h1 = min(n, n + doff[m])
        if m + 1 == M:
            _add_diagonal(y, V, m, x, doff[m], a1, h1)
            break
        a2 = lo + max(doff[m + 1], 0)
        h2 = min(n, n + doff[m + 1])
        b0 = max(a1, a2)
        b1 = min(h1, h2)
        if b1 <= b0:
            _add_diagonal(y, V, m, x, doff[m], a1, h1)
            _add_diagonal(y, V, m + 1, x, doff[m + 1], a2, h2)
        else:  # rows outside [b0, b1) hold only one of the two
            _add_diagonal(y, V, m, x, doff[m], a1, b0)
            _add_diagonal(y, V, m, x, doff[m], b1, h1)
            _add_diagonal(y, V, m + 1, x, doff[m + 1], a2, b0)
            _add_diagonal(y, V, m + 1, x, doff[m + 1], b1, h2)
            u1 = np.uint64(m)
            u2 = np.uint64(m + 1)
            o1 = np.uint64(doff[m])  # wraps for off < 0: k - o1 is still k - off
            o2 = np.uint64(doff[m + 1])
            for k in range(np.uint64(b0), np.uint64(b1)):
                y[k] = (y[k] + V[u1, k] * x[k - o1]) + V[u2, k] * x[k - o2]
        m += 2
    if has_th:
        th = scale * _dot_span(theff, x, max(lo, tlo), thi, n) / nz
        y[zb0] += th
        if zb1 >= 0:
            y[zb1] += th
    if has_fl:
        y[0] += scale * _dot(fleff, x, n)


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
    """Mass check of the explicit methods (docs/method.md §8.1-8.3), post-step cleanup (§8.5: clip
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
