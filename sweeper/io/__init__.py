"""Reading and writing networks: sweeper network files and PopNet simulation directories.

The input formats are listed in :mod:`sweeper.io.formats`. Nothing here runs the engine:
:func:`load_network` returns a network that passed the model's checks; whether the engine can
run it is decided by ``sweeper.engine.check`` (``sweeper.load_network`` does both).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..model import Network
from .formats import FORMATS, guess_format, is_popnet_config


def load_network(path_or_obj: Any) -> Network:
    """A Network from a network file (JSON/YAML), a PopNet config.json (or its directory),
    a parsed network dict, or an object with a ``to_network()`` method."""
    if isinstance(path_or_obj, Network):
        return path_or_obj
    if isinstance(path_or_obj, dict):
        from .netfile import network_from_dict
        return network_from_dict(path_or_obj)
    if isinstance(path_or_obj, (str, os.PathLike)):
        from .formats import read_network_path
        return read_network_path(path_or_obj)
    to_network = getattr(path_or_obj, "to_network", None)
    if callable(to_network):
        return to_network()
    raise ModelError(f"cannot load a network from a {type(path_or_obj).__name__} "
                     "(give a path, a dict or a sweeper Network)")


def save_network(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` as a sweeper network file (JSON, or YAML for .yaml/.yml)."""
    from .netfile import write_network
    return write_network(net, path)


__all__ = ["FORMATS", "guess_format", "is_popnet_config", "load_network", "save_network"]
