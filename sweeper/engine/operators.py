"""Leak and synaptic-jump operators of one population (docs/method.md §5-6), stored sparse.

The generator of a population is ``J = L + sum_d lambda_d F_d``. We never store J dense:

* the leak L is bidiagonal: bin k loses ``rate[k] * p[k]`` to bin ``dest[k]`` (one bin toward
  0 V), reset bins have no leak;
* a jump operator F is a banded part (the grid shifted by each weight: a few diagonals)
  plus two rank-1 parts: the mass ``theta . p`` that crossed threshold is put back into the
  reset bins (split equally), and the mass ``floor . p`` pushed below v_min is added to bin 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


def leak_rates(e: np.ndarray, zb: tuple[int, ...], tau_values, tau_probs) -> np.ndarray:
    """Outflow rate of every bin toward 0 V, mixed over the tau_m distribution (sorted order)."""
    n = len(e) - 1
    above = np.arange(max(zb) + 1, n)
    below = np.arange(0, min(zb))
    rate = np.zeros(n)
    for tau, q in zip(tau_values, tau_probs):
        r = np.zeros(n)
        # literal edge / (tau * width) for bit-exactness; the outer edge is the one farther from 0
        r[above] = e[above + 1] / (tau * (e[above + 1] - e[above]))
        r[below] = e[below] / (tau * (e[below] - e[below + 1]))
        rate = rate + q * r
    return rate


def leak_dest(n: int, zb: tuple[int, ...]) -> np.ndarray:
    """The bin each bin leaks into (-1 for reset bins, which do not leak)."""
    dest = np.full(n, -1, dtype=np.int64)
    dest[max(zb) + 1:] = np.arange(max(zb), n - 1)
    dest[:min(zb)] = np.arange(1, min(zb) + 1)
    return dest


def leak_matrix(rate: np.ndarray, dest: np.ndarray) -> "scipy.sparse.csr_matrix":
    n = len(rate)
    src = np.flatnonzero(dest >= 0)
    rows = np.concatenate([np.arange(n), dest[src]])
    cols = np.concatenate([np.arange(n), src])
    vals = np.concatenate([-rate, rate[src]])
    import scipy.sparse as sp  # only for checks and tests: the engine never builds matrices
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


@dataclass
class Jump:
    """F for one weight distribution on one grid, per unit presynaptic rate.

    Off-diagonal part as diagonals: ``values[m, k]`` is F[k, k - offsets[m]]; ``diag`` is
    F's main diagonal (without the rank-1 parts); ``theta`` (threshold flux, added to the
    reset bins split equally) and ``floor`` (mass pushed below v_min, added to bin 0) are
    the rank-1 rows.
    """

    offsets: np.ndarray
    values: np.ndarray
    diag: np.ndarray
    theta: np.ndarray
    floor: np.ndarray

    @property
    def band(self) -> "scipy.sparse.csr_matrix":
        """The banded part (main diagonal and the shifted copies) as a sparse matrix."""
        n = len(self.diag)
        rows, cols, vals = [np.arange(n)], [np.arange(n)], [self.diag]
        for off, vec in zip(self.offsets, self.values):
            k = np.flatnonzero(vec)
            rows.append(k)
            cols.append(k - off)
            vals.append(vec[k])
        import scipy.sparse as sp
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))

    def dense(self, zb: tuple[int, ...]) -> np.ndarray:
        F = self.band.toarray()
        for z in zb:
            F[z, :] += self.theta / len(zb)
        F[0, :] += self.floor
        return F


@njit(cache=True)
def _frac(a1, a2, b1, b2):
    """Fraction of the shifted bin [a1, a2] that lands in bin [b1, b2] (docs/method.md §6.1)."""
    if a1 >= b1:
        if a2 <= b2:
            return 1.0
        if a1 >= b2:
            return 0.0
        return (b2 - a1) / (a2 - a1)
    if a2 <= b1:
        return 0.0
    if a2 >= b2:
        return (b2 - b1) / (a2 - a1)
    return (a2 - b1) / (a2 - a1)


@njit(cache=True)
def _jump_walk(e, ws, pis, index, values, diag, theta, floor, fill):
    """Walk every (shifted bin, target bin) overlap of every weight component.

    With ``fill`` False only marks the offsets that occur (index[offset + n - 1] = 1);
    otherwise adds M_i = -pi I + overlaps into values/diag and the lost mass (minus the
    column sum, rows added in order, docs/method.md §6.1) into theta (w > 0) or floor (w <= 0).
    """
    n = len(e) - 1
    for c in range(len(ws)):
        w = ws[c]
        pi = pis[c]
        s = e + w  # float64 shift, no snapping onto the grid (DiPDE's arithmetic)
        j = 0
        for L in range(n):
            a1 = s[L]
            a2 = s[L + 1]
            while j < n and e[j + 1] <= a1:
                j += 1
            acc = 0.0
            placed = False
            dval = -pi
            jj = j
            while jj < n and e[jj] < a2:
                f = _frac(a1, a2, e[jj], e[jj + 1])
                if f != 0.0:
                    if jj == L:
                        dval = (-pi) + f * pi
                        placed = True
                        acc += dval
                    else:
                        if jj > L and not placed:
                            acc += -pi
                            placed = True
                        v = f * pi
                        if fill:
                            values[index[jj - L + n - 1], jj] += v
                        else:
                            index[jj - L + n - 1] = 1
                        acc += v
                jj += 1
            if not placed:
                acc += -pi
            if fill:
                diag[L] += dval
                if w > 0:
                    theta[L] += -acc
                else:
                    floor[L] += -acc


def jump_operator(e: np.ndarray, weight_values, weight_probs) -> Jump:
    """F = sum of the weight components' operators, in sorted weight order (docs/method.md §6).

    The shifted edges are ``e + w`` in float64, as DiPDE computes them: a weight that is a
    whole number of bins leaves tiny overlaps (float noise, up to ~1e-11) with the
    neighbouring bins and threshold flux of ~1e-17 in columns that do not cross threshold;
    they are kept, because DiPDE's numbers contain them.
    """
    e = np.ascontiguousarray(e, dtype=float)
    n = len(e) - 1
    ws = np.asarray(weight_values, dtype=float)
    pis = np.asarray(weight_probs, dtype=float)
    index = np.zeros(2 * n - 1, dtype=np.int64)
    diag, theta, floor = np.zeros(n), np.zeros(n), np.zeros(n)
    _jump_walk(e, ws, pis, index, np.zeros((0, n)), diag, theta, floor, False)
    offsets = np.flatnonzero(index) - (n - 1)
    index[:] = 0
    index[offsets + n - 1] = np.arange(len(offsets))
    values = np.zeros((len(offsets), n))
    _jump_walk(e, ws, pis, index, values, diag, theta, floor, True)
    return Jump(offsets.astype(np.int64), values, diag, theta, floor)
