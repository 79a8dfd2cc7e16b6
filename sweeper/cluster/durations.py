"""Durations as Slurm and Dask write them ("1:30:00", "2-00:00:00", "45m", 90), in seconds."""

from __future__ import annotations

import re

from ..errors import SweeperError

SLURM_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def seconds(text: str | float | int, where: str) -> float:
    """``text`` in seconds; a SweeperError naming ``where`` when it is not a duration."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if SLURM_TIME.match(s):
        days = 0
        if "-" in s:
            d, s = s.split("-", 1)
            days = int(d)
        parts = [int(p) for p in s.split(":")]
        if days:  # D-HH[:MM[:SS]]
            parts += [0] * (3 - len(parts))
            h, m, sec = parts
        else:     # MM, MM:SS or HH:MM:SS (Slurm's reading)
            h, m, sec = ([0, 0] + parts)[-3:] if len(parts) != 1 else (0, parts[0], 0)
        return float(days * 86400 + h * 3600 + m * 60 + sec)
    from dask.utils import parse_timedelta
    try:
        return float(parse_timedelta(s))
    except (ValueError, KeyError):
        raise SweeperError(f"cannot read {text!r} as a duration (HH:MM:SS or e.g. '45m')",
                           where) from None
