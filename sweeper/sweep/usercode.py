"""Finding the user's own code: ``module:function`` references imported from the spec's folders
(builders, metric functions), without changing ``sys.path`` for anyone else."""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..io.bmtk_compat import single_process

_IMPORT_LOCK = threading.Lock()


@contextmanager
def search_path(folders: list[Path]):
    """Let ``import`` look in ``folders`` while inside; sys.path is as before afterwards."""
    with _IMPORT_LOCK:
        added = [str(f) for f in folders if str(f) not in sys.path]
        sys.path[:0] = added
        try:
            yield
        finally:
            for entry in added:
                if entry in sys.path:
                    sys.path.remove(entry)


def import_builder(ref: Any, folders: list[Path], what: str = "builder"):
    """The function named by ``module:function``, its module found in ``folders`` first."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise SpecError(f"{what} must be 'module:function', got {ref!r}")
    module_name, func_name = ref.split(":")
    _forget_if_elsewhere(module_name, folders)
    try:
        with search_path(folders), single_process():  # bmtk binds MPI when first imported
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import {what} module {module_name!r}: {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise SpecError(f"module {module_name!r} has no function {func_name!r}")
    return func


def fit_args(func, args: dict, optional: tuple[str, ...] = ("replicate",)) -> dict:
    """``args`` less the ``optional`` keys ``func`` does not take (a builder that has no
    ``replicate`` parameter and no ``**kwargs`` is called without it)."""
    extra = [k for k in optional if k in args]
    if not extra:
        return args
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin or C function: pass what was given
        return args
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return args
    return {k: v for k, v in args.items() if k not in extra or k in params}


def _forget_if_elsewhere(module_name: str, folders: list[Path]) -> None:
    """A module of that name imported earlier from another folder (another spec's builders, in a
    long-lived process such as a notebook) is not the one this spec names: import it afresh."""
    loaded = sys.modules.get(module_name)
    top = module_name.split(".")[0]
    mine = [Path(f) / top for f in folders if (Path(f) / f"{top}.py").exists() or (Path(f) / top).is_dir()]
    if loaded is None or not mine:
        return
    where = Path(getattr(loaded, "__file__", "") or "").resolve()
    if not any(where == m.with_suffix(".py").resolve() or m.resolve() in where.parents for m in mine):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
