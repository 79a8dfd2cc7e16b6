"""PopNet inputs: which virtual node populations get which rate (``pop_rates`` tables and spike
trains turned into constant rates; docs/formats.md (b), (c))."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import ModelError
from ...model import Rate, parse_rate
from ..files import check_regular_file, limit
from ..sonata import NodePopulation, py_scalar
from .manifest import read_json


def config_inputs(conf: dict, node_pops: list[NodePopulation], group_by: str | None, where):
    """(node population, rate-for-group) pairs in the order of the config's inputs."""
    inputs = conf.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ModelError(f"'inputs' must be an object, got {inputs!r}", where("inputs"))
    externals = []
    for name, spec in inputs.items():
        key = f"inputs.{name}"
        if not isinstance(spec, dict):
            raise ModelError(f"an input must be an object, got {spec!r}", where(key))
        if spec.get("enabled", True) is False:
            continue
        for pop_name in _node_set_populations(spec.get("node_set"), conf, node_pops, where(f"{key}.node_set")):
            if spec.get("input_type") == "spikes":
                file = _input_file(spec.get("input_file"), "spikes", where(f"{key}.input_file"))
                spikes = _read_spikes(Path(file), str(spec.get("module", "")), where(f"{key}.input_file"))
                externals.append((pop_name, _spike_rate(spikes, pop_name, file, where(f"{key}.input_file"))))
            else:
                file = _input_file(spec.get("rates"), "rates", where(f"{key}.rates"))
                table = read_pop_rates(Path(file), where(f"{key}.rates"))
                externals.append((pop_name, _table_rate(table, pop_name, group_by, file, where(f"{key}.rates"))))
    return externals


def _input_file(file: Any, kind: str, where: str) -> str:
    """An input's file name, which must be an existing regular file of at most io.max-file-bytes."""
    if not isinstance(file, str) or not os.path.lexists(file):
        raise ModelError(f"{kind} file not found: {file!r}", where)
    try:
        check_regular_file(file, f"a {kind} file", limit("max-file-bytes"))
    except ModelError as exc:
        raise ModelError(f"{kind} file {file!r} {exc.message}", where) from None
    return file


def _node_set_populations(node_set: Any, conf: dict, node_pops: list[NodePopulation], where: str) -> list[str]:
    """The SONATA node populations a node_set names (PopNet uses whole populations)."""
    names = [p.name for p in node_pops]
    if isinstance(node_set, str) and node_set in names:
        return [node_set]
    if isinstance(node_set, str):
        sets = conf.get("node_sets")
        if sets is None and isinstance(conf.get("node_sets_file"), str):
            sets_file = Path(conf["node_sets_file"])
            if os.path.lexists(sets_file):
                sets = read_json(sets_file, "a node sets file (JSON)")
        if not isinstance(sets, dict) or node_set not in sets:
            raise ModelError(f"node_set {node_set!r} is neither a node population ({names}) nor a named node set",
                             where)
        node_set = sets[node_set]
    if isinstance(node_set, dict):
        wanted = node_set.get("population", node_set.get("populations", names))
        wanted = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            raise ModelError(f"a node set's population must be a name or a list of names, got {wanted!r}", where)
        for w in wanted:
            if w not in names:
                raise ModelError(f"node population {w!r} does not exist (known: {names})", where)
        return wanted
    raise ModelError(f"node_set must be a node population name or an object, got {node_set!r}", where)


def read_pop_rates(path: Path, where: str) -> dict[Any, Any]:
    """A ``gid firing_rate`` table (space separated, header required) -> {key: rate}."""
    import pandas as pd

    _input_file(str(path), "rates", where)
    try:
        df = pd.read_csv(path, sep=" ")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path} as a space-separated 'gid firing_rate' table: {exc}", where) from None
    missing = [c for c in ("gid", "firing_rate") if c not in df.columns]
    if missing:
        raise ModelError(f"{path} needs columns 'gid' and 'firing_rate' (space separated); "
                         f"found {list(df.columns)}", where)
    table = {}
    for gid, rate in zip(df["gid"].tolist(), df["firing_rate"].tolist()):
        table[_int_key(gid)] = rate
    return table


