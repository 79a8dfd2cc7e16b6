"""PopNet population models: a ``dynamics_params`` dict or JSON file -> InternalPopulation
(docs/formats.md (d)). The fields are parsed by the model's one parser, shared with network files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import ModelError
from .manifest import read_json
from ...model import INTERNAL_FIELDS, InternalPopulation, internal_population as _parse_internal

#: Every keyword dipde's InternalPopulation accepts from a dynamics_params file.
DIPDE_KEYS = INTERNAL_FIELDS + ("class", "module")


def internal_population(name: str, params: dict[str, Any], where: str) -> InternalPopulation:
    """A dipde InternalPopulation from a dynamics_params dict; any key dipde rejects is an error."""
    for key in params:
        if key not in DIPDE_KEYS:
            raise ModelError(f"unknown dynamics_params key {key!r} (value {params[key]!r}); dipde accepts only "
                             f"{', '.join(DIPDE_KEYS)}", where)
    return _parse_internal(name, params, where, sep=": ").validate(f"{where}: dynamics_params")


def read_dynamics_params(file: Path, where: str) -> dict:
    """A dynamics_params JSON file, which must hold an object."""
    if not os.path.lexists(file):
        raise ModelError(f"dynamics_params file not found: {file}", where)
    value = read_json(file, "a dynamics_params JSON file")
    if not isinstance(value, dict):
        raise ModelError("a dynamics_params file must hold a JSON object", str(file))
    return value
