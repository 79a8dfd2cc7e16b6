"""Reading and writing networks: sweeper network files and PopNet simulation directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..model import Network

POPNET_KEYS = ("network", "simulation", "networks", "run", "manifest")


def is_popnet_config(doc: Any) -> bool:
    """A parsed file is a PopNet/SONATA config (rather than a network file)."""
    return isinstance(doc, dict) and "populations" not in doc and doc.get("schema") is None and \
        any(k in doc for k in POPNET_KEYS)


def load_network(path_or_obj: Any) -> Network:
    """A Network from a network file (JSON/YAML), a PopNet config.json (or its directory),
    a parsed network dict, or an object with a ``to_network()`` method."""
    if isinstance(path_or_obj, Network):
        return path_or_obj
    if isinstance(path_or_obj, dict):
        from .netfile import network_from_dict
        return network_from_dict(path_or_obj)
    if isinstance(path_or_obj, (str, os.PathLike)):
        path = Path(path_or_obj)
        if path.is_dir():
            if (path / "config.json").is_file():
                path = path / "config.json"
            else:
                raise ModelError("is a directory without a config.json; give a network file or a PopNet "
                                 "config.json", str(path))
        from .netfile import network_from_dict, read_text
        doc = read_text(path)
        if is_popnet_config(doc):
            from .popnet import read_popnet_config
            return read_popnet_config(path).network
        return network_from_dict(doc, where=str(path), base_dir=path.parent)
    to_network = getattr(path_or_obj, "to_network", None)
    if callable(to_network):
        return to_network()
    raise ModelError(f"cannot load a network from a {type(path_or_obj).__name__} "
                     "(give a path, a dict or a sweeper Network)")


def save_network(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` as a sweeper network file (JSON, or YAML for .yaml/.yml)."""
    from .netfile import write_network
    return write_network(net, path)


__all__ = ["load_network", "save_network", "is_popnet_config"]
