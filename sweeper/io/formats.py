"""The input formats :func:`sweeper.io.load_network` reads: one table, one sniffing rule.

Each format is an object with

- ``name`` and ``description`` (for messages and docs);
- ``guess_can_open(path) -> bool``: cheap, never raises; looks at the suffix, a directory's
  contents or a file's top-level keys (the idea of xarray's ``BackendEntrypoint.guess_can_open``);
- ``read(path) -> Network``: the model-validated network, or ModelError naming the file and key;
- ``input_files(path) -> list[Path]``: every file the network read from ``path`` depends on
  (for fingerprints: :func:`input_digest` hashes them, streamed).

:data:`FORMATS` is tried in order and the first format whose guess says yes reads the path.
The sweep spec (``sweeper.sweep.spec``) and the CLI use the same :func:`guess_format`.

How to add an input format
--------------------------
1. Write a class like :class:`PopNetFormat` below (its ``read`` may live in its own module
   under ``sweeper/io/``; it must not import the engine).
2. Insert an instance into :data:`FORMATS` before :class:`NetworkFileFormat`, which is the
   fallback and claims every other file (so a broken network file gets the network file's errors).
3. Give it a sample and a broken sample in ``tests/test_io_formats.py`` (``SAMPLES`` and
   ``BROKEN``); the conformance tests there run over every entry of :data:`FORMATS`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from ..errors import ModelError
from ..model import Network, TableRate
from .files import hash_files
from .netfile import YAML_SUFFIXES, read_network

#: Top-level keys of a SONATA/PopNet config (a network file has ``populations`` instead).
POPNET_KEYS = ("network", "simulation", "networks", "run", "manifest")


class InputFormat(Protocol):
    name: str
    description: str

    def guess_can_open(self, path: Path) -> bool: ...

    def read(self, path: Path) -> Network: ...

    def input_files(self, path: Path) -> list[Path]: ...


def is_popnet_config(doc: Any) -> bool:
    """A parsed file is a PopNet/SONATA config (rather than a network file)."""
    return isinstance(doc, dict) and "populations" not in doc and doc.get("schema") is None and \
        any(k in doc for k in POPNET_KEYS)


class PopNetFormat:
    """A bmtk PopNet simulation directory: its config.json, or the directory holding one."""

    name = "popnet"
    description = "bmtk PopNet (DiPDE) config.json with its SONATA network files"

    def guess_can_open(self, path: Path) -> bool:
        path = _config_path(Path(path))
        if path.suffix.lower() in YAML_SUFFIXES or not path.is_file():
            return False
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return False
        return is_popnet_config(doc)

    def read(self, path: Path) -> Network:
        from .popnet import read_popnet_config
        config = _config_path(Path(path))
        return read_popnet_config(config).network.validate(str(config))

    def input_files(self, path: Path) -> list[Path]:
        from .popnet.config import config_files
        return config_files(_config_path(Path(path)))


class NetworkFileFormat:
    """sweeper's own network file (``popdens-case/1``), JSON or YAML by suffix."""

    name = "network-file"
    description = "sweeper network file (popdens-case/1 schema), JSON or YAML"

    def guess_can_open(self, path: Path) -> bool:
        path = Path(path)
        return not path.is_dir() or (path / "config.json").is_file()

    def read(self, path: Path) -> Network:
        return read_network(_config_path(Path(path)))

    def input_files(self, path: Path) -> list[Path]:
        path = _config_path(Path(path))
        tables = {path.parent / p.rate.source for p in read_network(path).external
                  if isinstance(p.rate, TableRate) and p.rate.source}
        return [path] + sorted(t for t in tables if t != path)


def _config_path(path: Path) -> Path:
    """A directory stands for the config.json in it."""
    return path / "config.json" if path.is_dir() else path


#: The registry, in the order the guesses are tried.
FORMATS: tuple[InputFormat, ...] = (PopNetFormat(), NetworkFileFormat())


def guess_format(path: str | os.PathLike) -> InputFormat | None:
    """The first format in :data:`FORMATS` that can open ``path`` (None: none can)."""
    path = Path(path)
    for fmt in FORMATS:
        if fmt.guess_can_open(path):
            return fmt
    return None


def input_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of every input file of the network at ``path`` (names relative to its folder)."""
    path = Path(path)
    fmt = guess_format(path)
    if fmt is None:
        raise ModelError("no input format can read this", str(path))
    files = fmt.input_files(path)
    base = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    return hash_files([f.resolve() for f in files], base)


def read_network_path(path: str | os.PathLike) -> Network:
    """Read ``path`` with the format :func:`guess_format` picks (ModelError naming the path otherwise)."""
    path = Path(path)
    fmt = guess_format(path)
    if fmt is None:
        if path.is_dir():
            raise ModelError("is a directory without a config.json; give a network file or a PopNet "
                             "config.json", str(path))
        raise ModelError(f"no input format can read this (known: {', '.join(f.name for f in FORMATS)})", str(path))
    return fmt.read(path)
