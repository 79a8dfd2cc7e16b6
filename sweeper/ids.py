"""Point ids: "p" + the first 15 hex digits of a SHA-1 of a point's parameter values
(:func:`sweeper.sweep.points.point_codes` makes them).  60 bits, so in memory an id is a uint64
"code" (8 bytes a point, where a Python str costs about 70); it is text only where it is shown
or stored.  NO_ID stands for no id (''), BAD_ID for text that is not an id."""

from __future__ import annotations

import numpy as np

NO_ID = np.uint64(2**64 - 1)
BAD_ID = np.uint64(2**64 - 2)
BLOCK = 65536  # rows converted at a time: temporaries stay small at any size
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[_HEX] = np.arange(16, dtype=np.uint8)
_SHIFTS = np.arange(56, -1, -4, dtype=np.uint64)  # the 15 hex digits, most significant first


def id_text(codes: np.ndarray) -> np.ndarray:
    """Id codes as text ("p" + 15 hex digits; '' for NO_ID and BAD_ID), an object array of str."""
    codes = np.asarray(codes, dtype=np.uint64)
    digits = _HEX[((codes[:, None] >> _SHIFTS) & np.uint64(15)).astype(np.intp)]
    raw = np.empty((len(codes), 16), dtype=np.uint8)
    raw[:, 0] = ord("p")
    raw[:, 1:] = digits
    out = raw.view("S16").ravel().astype("U16").astype(object)
    out[codes >= BAD_ID] = ""
    return out


def id_codes(ids) -> np.ndarray:
    """Ids as text -> their codes; '' gives NO_ID, any other text that is not an id BAD_ID."""
    ids = np.asarray(ids)
    n = len(ids)
    out = np.empty(n, dtype=np.uint64)
    for a in range(0, n, BLOCK):
        block = ids[a:a + BLOCK]
        u = np.ascontiguousarray(block.astype("U17")).view(np.uint32).reshape(len(block), 17)
        b = np.where(u < 256, u, 1).astype(np.uint8)  # no character of an id is outside ascii
        nib = _NIBBLE[b[:, 1:16]]
        ok = (b[:, 0] == ord("p")) & (nib != 255).all(axis=1) & (b[:, 16] == 0)
        val = (nib.astype(np.uint64) << _SHIFTS).sum(axis=1, dtype=np.uint64)
        out[a:a + len(block)] = np.where(ok, val, np.where(u[:, 0] == 0, NO_ID, BAD_ID))
    return out
