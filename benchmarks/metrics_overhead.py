"""Metrics overhead per chunk task on the tutorial network (jobs/tutorial_weight_grid.yaml)."""
import time
from pathlib import Path

import numpy as np

from sweeper.sweep import Sweep
from sweeper.sweep.runner import time_axis
from sweeper.engine import simulate_batch
from sweeper import metrics as M
sweep = Sweep.from_file(Path(__file__).resolve().parents[1] / "jobs" / "tutorial_weight_grid.yaml")
table = sweep.points()
c = sweep.output["chunk_points"]
times = time_axis(sweep, table)
nets = [sweep.network_for({k: v[i] for k, v in table.items()}) for i in range(c)]
simulate_batch(nets)  # compile / warm caches
sims, mets, olds = [], [], []
for rep in range(3):
    nets = [sweep.network_for({k: v[i] for k, v in table.items()}) for i in range(c * (rep + 1), c * (rep + 2))]
    t0 = time.perf_counter(); res = simulate_batch(nets); t1 = time.perf_counter()
    rates = np.stack([np.asarray(r.rates)[:, :len(times)] for r in res])
    t2 = time.perf_counter(); M.compute(rates, times, sweep.output["metric_window"]); t3 = time.perf_counter()
    M.compute(rates, times, sweep.output["metric_window"], ["mean_rate", "final_rate"]); t4 = time.perf_counter()
    sims.append(t1 - t0); mets.append(t3 - t2); olds.append(t4 - t3)
print(f"chunk of {c} points, {rates.shape[1]} populations, {rates.shape[2]} samples")
print(f"simulate: {np.median(sims)*1e3:.1f} ms; all metrics: {np.median(mets)*1e3:.2f} ms "
      f"({100*np.median(mets)/np.median(sims):.2f} %); mean+final only: {np.median(olds)*1e3:.2f} ms")
