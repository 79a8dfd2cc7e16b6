"""A store's history: which run added and computed which points, with which code.

Each run appends two lines to ``STORE/provenance.jsonl`` (JSON lines, each written with one
``write`` and fsync'd, so a run killed mid-way leaves every earlier line intact; a torn last
line is skipped when reading):

- ``start``: time, host, user, command, spec hash, points in the store and points added, the
  full code identity (:mod:`.identity`) and the changes accepted with ``--accept-changed``;
- ``end``: time, points computed, the chunks handed out, the counts after the run.

A run without its ``end`` line was interrupted (or is still running). The store's current code
identity is also in ``attrs["sweeper"]["identity"]``; extending or resuming compares against it.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import logging
import os
import shlex
import socket
import sys
import uuid
from pathlib import Path

from ..errors import StoreError
from . import identity as ident

HISTORY_FILE = "provenance.jsonl"
log = logging.getLogger(__name__)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def append(store_path, entry: dict) -> None:
    """Append one history line to the store (one write, then fsync)."""
    line = json.dumps(entry, sort_keys=True, default=str) + "\n"
    path = Path(store_path) / HISTORY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot write the history of {store_path}: {exc.strerror or exc}") from None


def read(store_path) -> list[dict]:
    """Every complete history line of the store, oldest first."""
    path = Path(store_path) / HISTORY_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(entry, dict):
            out.append(entry)
    return out


# --------------------------------------------------------------------------- hooks of the runner
def check_identity(store, sweep, accept_changed: bool, *, added: int, created: bool) -> None:
    """Compare the code identity now with the store's; refuse changes unless accepted.

    Records on ``store`` what the run's history line needs (``store.provenance``)."""
    now = ident.code_identity(sweep)
    old = store.meta.get("identity")
    found = ident.changes(old, now) if not created else []
    if found and not accept_changed:
        raise StoreError(_refusal(store.path, found))
    if created or found or old is None:
        store.set_meta(identity=now)
    store.provenance = {"added": int(added), "created": created, "identity": now, "accepted": found,
                        "identity_recorded": old is not None or created}


def _refusal(path, found: list[str]) -> str:
    return (f"{path}: " + "; ".join(found) + ". Its points were computed with the store's code and files: "
            "use a new store, or pass --accept-changed (accept_changed=True) to go on with the new ones "
            "(the store's history records it)")


def refuse_changed(store_path, sweep) -> None:
    """Raise StoreError if an existing store was made with other code or files than ``sweep``'s
    (read-only: for ``sweeper submit``, before a job is queued)."""
    path = Path(store_path)
    if not (path / "zarr.json").exists():
        return
    from ..store import SweepStore
    found = ident.changes(SweepStore.open(path).meta.get("identity"), ident.code_identity(sweep))
    if found:
        raise StoreError(_refusal(path, found))


def start(store, sweep) -> str:
    """Append the run's ``start`` line; return the run's id."""
    info = getattr(store, "provenance", None) or {}
    run = uuid.uuid4().hex[:12]
    append(store.path, {"event": "start", "run": run, "time": _now(), "host": socket.gethostname(),
                        "user": _user(), "pid": os.getpid(), "command": shlex.join(sys.argv),
                        "spec_hash": sweep.hash, "spec_source": sweep.source, "points": store.npoints,
                        "added": info.get("added", 0), "created": info.get("created", False),
                        "identity": info.get("identity"), "identity_digest": ident.digest(info.get("identity")),
                        "accepted": info.get("accepted", [])})
    return run


def finish(store, run: str, summary, chunks: list[int], write_error: str | None) -> None:
    """Append the run's ``end`` line (a store that cannot take it is reported by the run itself:
    the history then shows the run as interrupted)."""
    try:
        append(store.path, {"event": "end", "run": run, "time": _now(), "computed": summary.computed,
                            "failed_now": len(summary.failures), "counts": summary.counts,
                            "chunks": _ranges(chunks), "write_error": write_error})
    except StoreError as exc:
        log.warning(f"sweeper: {exc}")


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    out, values = [], sorted(values)
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(out)


# --------------------------------------------------------------------------- reading it back
def history_text(store_path) -> str:
    """The history as text: one block per run (``sweeper show STORE --history``)."""
    entries = read(store_path)
    if not entries:
        return f"{store_path}: no history recorded (made before sweeper kept one)"
    ends = {e.get("run"): e for e in entries if e.get("event") == "end"}
    lines = []
    for n, e in enumerate((e for e in entries if e.get("event") == "start"), 1):
        idn = e.get("identity") or {}
        builder = idn.get("builder") or {}
        what = ("created the store" if e.get("created") else
                f"added {e['added']} point(s)" if e.get("added") else "resumed")
        lines.append(f"run {n}  {e.get('time')}  {e.get('user')}@{e.get('host')}  {what}, "
                     f"{e.get('points')} points (spec {e.get('spec_hash')}, code {e.get('identity_digest')})")
        lines.append(f"  command:  {e.get('command')}")
        end = ends.get(e.get("run"))
        if end is None:
            lines.append("  ended:    no end recorded (interrupted, or still running)")
        else:
            c = end.get("counts") or {}
            lines.append(f"  ended:    {end.get('time')}: computed {end.get('computed')} point(s) in chunks "
                         f"{end.get('chunks') or '-'}; {c.get('done', '?')} done, {c.get('failed', '?')} failed, "
                         f"{c.get('pending', '?')} pending" + (f"; write error: {end['write_error']}"
                                                              if end.get("write_error") else ""))
        code = [f"builder {builder.get('ref')}"] if builder else []
        code += [f"{k} {v}" for k, v in (idn.get("versions") or {}).items() if v]
        code.append(f"{len(idn.get('inputs') or {})} input file(s)")
        lines.append(f"  code:     {', '.join(code)}")
        for change in e.get("accepted") or []:
            lines.append(f"  ACCEPTED: {change}")
    return "\n".join(lines)
