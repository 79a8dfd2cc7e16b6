"""SONATA network files as bmtk 1.2.0 writes and reads them.

Nodes and edges live in ``.h5`` files (one or more named populations each) and their
per-type properties in space-separated ``*_types.csv`` tables (CRLF, ``NULL`` for a
missing value, double quotes around values with spaces). See docs/formats.md (a).
This module only moves tables between files and memory; PopNet's meaning of them lives in
:mod:`sweeper.io.popnet`.
"""

from __future__ import annotations

import csv
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from ..errors import ModelError

MAGIC = np.uint32(0x0A7A)
VERSION = (0, 1)
MISSING = object()  # a property that neither the h5 group nor the types table has


# --------------------------------------------------------------------------- in-memory tables
@dataclass
class NodePopulation:
    """One SONATA node population: per-node arrays, per-group columns, per-type properties."""

    name: str
    node_ids: np.ndarray
    node_type_ids: np.ndarray
    group_ids: np.ndarray
    group_index: np.ndarray
    groups: dict[int, dict[str, np.ndarray]]
    types: dict[int, dict[str, Any]]
    source: str = "<memory>"
    types_source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.node_ids)

    def type_props(self, row: int) -> dict[str, Any]:
        type_id = int(self.node_type_ids[row])
        try:
            return self.types[type_id]
        except KeyError:
            raise ModelError(f"node {int(self.node_ids[row])} of population {self.name!r} has node_type_id "
                             f"{type_id}, which is not in the node types table", self.types_source) from None

    def node_props(self, row: int) -> dict[str, Any]:
        """All properties of one node: its type's, then its group's, then the ids."""
        props = dict(self.type_props(row))
        cols = self.groups.get(int(self.group_ids[row]), {})
        gi = int(self.group_index[row])
        for name, values in cols.items():
            props[name] = py_scalar(values[gi])
        props["node_id"] = int(self.node_ids[row])
        props["node_type_id"] = int(self.node_type_ids[row])
        return props


@dataclass
class EdgePopulation:
    """One SONATA edge population; rows are kept in file order (PopNet depends on it)."""

    name: str
    source_population: str
    target_population: str
    source_ids: np.ndarray
    target_ids: np.ndarray
    edge_type_ids: np.ndarray
    group_ids: np.ndarray
    group_index: np.ndarray
    groups: dict[int, dict[str, np.ndarray]]
    types: dict[int, dict[str, Any]]
    source: str = "<memory>"
    types_source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.source_ids)

    def value(self, name: str, row: int) -> Any:
        """The property of one edge row: the h5 group column wins over the edge type column."""
        cols = self.groups.get(int(self.group_ids[row]), {})
        if name in cols:
            return py_scalar(cols[name][int(self.group_index[row])])
        type_id = int(self.edge_type_ids[row])
        if type_id not in self.types:
            raise ModelError(f"edge row {row} of {self.name!r} has edge_type_id {type_id}, which is not in "
                             "the edge types table", self.types_source)
        return self.types[type_id].get(name, MISSING)


# --------------------------------------------------------------------------- types tables
def read_types_csv(path: str | Path, id_column: str, where: str | None = None) -> dict[int, dict[str, Any]]:
    """Read a node/edge types table the way bmtk does (pandas, space separated, NULL/NONE -> None).

    Returns ``{type_id: {column: value}}`` in file order; each row also holds its own id.
    """
    import pandas as pd

    path = Path(path)
    where = where or str(path)
    try:
        df = pd.read_csv(path, sep=" ", na_values="NONE")
    except FileNotFoundError:
        raise ModelError(f"file not found: {path}", where) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path} as a space-separated table: {exc}", where) from None
    if id_column not in df.columns:
        raise ModelError(f"{path} has no {id_column!r} column (columns: {list(df.columns)})", where)
    table: dict[int, dict[str, Any]] = {}
    for record in df.to_dict(orient="records"):
        row = {str(k): _none_if_nan(py_scalar(v)) for k, v in record.items()}
        type_id = row[id_column]
        if not isinstance(type_id, int):
            raise ModelError(f"{id_column} must be an integer, got {type_id!r}", str(path))
        if type_id in table:
            raise ModelError(f"{id_column} {type_id} appears twice", str(path))
        table[type_id] = row
    return table


