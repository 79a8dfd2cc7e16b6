"""Runtime defaults in one packaged YAML (``sweeper/sweeper.yaml``), the way dask-jobqueue keeps
``jobqueue.yaml``.

Lookup order, last wins: the packaged defaults, ``dask.config`` (``~/.config/dask/*.yaml`` under the
``sweeper:`` key, once Dask is imported), environment variables ``SWEEPER__SECTION__KEY``; explicit
arguments to a function beat all of these (use :func:`get` with ``override``).  Dask is not imported
here, so commands that never start a cluster (``simulate``, ``expand``) stay quick to start.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_FILE = Path(__file__).with_name("sweeper.yaml")
ENV_PREFIX = "SWEEPER__"
_MISSING = object()


def _canonical(key: str) -> str:
    return key.strip().lower().replace("_", "-")


@lru_cache(maxsize=1)
def defaults() -> dict:
    """The packaged defaults (the ``sweeper:`` mapping of sweeper.yaml)."""
    return yaml.safe_load(DEFAULTS_FILE.read_text())["sweeper"]


def _env() -> dict[tuple[str, ...], Any]:
    out = {}
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:  # keys only: cheap on a hot path
        text = os.environ[name]
        parts = tuple(_canonical(p) for p in name[len(ENV_PREFIX):].split("__") if p)
        out[parts] = _parse(text)
    return out


@lru_cache(maxsize=256)
def _parse(text: str) -> Any:
    return yaml.safe_load(text) if text.strip() else text


def _lookup(tree: Any, parts: tuple[str, ...]) -> Any:
    for p in parts:
        if not isinstance(tree, dict):
            return _MISSING
        tree = {_canonical(k): v for k, v in tree.items()}.get(p, _MISSING)
        if tree is _MISSING:
            return _MISSING
    return tree


@lru_cache(maxsize=1)
def register_with_dask() -> None:
    """Make the packaged defaults visible in ``dask.config`` under ``sweeper.*`` (once per process)."""
    import dask.config
    dask.config.update_defaults({"sweeper": defaults()})


def get(key: str, override: Any = None) -> Any:
    """The value of ``key`` (dotted, e.g. ``"engine.max-batch"``); ``override`` wins when not None."""
    if override is not None:
        return override
    parts = tuple(_canonical(p) for p in key.split("."))
    env = _env()
    if parts in env:
        return env[parts]
    if "dask.config" in sys.modules:
        register_with_dask()
        import dask.config
        value = dask.config.get("sweeper." + ".".join(parts), default=_MISSING)
    else:
        value = _lookup(defaults(), parts)
    if value is _MISSING:
        raise KeyError(f"no sweeper setting {key!r} (see {DEFAULTS_FILE.name})")
    return value
