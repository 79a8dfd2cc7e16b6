"""``sweeper export``: the points of a store as a table file (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SweeperError
from .dataset import points_frame

FORMATS = {".csv": "to_csv", ".parquet": "to_parquet"}


def export_points(store, out) -> tuple[Path, int]:
    """Write one row per point (parameters, status, error, every metric per population) to
    ``out``; the format follows its suffix. Returns the path and the number of rows."""
    out = Path(out)
    method = FORMATS.get(out.suffix.lower())
    if method is None:
        raise SweeperError(f"cannot export to {out.name}: use a .csv or .parquet file")
    frame = points_frame(store, None)
    if method == "to_parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise SweeperError("writing Parquet needs pyarrow (pip install pyarrow), or export to .csv") from None
    try:
        getattr(frame, method)(out, index=False)
    except OSError as exc:
        raise SweeperError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out, len(frame)