def write_types_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict], none_as: str = "") -> None:
    """Write a types table as bmtk's ``csv.writer(delimiter=' ')`` does: CRLF, NULL when absent."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter=" ")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([none_as if row.get(c, "NULL") is None else row.get(c, "NULL") for c in columns])


# --------------------------------------------------------------------------- h5 reading
def read_nodes(nodes_file: str | Path, node_types_file: str | Path,
               where_nodes: str | None = None, where_types: str | None = None) -> list[NodePopulation]:
    """Every node population in a nodes .h5 file, with the properties of its types table."""
    nodes_file, node_types_file = Path(nodes_file), Path(node_types_file)
    types = read_types_csv(node_types_file, "node_type_id", where_types)
    pops = []
    with _open_h5(nodes_file, where_nodes) as h5:
        root = h5.get("nodes")
        if not isinstance(root, h5py.Group) or not len(root):
            raise ModelError(f"{nodes_file} has no /nodes/<population> group", where_nodes or str(nodes_file))
        for name, grp in root.items():
            if "node_type_id" not in grp:
                raise ModelError(f"/nodes/{name} has no node_type_id dataset", str(nodes_file))
            type_ids = _ids(grp, "node_type_id", None, nodes_file)
            n = len(type_ids)
            pops.append(NodePopulation(
                name=name,
                node_ids=_ids(grp, "node_id", np.arange(n), nodes_file),
                node_type_ids=type_ids,
                group_ids=_ids(grp, "node_group_id", np.zeros(n), nodes_file),
                group_index=_ids(grp, "node_group_index", np.arange(n), nodes_file),
                groups=_read_groups(grp),
                types=types,
                source=str(nodes_file),
                types_source=str(node_types_file),
            ))
    return pops


def read_edges(edges_file: str | Path, edge_types_file: str | Path,
               where_edges: str | None = None, where_types: str | None = None) -> list[EdgePopulation]:
    """Every edge population in an edges .h5 file, with the properties of its types table."""
    edges_file, edge_types_file = Path(edges_file), Path(edge_types_file)
    types = read_types_csv(edge_types_file, "edge_type_id", where_types)
    pops = []
    with _open_h5(edges_file, where_edges) as h5:
        root = h5.get("edges")
        if not isinstance(root, h5py.Group) or not len(root):
            raise ModelError(f"{edges_file} has no /edges/<population> group", where_edges or str(edges_file))
        for name, grp in root.items():
            for key in ("source_node_id", "target_node_id", "edge_type_id"):
                if key not in grp:
                    raise ModelError(f"/edges/{name} has no {key} dataset", str(edges_file))
            src, trg = grp["source_node_id"], grp["target_node_id"]
            source_ids = _ids(grp, "source_node_id", None, edges_file)
            n = len(source_ids)
            pops.append(EdgePopulation(
                name=name,
                source_population=_attr_str(src, "node_population", edges_file, name),
                target_population=_attr_str(trg, "node_population", edges_file, name),
                source_ids=source_ids,
                target_ids=_ids(grp, "target_node_id", None, edges_file),
                edge_type_ids=_ids(grp, "edge_type_id", None, edges_file),
                group_ids=_ids(grp, "edge_group_id", np.zeros(n), edges_file),
                group_index=_ids(grp, "edge_group_index", np.arange(n), edges_file),
                groups=_read_groups(grp),
                types=types,
                source=str(edges_file),
                types_source=str(edge_types_file),
            ))
    return pops


def _open_h5(path: Path, where: str | None):
    if not path.is_file():
        raise ModelError(f"file not found: {path}", where or str(path))
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ModelError(f"cannot open {path} as HDF5: {exc}", where or str(path)) from None


def _ids(grp: h5py.Group, name: str, default: np.ndarray | None, path: Path) -> np.ndarray:
    """An id/index dataset as int64 (``default`` when absent); ModelError unless it holds integers."""
    if name not in grp and default is not None:
        return default.astype(np.int64)
    ds = grp[name]
    values = ds[()] if isinstance(ds, h5py.Dataset) else None
    if values is None or np.ndim(values) != 1 or np.asarray(values).dtype.kind not in "iu":
        what = "not a dataset" if values is None else \
            f"{np.asarray(values).dtype} values such as {np.asarray(values).ravel()[:1].tolist()}"
        raise ModelError(f"{grp.name}/{name} must hold integer ids, got {what}", str(path))
    return np.asarray(values).astype(np.int64)


def _attr_str(ds: h5py.Dataset, name: str, path: Path, pop: str) -> str:
    if name not in ds.attrs:
        raise ModelError(f"/edges/{pop}/{ds.name.rsplit('/', 1)[-1]} has no {name!r} attribute", str(path))
    value = ds.attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_groups(grp: h5py.Group) -> dict[int, dict[str, np.ndarray]]:
    """The numbered property groups (``0``, ``1``, ...) of a population; sub-groups are skipped."""
    groups = {}
    for key, sub in grp.items():
        if key.isdigit() and isinstance(sub, h5py.Group):
            cols = {}
            for name, ds in sub.items():
                if isinstance(ds, h5py.Dataset):
                    cols[name] = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
            groups[int(key)] = cols
    return groups


# --------------------------------------------------------------------------- h5 writing
def write_nodes(path: str | Path, pop: NodePopulation, compression: str | None = "gzip") -> None:
    """Write one node population as NetworkBuilder does (same groups, dtypes and attributes)."""
    compression = _compression(compression)
    with h5py.File(path, "w") as h5:
        _root_attrs(h5)
        grp = h5.create_group(f"/nodes/{pop.name}")
        grp.create_dataset("node_id", data=pop.node_ids, dtype="uint64", compression=compression)
        grp.create_dataset("node_type_id", data=pop.node_type_ids, dtype="uint64", compression=compression)
        grp.create_dataset("node_group_id", data=pop.group_ids, dtype="uint32", compression=compression)
        grp.create_dataset("node_group_index", data=pop.group_index, dtype="uint64", compression=compression)
        for gid in sorted(pop.groups):
            sub = grp.create_group(str(gid))
            for name, values in pop.groups[gid].items():
                _write_column(sub, name, values, compression)


def write_edges(path: str | Path, pop: EdgePopulation, compression: str | None = "gzip") -> None:
    """Write one edge population as NetworkBuilder does, with both ``indices`` groups."""
    compression = _compression(compression)
    with h5py.File(path, "w") as h5:
        _root_attrs(h5)
        grp = h5.create_group(f"/edges/{pop.name}")
        ds = grp.create_dataset("source_node_id", data=pop.source_ids, dtype="uint64", compression=compression)
        ds.attrs["node_population"] = pop.source_population
        ds = grp.create_dataset("target_node_id", data=pop.target_ids, dtype="uint64", compression=compression)
        ds.attrs["node_population"] = pop.target_population
        grp.create_dataset("edge_group_id", data=pop.group_ids, dtype="uint16", compression=compression)
        grp.create_dataset("edge_group_index", data=pop.group_index, dtype="uint32", compression=compression)
        grp.create_dataset("edge_type_id", data=pop.edge_type_ids, dtype="uint32", compression=compression)
        for gid in sorted(pop.groups):
            sub = grp.create_group(str(gid))
            for name, values in pop.groups[gid].items():
                _write_column(sub, name, values, compression)
        for index_name, ids in (("target_to_source", pop.target_ids), ("source_to_target", pop.source_ids)):
            id_to_range, range_to_edge = build_index(ids)
            sub = grp.create_group(f"indices/{index_name}")
            sub.create_dataset("range_to_edge_id", data=range_to_edge, dtype="uint64", compression=compression)
            sub.create_dataset("node_id_to_range", data=id_to_range, dtype="uint64", compression=compression)


def build_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SONATA's two-level edge index for one id column.

    ``range_to_edge_id`` lists every run of equal consecutive ids as ``[begin, end)`` rows,
    ordered by id (numpy's default quicksort, which is what bmtk's pandas sort uses, so the
    order of runs of the same id matches bmtk's files). ``node_id_to_range[n]`` is the
    ``[begin, end)`` slice of those rows that belong to node ``n``; absent ids get ``[0, 0]``.
    """
    ids = np.asarray(ids, dtype=np.uint64)
    if len(ids) == 0:
        return np.zeros((0, 2), np.uint64), np.zeros((0, 2), np.uint64)
    change = np.nonzero(np.diff(ids))[0] + 1
    begins = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(ids)]))
    run_ids = ids[begins]
    order = np.argsort(run_ids, kind="quicksort")
    range_to_edge = np.stack([begins[order], ends[order]], axis=1).astype(np.uint64)
    sorted_ids = run_ids[order]
    id_change = np.nonzero(np.diff(sorted_ids))[0] + 1
    first = np.concatenate(([0], id_change))
    last = np.concatenate((id_change, [len(sorted_ids)]))
    id_to_range = np.zeros((int(sorted_ids[-1]) + 1, 2), dtype=np.uint64)
    id_to_range[sorted_ids[first].astype(np.int64)] = np.stack([first, last], axis=1)
    return id_to_range, range_to_edge


def _root_attrs(h5: h5py.File) -> None:
    h5.attrs["magic"] = MAGIC
    h5.attrs["version"] = np.array(VERSION, dtype=np.uint32)


def _compression(compression):
    return None if compression is None or str(compression).lower() == "none" else compression


def _write_column(grp: h5py.Group, name: str, values, compression) -> None:
    arr = np.asarray(values)
    if arr.dtype.kind in "UO":
        grp.create_dataset(name, data=[str(v) for v in np.ravel(arr)], dtype=h5py.string_dtype(),
                           compression=compression)
    else:
        grp.create_dataset(name, data=arr, compression=compression)


# --------------------------------------------------------------------------- value helpers
def py_scalar(v: Any) -> Any:
    """numpy scalars -> Python scalars (so keys print and compare like Python values)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode()
    return v


def _none_if_nan(v: Any) -> Any:
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and isinstance(v, float) and math.isnan(v):
        return None
    return v
