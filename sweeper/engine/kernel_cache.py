"""Keep numba's on-disk cache of the engine's kernels consistent across their modules.

numba checks a cached function against its own source file only, but a compiled function
contains the kernels it calls from other modules: after an edit (or an upgrade) that
changes only kernels_gmres.py, ``run_members`` would still be loaded from the cache with
the old solver inside. :func:`refresh` therefore stamps the cache with a hash of all kernel
modules and flushes every cached kernel of them when that hash changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

STAMP = "sweeper-engine-kernels.stamp"


def refresh(modules) -> None:
    """Flush the cached kernels of ``modules`` unless they were compiled from these sources."""
    from numba.core.dispatcher import Dispatcher

    digest = hashlib.sha256()
    for mod in modules:
        digest.update(Path(mod.__file__).read_bytes())
    stamp = digest.hexdigest()
    caches = [obj._cache for mod in modules for obj in vars(mod).values()
              if isinstance(obj, Dispatcher) and getattr(obj, "_cache", None) is not None
              and hasattr(obj._cache, "flush") and getattr(obj._cache, "_cache_path", None)]
    if not caches:
        return
    try:
        marker = Path(caches[0]._cache_path) / STAMP
        if marker.exists() and marker.read_text() == stamp:
            return
        for cache in caches:
            cache.flush()
        marker.write_text(stamp)
    except OSError:  # a read-only cache directory: numba then does not write one either
        pass
