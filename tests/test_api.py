"""The public API: everything in ``sweeper.__all__`` is listed and importable; ``import sweeper`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import sweeper


def test_all_names_are_listed_and_resolve():
    assert set(sweeper.__all__) <= set(dir(sweeper))
    for name in sweeper.__all__:
        assert getattr(sweeper, name) is not None, name
    for name in ("Sweep", "run_sweep", "open_sweep", "points_frame", "simulate", "simulate_batch",
                 "load_network", "save_network", "Network", "ModelError"):
        assert name in sweeper.__all__


def test_entry_points_resolve_to_the_api_module():
    import sweeper.api
    import sweeper.engine
    assert sweeper.load_network is sweeper.api.load_network
    assert sweeper.run_popnet is sweeper.api.run_popnet
    assert sweeper.simulate is sweeper.api.simulate is sweeper.engine.simulate


def test_import_sweeper_loads_no_heavy_dependency():
    code = ("import sys, json, sweeper; dir(sweeper); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"dask", "distributed", "numba", "zarr", "h5py", "pandas", "xarray"}, loaded
