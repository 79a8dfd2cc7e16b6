"""The identity of the code and files that make a sweep's points.

A store records it when it is made (``attrs["sweeper"]["identity"]``):

- ``builder``: the builder's ``module:function`` and a sha256 of its module file and of the
  ``.py`` files that module imports from its own folder (found by reading its imports, not by
  running it); a function with no file (a notebook cell) by the sha256 of its source;
- ``metrics``: the identity of each user metric function (``metrics:`` in the spec);
- ``versions``: sweeper and bmtk;
- ``inputs``: a sha256 of every network input file (a network file and its rate tables, a PopNet
  config with its SONATA, components and rate files, a builder's components_dir and input_rates
  tables).

Extending or resuming a store compares the identity now with the store's and names each
difference (:func:`changes`); the run is refused unless the user accepts them
(``--accept-changed``), which the store's history then records.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from ..errors import SpecError
from ..io.files import hash_files

MAX_IMPORTED_FILES = 100   # local modules followed from a builder module


def code_identity(sweep) -> dict:
    """The identity of everything that makes ``sweep``'s points (see the module docstring)."""
    recipe = sweep.recipe
    return {"builder": builder_identity(recipe) if recipe.is_builder else None,
            "metrics": {name: info.get("identity") for name, info in (getattr(sweep, "user_metrics", None)
                                                                      or {}).items()},
            "versions": versions(),
            "inputs": input_identity(sweep)}


def versions() -> dict[str, str | None]:
    from .. import __version__
    try:
        import importlib.metadata as md
        bmtk = md.version("bmtk")
    except Exception:  # not installed
        bmtk = None
    return {"sweeper": __version__, "bmtk": bmtk}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _file_sha(path: Path) -> str:
    try:
        return hash_files([path], path.parent)[:16]
    except (OSError, SpecError, ValueError) as exc:
        return f"unreadable ({exc})"
    except Exception as exc:  # a FIFO or device refused by io.files
        return f"unreadable ({exc})"


def _name(path: Path, base: Path) -> str:
    """``path`` relative to the spec's folder where it lies inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- the builder
def builder_identity(recipe) -> dict:
    """``{"ref": module:function, "files": {name: sha}}`` or ``{"ref", "source": sha}``."""
    func = recipe.builder_function
    out: dict[str, Any] = {"ref": recipe.builder}
    source_file = _source_file(func)
    if source_file is None:
        try:
            out["source"] = _sha(inspect.getsource(func).encode())
        except (OSError, TypeError):
            code = getattr(func, "__code__", None)
            out["source"] = _sha(code.co_code + repr(code.co_consts).encode()) if code else None
        return out
    out["file"] = _name(source_file, recipe.base_dir)
    out["files"] = {_name(p, recipe.base_dir): _file_sha(p) for p in local_modules(source_file)}
    return out


def _source_file(func) -> Path | None:
    """The module file of ``func`` when it is a real file (not a notebook cell or ``<stdin>``)."""
    try:
        name = inspect.getsourcefile(func) or inspect.getfile(func)
    except TypeError:
        module = sys.modules.get(getattr(func, "__module__", ""), None)
        name = getattr(module, "__file__", None)
    if not name or name.startswith("<"):
        return None
    path = Path(name)
    if not path.is_file() or "ipykernel_" in path.parent.name:
        return None
    return path.resolve()


def local_modules(path: Path) -> list[Path]:
    """``path`` and the ``.py`` files in its folder that it imports, followed transitively."""
    folder = path.parent
    seen: list[Path] = []
    todo = [path]
    while todo and len(seen) < MAX_IMPORTED_FILES:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.append(p)
        todo.extend(q for q in _imported_files(p, folder) if q not in seen)
    return seen


def _imported_files(path: Path, folder: Path) -> list[Path]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names += [base] if base else []
            names += [f"{base}.{a.name}" if base else a.name for a in node.names]
    found = []
    here = path.parent
    for name in names:
        parts = name.split(".")
        for root in {here, folder}:
            for cand in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                if cand.is_file() and cand.resolve() not in found:
                    found.append(cand.resolve())
    return found


# --------------------------------------------------------------------------- network input files
def input_identity(sweep) -> dict[str, str]:
    """``{file name: sha}`` of every file the network is read from."""
    recipe = sweep.recipe
    base = Path(recipe.base_dir)
    files: list[Path] = []
    if isinstance(recipe.network, str):
        from ..io.formats import guess_format
        path = base / recipe.network
        fmt = guess_format(path)
        try:
            files += fmt.input_files(path) if fmt is not None else [path]
        except Exception:  # reading the network reports its problems; the file itself still counts
            files.append(path)
    if recipe.components_dir:
        folder = base / recipe.components_dir
        files += sorted(p for p in folder.rglob("*") if p.is_file())[:1000] if folder.is_dir() else []
    files += [base / f for f in _rate_tables(recipe.input_rates)]
    return {_name(p, base): _file_sha(Path(p)) for p in dict.fromkeys(Path(f).resolve() for f in files)}


def _rate_tables(rates) -> Iterable[str]:
    if not isinstance(rates, dict):
        return []
    out = []
    for value in rates.values():
        if isinstance(value, dict) and set(value) == {"file"}:
            value = value["file"]
        if isinstance(value, (str, os.PathLike)) and str(value).lower().endswith((".csv", ".txt")):
            out.append(str(value))
    return out


# --------------------------------------------------------------------------- comparison
def changes(old: dict | None, new: dict) -> list[str]:
    """What differs between the store's identity ``old`` and ``new``, one phrase each."""
    if not old:
        return []
    out: list[str] = []
    ob, nb = old.get("builder") or {}, new.get("builder") or {}
    if ob.get("ref") != nb.get("ref"):
        out.append(f"builder {nb.get('ref')} is not the store's builder {ob.get('ref')}")
    elif "source" in ob or "source" in nb:
        if ob.get("source") != nb.get("source"):
            out.append(f"builder {nb.get('ref')} changed (its source) since the store was made")
    else:
        out += _file_changes(ob.get("files") or {}, nb.get("files") or {}, "builder", main=ob.get("file"))
    om, nm = old.get("metrics") or {}, new.get("metrics") or {}
    for name in sorted(set(om) | set(nm)):
        if om.get(name) != nm.get(name):
            out.append(f"metric function {name} changed since the store was made" if name in om and name in nm
                       else f"metric function {name} was {'added' if name in nm else 'removed'}")
    out += _file_changes(old.get("inputs") or {}, new.get("inputs") or {}, "network input")
    ov, nv = old.get("versions") or {}, new.get("versions") or {}
    for pkg in sorted(set(ov) | set(nv)):
        if ov.get(pkg) != nv.get(pkg):
            out.append(f"{pkg} version changed ({ov.get(pkg)} -> {nv.get(pkg)})")
    return out


def _file_changes(old: dict, new: dict, what: str, main: str | None = None) -> list[str]:
    """One phrase per file changed, new or gone; with ``main`` (the builder's module file) the
    other files are the modules it imports."""
    out = []
    for name in list(old) + [n for n in new if n not in old]:
        label = f"{what} module" if main is not None and name != main else what
        state = ("is gone" if name not in new else "is new" if name not in old
                 else "changed" if old[name] != new[name] else None)
        if state:
            out.append(f"{label} {name} {state} since the store was made")
    return out


def digest(identity: dict) -> str:
    """A short hash of a whole identity (for the history's one-line summary)."""
    import json
    return _sha(json.dumps(identity, sort_keys=True, default=str).encode())
