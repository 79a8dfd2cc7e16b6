"""SONATA config files: the manifest's ``$VARIABLES`` and the network/simulation children
(docs/formats.md (b))."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any

from ...errors import ModelError
from ..files import limit, parse_json, read_text

_VARIABLE = re.compile(r"\$\{?\w+\}?")


def load_config(path: str | Path, _parents: tuple[str, ...] = ()) -> tuple[dict, dict[str, str]]:
    """Read a SONATA config, resolve its manifest and merge its network/simulation children.

    Returns the merged dict and, for messages, the file each top-level key came from.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise ModelError(f"config file not found: {path}", str(path))
    conf = read_json(path, "a PopNet/SONATA config (JSON)")
    if not isinstance(conf, dict):
        raise ModelError("a config file must hold a JSON object", str(path))
    abs_path = os.path.abspath(path)
    most = limit("manifest-max-chars")
    variables = _manifest(conf.get("manifest", {}), abs_path, most)
    conf = {k: (v if k == "manifest" else _substitute(v, variables, str(path), most)) for k, v in conf.items()}
    origins = {k: str(path) for k in conf}
    chain = _parents + (os.path.realpath(path),)
    for child in ("network", "simulation"):
        ref = conf.get(child)
        if isinstance(ref, str):
            child_path = Path(ref if ref.startswith("/") else os.path.join(os.path.dirname(abs_path), ref))
            if not os.path.lexists(child_path):
                raise ModelError(f"file not found: {child_path}", f"{path}: {child}")
            if os.path.realpath(child_path) in chain:
                loop = " -> ".join(str(Path(p).name) for p in chain + (os.path.realpath(child_path),))
                raise ModelError(f"{child_path} includes itself ({loop})", f"{path}: {child}")
            child_conf, child_origins = load_config(child_path, chain)
            conf.update(child_conf)
            origins.update(child_origins)
    return conf, origins


def _manifest(manifest: Any, config_path: str, most: int) -> dict[str, Any]:
    """Built-in variables plus the manifest, with references between entries resolved."""
    if not isinstance(manifest, dict):
        raise ModelError(f"'manifest' must be an object, got {manifest!r}", config_path)
    now = datetime.datetime.now()
    resolved: dict[str, Any] = {
        "workingdir": os.getcwd(), "configdir": os.path.dirname(config_path), "configfname": config_path,
        "time": now.strftime("%H-%M-%S"), "date": now.strftime("%Y-%m-%d"),
        "datetime": now.strftime("%Y-%m-%d_%H-%M-%S"),
    }
    pending = {(k[1:] if k.startswith("$") else k): v for k, v in manifest.items()}
    while pending:
        progress = False
        for key in list(pending):
            value = _substitute(pending[key], resolved, f"{config_path}: manifest.{key}", most)
            if not (isinstance(value, str) and "$" in value):
                resolved[key] = value
                del pending[key]
                progress = True
        if not progress:
            raise ModelError(f"cannot resolve manifest variables {sorted(pending)} (unknown or cyclic references)",
                             f"{config_path}: manifest")
    return resolved


def _substitute(obj: Any, variables: dict[str, Any], where: str, most: int) -> Any:
    """Replace ``$VAR`` / ``${VAR}`` in every string; a string that is exactly one
    variable with a non-string value becomes that value. Unknown variables stay. A string
    may not grow beyond ``most`` characters (``io.manifest-max-chars``)."""
    if isinstance(obj, dict):
        return {k: _substitute(v, variables, where, most) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, variables, where, most) for v in obj]
    if not isinstance(obj, str):
        return obj
    result = obj
    for match in _VARIABLE.finditer(obj):
        token = match.group()
        name = token[2:-1] if token.startswith("${") and token.endswith("}") else token[1:]
        if name not in variables:
            continue
        value = variables[name]
        if isinstance(value, str) or len(obj) > len(token):
            text = str(value)
            grown = len(result) + result.count(token) * (len(text) - len(token))
            if grown > most:
                raise ModelError(f"expanding ${name} makes a string of {grown} characters, more than "
                                 f"{most} (io.manifest-max-chars)", where)
            result = result.replace(token, text)
        else:
            return value
    return result


def read_json(path: Path, what: str) -> Any:
    """A JSON file of a PopNet directory (bmtk accepts repeated keys; so does this)."""
    return parse_json(read_text(path, what), str(path), duplicate_keys=True)
