"""open_sweep on a 10^5-point store (a grid of two parameters, 2 populations, 101 samples)."""
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sweeper.store import SweepStore
from sweeper.sweep import points as pts
from sweeper.analysis import open_sweep
path = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "big.zarr")
shutil.rmtree(path, ignore_errors=True)
table = pts.grid({"a": list(np.linspace(0, 1, 400)), "b": list(np.linspace(1, 2, 250))})
ids = pts.point_ids(table, ["a", "b"])
t0 = time.perf_counter()
st = SweepStore.create(path, params=table, ids=ids, populations=["e", "i"], times=np.linspace(0, 0.1, 101),
                       attrs={"spec": "", "name": "bench", "metric_window": None,
                              "coordinates": {"a": {"role": "axis"}, "b": {"role": "axis"}}},
                       chunk_points=64)
print(f"created {st.npoints} points in {time.perf_counter() - t0:.1f} s")
for _ in range(3):
    t0 = time.perf_counter(); ds = open_sweep(path); t1 = time.perf_counter()
    print(f"open_sweep: {t1 - t0:.3f} s")
t0 = time.perf_counter(); m = float(ds["mean_rate"].mean().compute()); print(f"mean over all points (streamed): {time.perf_counter()-t0:.2f} s")
t0 = time.perf_counter(); one = ds.sel(a=ds["a"].values[1234], b=ds["b"].values[1234]); print(f"sel one point: {time.perf_counter()-t0:.3f} s")
