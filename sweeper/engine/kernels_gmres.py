"""Compiled backward-Euler step (gmres, docs/method.md §8.4): ``(I - dt J) y = p`` solved
by Gauss-Seidel sweeps ordered along the leak, started from an extrapolation of the last
densities, or, when the operator's band is narrow, directly (banded LU and Woodbury)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels_common import _dot

MAX_SWEEPS = 2000
EXTRAP = 1e3  # extrapolate the start while ||p_n - p_n-1|| > EXTRAP * tol * ||p_n||


@njit(cache=True)
def _gs_setup(n, dt, inv, achain, diag, M, doff, V, cols, info, theff, fleff, has_th, has_fl, zb0, zb1, nz):
    """Per-operator part of :func:`_gauss_seidel`. Divides every row of V by the diagonal
    of I - dt J (inv holds its inverse) and sets the chain coefficients. For each side of
    the reset bins (0: below, swept upward; 1: above, swept downward) ``cols[side]`` lists
    its columns other than the chain one, those pointing against the sweep (they read the
    previous sweep's values) first, and ``info[4 * side:4 * side + 4]`` = (how many of
    those, how many pointing the sweep's way, block length = their shortest offset, 1 if
    the side reads nothing from later in the sweep: then its first sweep is final).
    info[8:10] is the range of bins where theff is nonzero; info[10], the most sweeps to take,
    is set by the caller."""
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
    makes steady states exact fixed points (as with dipde's GMRES). Returns the sweeps: info[10]
    when it stopped there unconverged (the caller then solves directly, see band_cap).
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
    for it in range(info[10]):
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


@njit(cache=True, inline='always')
def _reuse_last_step(p, o, n, i, ng, lam, prev_in, prev_out, prev_prev, prev_prev2, prev_lam,
                     has_prev, has_prev2, has_prev3):
    """The memo of backward Euler: a step whose inputs (density and lam) are bit-equal to the
    last step's gives the same result, so it is copied (returns True). Otherwise the last
    densities shift down the history used by the extrapolated start (returns False)."""
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
            return True
    pin = prev_in[o:o + n]
    prev_prev2[o:o + n] = prev_prev[o:o + n]
    has_prev3[i] = has_prev2[i]
    prev_prev[o:o + n] = pin
    has_prev2[i] = has_prev[i]
    pin[:] = pp
    for g in range(ng):
        prev_lam[i, g] = lam[g]
    return False


@njit(cache=True, inline='always')
def step_backward_euler(p, o, n, lo, dt, tol, i, fresh, diag, M, doff, V, theff, fleff, flags,
                        zb0, zb1, inv, achain, cols, sweep_info, term, tmp, tmp2, ypad, pad,
                        prev_prev, prev_prev2, has_prev2, has_prev3):
    """One gmres step of population i into ``ypad[pad:pad + n]``; returns the sweeps taken.
    ``fresh``: the operator was just assembled (then the sweep coefficients are set up).
    (At most 30 arguments: numba cannot inline a call with more.)"""
    has_th = flags[i, 0]
    has_fl = flags[i, 1]
    nz = 1.0 if zb1 < 0 else 2.0
    if fresh:
        _gs_setup(n, dt, inv[i], achain[i], diag[i, :n], M, doff, V[i], cols[i], sweep_info[i],
                  theff[i, :n], fleff[i, :n], has_th, has_fl, zb0, zb1, nz)
    pp = p[o:o + n]
    th = theff[i, :n]
    fl = fleff[i, :n]
    x0 = pp
    pp2 = _dot(pp, pp, n)
    if has_prev2[i]:
        # start from the extrapolation of the last densities (linear, quadratic once there
        # are three) while the density still moves; near a steady state from p_n, so that
        # fixed points are exact
        pq = prev_prev[o:o + n]
        dp = term[:n]
        for k in range(n):
            dp[k] = pp[k] - pq[k]
        if _dot(dp, dp, n) > (EXTRAP * tol) ** 2 * pp2:
            if has_prev3[i]:  # p_n + 2 (p_n - p_n-1) - (p_n-1 - p_n-2)
                pr = prev_prev2[o:o + n]
                for k in range(n):
                    dp[k] = 3.0 * dp[k] + pr[k]
            else:  # p_n + (p_n - p_n-1)
                for k in range(n):
                    dp[k] = pp[k] + dp[k]
            x0 = dp
    lim = tol * math.sqrt(pp2)  # relative to ||p||_2, as GMRES's rtol (docs/method.md §8.4)
    return _gauss_seidel(pp, ypad, pad, n, lo, dt, lim, inv[i], achain[i], M, V[i], doff, cols[i],
                         sweep_info[i], th, fl, has_th, has_fl, zb0, zb1, nz, x0, tmp, tmp2)


# A direct banded solve instead of Gauss-Seidel when kl * ku + 4 (kl + ku) <= BAND_LIMIT (kl, ku:
# how far the operator reaches below and above the diagonal): about its cost per bin, against a
# few sweeps of Gauss-Seidel. Narrow bands with strong jumps against the sweep (dipde's cortical
# column: 35 sweeps per step) then cost one factorisation and two triangular solves.
BAND_LIMIT = 96
# Wider bands, up to BAND_MAX (the factors' memory is n * (kl + ku + 1)), are solved directly
# too once Gauss-Seidel proves dearer: a step stops sweeping after band_cap sweeps, about twice
# the cost of a direct solve, and that population is solved directly from then on.
BAND_MAX = 1000


@njit(cache=True)
def band_cost(kl, ku):
    """About the cost per bin of factorising and solving a band (kl below, ku above)."""
    return kl * ku + 4 * (kl + ku)


@njit(cache=True)
def use_band(kl, ku):
    return band_cost(kl, ku) <= BAND_LIMIT


@njit(cache=True)
def band_cap(M, kl, ku):
    """The most Gauss-Seidel sweeps worth a step (a sweep costs about M + 1 per bin, M the
    diagonals) before a direct solve is cheaper; MAX_SWEEPS when the band is too wide."""
    cost = band_cost(kl, ku)
    if cost > BAND_MAX:
        return MAX_SWEEPS
    return max(2, min(MAX_SWEEPS, 2 * cost // (M + 1)))


@njit(cache=True)
def band_widths(M, doff):
    """(kl, ku): how far the operator reaches below and above the diagonal (the leak: 1)."""
    kl = 1
    ku = 1
    for m in range(M):
        kl = max(kl, doff[m])
        ku = max(ku, -doff[m])
    return kl, ku


@njit(cache=True)
def band_setup(n, dt, diag, M, doff, V, kl, ku, ab, Z, S, theff, fleff, has_th, has_fl, zb0, zb1, nz):
    """LU factors (no pivoting: I - dt J without its rank-1 rows is column diagonally dominant)
    of the banded part B of I - dt J in ``ab`` (ab[ku + r - c, c] = B[r, c]), and for the reset
    and floor rows (A = B - U W^T, U = [e_zb0 + e_zb1, e_0], W = [dt theta_eff / nz, dt floor_eff])
    Z = B^-1 U and S = (I - W^T Z)^-1 (Woodbury)."""
    w = kl + ku + 1
    for r in range(w):
        for c in range(n):
            ab[r, c] = 0.0
    for k in range(n):
        ab[ku, k] = 1.0 - diag[k]
    for m in range(M):
        off = doff[m]
        for k in range(max(0, off), min(n, n + off)):
            ab[ku + off, k - off] -= V[m, k]
    for c in range(n):
        piv = ab[ku, c]
        for r in range(c + 1, min(n, c + kl + 1)):
            ab[ku + r - c, c] /= piv
        for j in range(c + 1, min(n, c + ku + 1)):
            u = ab[ku + c - j, j]
            if u != 0.0:
                for r in range(c + 1, min(n, c + kl + 1)):
                    ab[ku + r - j, j] -= ab[ku + r - c, c] * u
    for q in range(2):
        z = Z[q]
        for k in range(n):
            z[k] = 0.0
        if q == 0:
            z[zb0] = 1.0
            if zb1 >= 0:
                z[zb1] = 1.0
        else:
            z[0] = 1.0
        band_solve(n, kl, ku, ab, z)
    # S = I - W^T Z for the rank-1 parts that are present, then its inverse
    g = np.zeros((2, 2))
    for q in range(2):
        for k in range(n):
            g[0, q] += (dt / nz) * theff[k] * Z[q, k] if has_th else 0.0
            g[1, q] += dt * fleff[k] * Z[q, k] if has_fl else 0.0
    a = 1.0 - g[0, 0]
    b = -g[0, 1]
    c = -g[1, 0]
    d = 1.0 - g[1, 1]
    det = a * d - b * c
    S[0, 0] = d / det
    S[0, 1] = -b / det
    S[1, 0] = -c / det
    S[1, 1] = a / det


@njit(cache=True)
def band_solve(n, kl, ku, ab, y):
    """y <- B^-1 y with the factors of :func:`band_setup`."""
    for c in range(n):
        yc = y[c]
        if yc != 0.0:
            for r in range(c + 1, min(n, c + kl + 1)):
                y[r] -= ab[ku + r - c, c] * yc
    for c in range(n - 1, -1, -1):
        y[c] /= ab[ku, c]
        yc = y[c]
        if yc != 0.0:
            for r in range(max(0, c - ku), c):
                y[r] -= ab[ku + r - c, c] * yc


@njit(cache=True)
def step_backward_euler_banded(p, o, n, dt, kl, ku, ab, Z, S, theff, fleff, has_th, has_fl, nz, y):
    """One gmres step solved directly: y = A^-1 p[o:o + n] by the banded factors and Woodbury."""
    for k in range(n):
        y[k] = p[o + k]
    band_solve(n, kl, ku, ab, y)
    w0 = 0.0
    w1 = 0.0
    if has_th:
        for k in range(n):
            w0 += theff[k] * y[k]
        w0 *= dt / nz
    if has_fl:
        for k in range(n):
            w1 += fleff[k] * y[k]
        w1 *= dt
    c0 = S[0, 0] * w0 + S[0, 1] * w1
    c1 = S[1, 0] * w0 + S[1, 1] * w1
    for k in range(n):
        y[k] += Z[0, k] * c0 + Z[1, k] * c1
    return 1
