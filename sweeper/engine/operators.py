"""Leak and synaptic-jump operators of one population (spec §5-6), stored sparse.

The generator of a population is ``J = L + sum_d lambda_d F_d``. We never store J dense:

* the leak L is bidiagonal: bin k loses ``rate[k] * p[k]`` to bin ``dest[k]`` (one bin toward
  0 V), reset bins have no leak;
* a jump operator F is a banded part (a shifted copy of the grid, one diagonal per weight
  component plus float-noise neighbours) plus two rank-1 parts: the mass ``theta . p`` that
  crossed threshold is put back into the reset bins (split equally), and the mass ``floor . p``
  pushed below v_min is added to bin 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


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


def leak_matrix(rate: np.ndarray, dest: np.ndarray) -> sp.csr_matrix:
    n = len(rate)
    src = np.flatnonzero(dest >= 0)
    rows = np.concatenate([np.arange(n), dest[src]])
    cols = np.concatenate([np.arange(n), src])
    vals = np.concatenate([-rate, rate[src]])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


@dataclass
class Jump:
    """F for one weight distribution on one grid, per unit presynaptic rate."""

    band: sp.csr_matrix   # -pi on the diagonal plus overlap fractions of shifted bins
    theta: np.ndarray     # threshold flux per bin (mass that crossed v_max)
    floor: np.ndarray     # mass pushed below v_min, piled into bin 0

    def dense(self, zb: tuple[int, ...]) -> np.ndarray:
        F = self.band.toarray()
        for z in zb:
            F[z, :] += self.theta / len(zb)
        F[0, :] += self.floor
        return F


SNAP_SHIFT = 1e-9  # shifted edges closer than SNAP_SHIFT * dv to a grid edge are put on it


def _overlaps(e: np.ndarray, w: float, snap: float = SNAP_SHIFT):
    """(rows, cols, frac): fraction of shifted bin ``col`` (edges + w) landing in bin ``row``.

    A weight that is a whole number of bins shifts the edges onto the grid up to float
    noise (~1e-15 V), which would leave ~1e-11 "overlaps" with the neighbouring bins. Shifted
    edges within ``snap * dv`` of a grid edge are therefore put exactly on it (spec §14:
    snapping within 1e-12 V changes rates by <= 1.1e-12); the fractions of every shifted
    bin still sum to 1, so mass is conserved exactly. ``snap=0`` gives the literal rule.
    """
    n = len(e) - 1
    s = e + w
    if snap > 0 and n > 1:
        tol = snap * float(np.median(np.diff(e)))
        j = np.clip(np.searchsorted(e, s), 1, n)
        nearest = np.where(np.abs(e[j] - s) < np.abs(s - e[j - 1]), e[j], e[j - 1])
        close = (np.abs(nearest - s) <= tol) & (s > e[0] - tol) & (s < e[-1] + tol)
        s = np.where(close, nearest, s)
    jlo = np.searchsorted(e[1:], s[:-1], side="right")      # first j with e[j+1] > a1
    jhi = np.searchsorted(e[:-1], s[1:], side="left") - 1   # last j with e[j] < a2
    cnt = np.maximum(jhi - jlo + 1, 0)
    cols = np.repeat(np.arange(n), cnt)
    start = np.cumsum(cnt) - cnt
    rows = jlo[cols] + (np.arange(len(cols)) - start[cols])
    a1, a2, b1, b2 = s[cols], s[cols + 1], e[rows], e[rows + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(
            a1 >= b1,
            np.where(a2 <= b2, 1.0, np.where(a1 >= b2, 0.0, (b2 - a1) / (a2 - a1))),
            np.where(a2 <= b1, 0.0, np.where(a2 >= b2, (b2 - b1) / (a2 - a1), (a2 - b1) / (a2 - a1))))
    keep = frac != 0.0
    return rows[keep], cols[keep], frac[keep]


def _component(e: np.ndarray, w: float, pi: float, snap: float = SNAP_SHIFT):
    """Band entries (rows, cols, vals) and the per-column lost mass of one weight component."""
    n = len(e) - 1
    rows, cols, frac = _overlaps(e, w, snap)
    # M = -pi*I, then M[j, L] += frac*pi; entries ordered by (column, row)
    rows = np.concatenate([np.arange(n), rows])
    cols = np.concatenate([np.arange(n), cols])
    vals = np.concatenate([np.full(n, -pi), frac * pi])
    order = np.lexsort((np.concatenate([np.zeros(n), np.ones(len(frac))]), rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    # merge the self-overlap into the diagonal: (-pi) + frac*pi, in that order
    dup = np.flatnonzero((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1]))
    vals[dup] = vals[dup] + vals[dup + 1]
    keep = np.ones(len(vals), bool)
    keep[dup + 1] = False
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    # lost mass = minus the column sum, rows added in order (every column has its diagonal)
    starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
    lost = -np.add.reduceat(vals, starts)
    return rows, cols, vals, lost


def jump_operator(e: np.ndarray, weight_values, weight_probs, snap: float = SNAP_SHIFT) -> Jump:
    """F = sum of the weight components' operators, in sorted weight order (spec §6)."""
    n = len(e) - 1
    all_rows, all_cols, all_vals = [], [], []
    theta = np.zeros(n)
    floor = np.zeros(n)
    for w, pi in zip(weight_values, weight_probs):
        rows, cols, vals, lost = _component(e, float(w), float(pi), snap)
        all_rows.append(rows)
        all_cols.append(cols)
        all_vals.append(vals)
        if w > 0:
            theta = theta + lost
        else:
            floor = floor + lost
    band = sp.coo_matrix((np.concatenate(all_vals), (np.concatenate(all_rows), np.concatenate(all_cols))),
                         shape=(n, n)).tocsr()
    band.sum_duplicates()
    band.sort_indices()
    return Jump(band, theta, floor)
