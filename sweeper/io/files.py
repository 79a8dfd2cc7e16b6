"""Reading the user's files safely: every mistake is one ModelError naming the file, and the
limits in the ``io:`` section of sweeper.yaml are checked before memory or time is spent.

- only regular files are read (a FIFO would block, ``/dev/zero`` never ends);
- ``io.max-file-bytes`` bounds what is read into memory; hashing streams (``io.hash-chunk-bytes``);
- JSON and YAML may nest at most ``io.max-depth`` levels (no RecursionError);
- YAML may use at most ``io.yaml-max-aliases`` aliases and expand to at most
  ``io.yaml-max-nodes`` nodes (no alias bomb), and a mapping may not repeat a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml

from .. import config
from ..errors import ModelError


def limit(name: str) -> int:
    """An ``io.*`` limit from sweeper.yaml (or its overrides), as an int."""
    return int(config.get(f"io.{name}"))


# --------------------------------------------------------------------------- files
def check_regular_file(path: str | os.PathLike, what: str = "a file", max_bytes: int | None = None) -> int:
    """Refuse anything but an existing regular file (not too big); return its size in bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelError("file not found", str(path)) from None
    except OSError as exc:
        raise ModelError(f"cannot read file: {exc.strerror or exc}", str(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"is a directory, expected {what}", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"is not a regular file (a FIFO, device or socket), expected {what}", str(path))
    if max_bytes is not None and st.st_size > max_bytes:
        raise ModelError(f"is {st.st_size} bytes, more than the limit of {max_bytes} (io.max-file-bytes); "
                         f"expected {what}", str(path))
    return st.st_size


def read_bytes(path: str | os.PathLike, what: str = "a file") -> bytes:
    """The contents of a regular file of at most ``io.max-file-bytes``."""
    most = limit("max-file-bytes")
    size = check_regular_file(path, what, most)
    try:
        with open(path, "rb") as fh:
            data = fh.read(size + 1)  # not read(most + 1): Python allocates what read() is asked for
            if len(data) > size:  # grew since stat
                data += fh.read(most + 1 - len(data))
    except OSError as exc:
        raise ModelError(f"cannot read file: {exc.strerror or exc}", str(path)) from None
    if len(data) > most:  # grew since stat
        raise ModelError(f"is more than {most} bytes (io.max-file-bytes); expected {what}", str(path))
    return data


def read_text(path: str | os.PathLike, what: str = "a file") -> str:
    """A UTF-8 text file (see :func:`read_bytes`)."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"cannot read file: not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None


def hash_files(files: Iterable[str | os.PathLike], base: str | os.PathLike | None = None) -> str:
    """sha256 over each file's name (relative to ``base``) and contents, read in chunks."""
    h = hashlib.sha256()
    chunk = limit("hash-chunk-bytes")
    for p in files:
        p = Path(p)
        h.update(str(p.relative_to(base) if base is not None else p).encode())
        check_regular_file(p, "a network input file")
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- JSON
def parse_json(text: str, where: str, duplicate_keys: bool = False) -> Any:
    """Parse JSON; ``duplicate_keys=False`` refuses an object that repeats a key."""
    hook = None if duplicate_keys else _no_duplicates
    if _json_depth(text) > (most := limit("max-depth")):
        raise ModelError(f"JSON nested more than {most} levels deep (io.max-depth)", where)
    try:
        doc = json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        raise ModelError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", where) from None
    except RecursionError:
        raise ModelError(f"JSON nested more than {most} levels deep (io.max-depth)", where) from None
    except _Duplicate as exc:
        raise ModelError(f"invalid JSON: key {exc.args[0]!r} appears twice in one object", where) from None
    return doc


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _json_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text (strings skipped), without parsing it."""
    brackets = _JSON_STRING.sub("", text).encode("utf-8", "replace").translate(None, _NOT_BRACKETS)
    steps = _BRACKET_STEP[np.frombuffer(brackets, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


# --------------------------------------------------------------------------- YAML
class _Limit(yaml.YAMLError):
    def __init__(self, problem: str, mark):
        self.problem, self.problem_mark = problem, mark


class _Loader(yaml.SafeLoader):
    """A safe loader with limits, refusing duplicate keys, reading ``1e-14`` (no dot) as a float."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = self._nodes = self._aliases = 0
        self._sizes: dict[str, int] = {}
        self._limits = {k: limit(k) for k in ("max-depth", "yaml-max-aliases", "yaml-max-nodes")}

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            self._nodes += self._sizes.get(event.anchor, 1)
            self._check(event)
            return super().compose_node(parent, index)
        self._depth += 1
        start = self._nodes
        self._nodes += 1
        self._check(event)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if getattr(event, "anchor", None) is not None:
            self._sizes[event.anchor] = self._nodes - start
        return node

    def _check(self, event) -> None:
        if self._depth > self._limits["max-depth"]:
            raise _Limit(f"nested more than {self._limits['max-depth']} levels deep (io.max-depth)",
                         event.start_mark)
        if self._aliases > self._limits["yaml-max-aliases"]:
            raise _Limit(f"more than {self._limits['yaml-max-aliases']} aliases (io.yaml-max-aliases)",
                         event.start_mark)
        if self._nodes > self._limits["yaml-max-nodes"]:
            raise _Limit(f"expands to more than {self._limits['yaml-max-nodes']} values through its aliases "
                         "(io.yaml-max-nodes)", event.start_mark)

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:
                continue  # unhashable: SafeConstructor reports it
            if first is not key_node.start_mark:
                raise _Limit(f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_loader() -> type:
    """The YAML loader sweeper reads every file with (safe; limits; no duplicate keys)."""
    return _Loader


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML with :func:`yaml_loader` (ModelError naming ``where`` and the line)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ModelError(f"invalid YAML{at}: {getattr(exc, 'problem', None) or exc}", where) from None
    except RecursionError:
        raise ModelError(f"YAML nested more than {limit('max-depth')} levels deep (io.max-depth)", where) from None