def _table_rate(table: dict, pop_name: str, group_by: str | None, file: str, where: str):
    def rate(key: Any, first: dict) -> Rate:
        if _int_key(key) not in table:
            raise ModelError(f"no rate for external population {pop_name!r} with {group_by or 'node_id'} "
                             f"{key!r} in {file} (gids there: {sorted(map(str, table))})", where)
        return rate_value(table[_int_key(key)], f"{where} (gid {key})")
    return rate


def rate_value(value: Any, where: str) -> Rate:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    return parse_rate(value, where)


def _int_key(v: Any) -> Any:
    v = py_scalar(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return v
    return v


def _read_spikes(path: Path, module: str, where: str) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
    """Spike trains (SONATA .h5 or bmtk csv) -> {population or None: (node_ids, times in ms)}."""
    module = module.lower()
    if module in ("nwb",) or path.suffix == ".nwb":
        raise ModelError("NWB spike inputs are not supported; convert them to SONATA spikes (.h5) or csv", where)
    if module == "csv" or path.suffix in (".csv", ".txt"):
        import pandas as pd

        try:
            df = pd.read_csv(path, sep=" ")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ModelError(f"cannot read {path} as a space-separated spikes table: {exc}", where) from None
        if "timestamps" not in df.columns or "node_ids" not in df.columns:
            raise ModelError(f"{path} needs columns 'timestamps' and 'node_ids' (and optionally 'population')", where)
        groups = df.groupby("population", sort=False) if "population" in df.columns else [(None, df)]
        return {(None if p is None else str(p)): _spike_arrays(g["node_ids"], g["timestamps"], path, where)
                for p, g in groups}
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            root = h5.get("spikes")
            if not isinstance(root, h5py.Group):
                raise ModelError(f"{path} has no /spikes group", where)
            if "timestamps" in root:  # old single-population layout
                return {None: _spike_arrays(root["node_ids"][()], root["timestamps"][()], path, where)}
            return {name: _spike_arrays(g["node_ids"][()], g["timestamps"][()], path, where)
                    for name, g in root.items()}
    except (OSError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot open {path} as HDF5 spikes: {exc}", where) from None


def _spike_arrays(node_ids: Any, times: Any, path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(node ids as int64, times as float), or ModelError when they are not numbers."""
    out = []
    for values, name, dtype in ((node_ids, "node_ids", np.int64), (times, "timestamps", float)):
        arr = np.asarray(values)
        try:
            if arr.dtype.kind not in "iuf" + ("b" if dtype is float else ""):
                raise ValueError
            conv = arr.astype(dtype)
        except (TypeError, ValueError):
            sample = arr.ravel()[:1].tolist()
            raise ModelError(f"{path}: {name} must be numbers, got {arr.dtype} values such as {sample}",
                             where) from None
        if dtype is np.int64 and not np.array_equal(conv, arr):
            raise ModelError(f"{path}: node_ids must be integers", where)
        out.append(conv)
    return out[0], out[1]


def _spike_rate(spikes: dict, pop_name: str, file: str, where: str):
    """PopNet's constant rate from spikes: 1000 * mean count of nodes that spiked / span of their spikes."""
    if pop_name in spikes:
        node_ids, times = spikes[pop_name]
    elif len(spikes) == 1:
        node_ids, times = next(iter(spikes.values()))
    else:
        raise ModelError(f"{file} has no spikes for node population {pop_name!r} (has {sorted(map(str, spikes))})",
                         where)

    def rate(key: Any, first: dict, members: Sequence[int] = ()) -> Rate:
        mask = np.isin(node_ids, np.asarray(members, dtype=np.int64))
        if not mask.any():
            raise ModelError(f"no spikes for external population {pop_name!r} key {key!r} in {file}", where)
        counts = np.unique(node_ids[mask], return_counts=True)[1]
        span = float(times[mask].max() - times[mask].min())
        if span <= 0:
            raise ModelError(f"spikes of external population {pop_name!r} key {key!r} in {file} span 0 ms; "
                             "PopNet's rate (count / span) is undefined", where)
        return parse_rate(1000.0 * float(np.mean(counts)) / span, where)
    rate.needs_members = True
    return rate
