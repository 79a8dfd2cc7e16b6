"""Compiled steps of the explicit methods: the Taylor series of expm(dt J) (approx,
docs/method.md §8.1-8.2) and the matrix exponential itself (exact, §8.3, a Taylor series over
substeps). Each updates the density x = p[o:o + n] in place with matrix-vector products."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels_common import _matvec, _vnorm

MAX_TAYLOR_TERMS = 2000
MAX_SUBSTEPS = 100_000  # exact method: dt*||J||_1 beyond 50000 means the network ran away


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
