"""One writer per store: a lock file naming its holder (host, pid, start time)."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
from pathlib import Path

from ..errors import StoreError
from ..store import now

log = logging.getLogger(__name__)


def lock_path(store) -> Path:
    """The lock lives beside the store (``run.zarr.lock``) so Zarr never sees a foreign file."""
    store = Path(store)
    return store.with_name(store.name + ".lock")


def holder(store) -> dict | None:
    """The lock's content, or None when the store is not locked."""
    try:
        return json.loads(lock_path(store).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"host": "?", "pid": -1, "started": "?", "damaged": True, "file": str(lock_path(store))}


def is_stale(info: dict) -> bool:
    """True when the holder is a process on this host that no longer exists."""
    if info.get("host") != socket.gethostname():
        return False
    pid = int(info.get("pid", -1))
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def describe(info: dict) -> str:
    if info.get("damaged"):
        return f"unreadable lock file {info.get('file', '')}".rstrip()
    return f"host {info.get('host')}, pid {info.get('pid')}, started {info.get('started')}"


def unlock(store) -> dict | None:
    """Remove the lock whatever its state; return what it held."""
    info = holder(store)
    lock_path(store).unlink(missing_ok=True)
    return info


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only file system says so even for a file that is not there
        pass


class StoreLock:
    """Context manager: take the store's lock or raise StoreError naming the current holder.

    A lock left by a dead process on this host is cleared automatically, with a message.
    """

    def __init__(self, store):
        self.store = Path(store)
        self.path = lock_path(store)

    def __enter__(self):
        info = {"host": socket.gethostname(), "pid": os.getpid(), "started": now()}
        # write the holder to a private file, then link it into place: the lock appears with its
        # content or not at all (a full disk never leaves an empty lock behind)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(info))
        except OSError as exc:
            _remove(tmp)
            raise StoreError(f"cannot lock {self.store}: {exc.strerror or exc}") from None
        try:
            return self._take(tmp)
        finally:
            _remove(tmp)

    def _take(self, tmp: Path):
        for _ in range(2):
            try:
                try:
                    os.link(tmp, self.path)
                except OSError as exc:  # a file system without hard links: create exclusively
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                        raise
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                    with os.fdopen(fd, "w") as f:
                        f.write(tmp.read_text())
            except FileExistsError:
                current = holder(self.store)
                if current is not None and is_stale(current):
                    log.warning(f"sweeper: clearing a stale lock on {self.store} ({describe(current)}: "
                                "that process no longer exists)")
                    self.path.unlink(missing_ok=True)
                    continue
                raise StoreError(f"{self.store} is being written by another sweeper run "
                                 f"({describe(current or {})}); if that run is dead, clear it with "
                                 f"`sweeper unlock {self.store}`") from None
            except OSError as exc:
                raise StoreError(f"cannot lock {self.store}: {exc.strerror or exc}") from None
            return self
        raise StoreError(f"cannot lock {self.store}")

    def __exit__(self, *exc):
        current = holder(self.store) or {}
        if (current.get("host"), current.get("pid")) == (socket.gethostname(), os.getpid()):
            self.path.unlink(missing_ok=True)  # not a lock someone else took after `sweeper unlock`
        return False
