"""SONATA config files: the manifest's ``$VARIABLES`` and the network/simulation children
(docs/formats.md (b))."""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path
from typing import Any

from ...errors import ModelError

_VARIABLE = re.compile(r"\$\{?\w+\}?")


def load_config(path: str | Path) -> tuple[dict, dict[str, str]]:
    """Read a SONATA config, resolve its manifest and merge its network/simulation children.

    Returns the merged dict and, for messages, the file each top-level key came from.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"config file not found: {path}", str(path))
    try:
        conf = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not valid JSON: {exc}", str(path)) from None
    if not isinstance(conf, dict):
        raise ModelError("a config file must hold a JSON object", str(path))
    abs_path = os.path.abspath(path)
    variables = _manifest(conf.get("manifest", {}), abs_path)
    conf = {k: (v if k == "manifest" else _substitute(v, variables)) for k, v in conf.items()}
    origins = {k: str(path) for k in conf}
    for child in ("network", "simulation"):
        ref = conf.get(child)
        if isinstance(ref, str):
            child_path = Path(ref if ref.startswith("/") else os.path.join(os.path.dirname(abs_path), ref))
            if not child_path.is_file():
                raise ModelError(f"file not found: {child_path}", f"{path}: {child}")
            child_conf, child_origins = load_config(child_path)
            conf.update(child_conf)
            origins.update(child_origins)
    return conf, origins


def _manifest(manifest: Any, config_path: str) -> dict[str, Any]:
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
            value = _substitute(pending[key], resolved)
            if not (isinstance(value, str) and "$" in value):
                resolved[key] = value
                del pending[key]
                progress = True
        if not progress:
            raise ModelError(f"cannot resolve manifest variables {sorted(pending)} (unknown or cyclic references)",
                             f"{config_path}: manifest")
    return resolved


def _substitute(obj: Any, variables: dict[str, Any]) -> Any:
    """Replace ``$VAR`` / ``${VAR}`` in every string; a string that is exactly one
    variable with a non-string value becomes that value. Unknown variables stay."""
    if isinstance(obj, dict):
        return {k: _substitute(v, variables) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, variables) for v in obj]
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
            result = result.replace(token, str(value))
        else:
            return value
    return result
