"""One writer per store: a lock file beside the store naming its holder, renewed while held.

- **One lock per store, whatever the path.** The lock is ``NAME.lock`` beside the store's real
  path (symlinks resolved), so every path that reaches a store reaches the same lock; it records
  the store's resolved path and identity (device and inode of its folder when it exists).
- **A lease.** The holder renews the lock (touches it) every ``cluster.lock.renew-every``; a lock
  not renewed for longer than its lease (``cluster.lock.lease``, written into the lock) is stale
  on any host, measured with the file system's own clock. A holder on this host whose process
  is gone is stale at once. A holder that keeps renewing is never taken over, whatever its host.
- **Race-free takeover.** Taking over a stale lock happens under a guard file created
  exclusively: the lock is read again under the guard and replaced only if it is stale then, so
  of several runs that find the same dead holder exactly one wins.
- Paths are taken literally (no glob patterns anywhere).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from pathlib import Path

from .. import config
from ..errors import StoreError
from .sweepstore import now

log = logging.getLogger(__name__)

_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


def _seconds(key: str) -> float:
    from dask.utils import parse_timedelta
    return float(parse_timedelta(config.get(key)))


def lock_path(store) -> Path:
    """The lock lives beside the store (``run.zarr.lock``, beside the store's real path) so Zarr
    never sees a foreign file and a symlinked path finds the same lock."""
    text = os.fspath(store)
    real = Path(os.path.realpath(text)) if str(text).strip() else Path(text)
    if not str(text).strip() or Path(text).name in ("", "..") or not real.name:
        raise StoreError(f"{str(text)!r} is not a store path (it names no folder of its own)")
    return real.with_name(real.name + ".lock")


def _damaged(path: Path) -> dict:
    return {"host": "?", "pid": -1, "started": "?", "damaged": True, "file": str(path)}


def _parse(text: str, path: Path) -> dict:
    """The holder in a lock file's text; a "damaged" record when it is not a valid lock."""
    try:
        info = json.loads(text)
    except ValueError:
        return _damaged(path)
    if not (isinstance(info, dict) and isinstance(info.get("host"), str)
            and type(info.get("pid")) is int and isinstance(info.get("started", ""), str)):
        return _damaged(path)
    return info


def _read(path: Path) -> tuple[dict | None, os.stat_result | None]:
    """(holder, stat) of the lock file at ``path``; (None, None) when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            st = os.fstat(f.fileno())
            text = f.read(65536)
    except FileNotFoundError:
        return None, None
    except OSError:
        return _damaged(path), None
    return _parse(text, path), st


def holder(store) -> dict | None:
    """The lock's content (with ``age``: seconds since it was last renewed), or None when the
    store is not locked."""
    info, st = _read(lock_path(store))
    if info is not None and st is not None:
        info["age"] = max(0.0, time.time() - st.st_mtime)
    return info


def _lease(info: dict) -> float:
    """The lease the holder wrote into its lock (this run's setting for older or damaged locks)."""
    lease = info.get("lease")
    ok = isinstance(lease, (int, float)) and not isinstance(lease, bool) and 0 < lease < 1e9
    return float(lease) if ok else _seconds("cluster.lock.lease")


def _stale_reason(info: dict, age: float | None) -> str | None:
    """Why the holder cannot be writing any more, or None when it may be."""
    lease = _lease(info)
    if age is not None and age > lease:
        return f"not renewed for {age:.0f} s, longer than its lease of {lease:.0f} s"
    if info.get("damaged") or info.get("host") != socket.gethostname():
        return None
    pid = info["pid"]
    if pid <= 0:
        return "that process no longer exists"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "that process no longer exists"
    except PermissionError:
        return None
    return None


def is_stale(info: dict) -> bool:
    """True when the holder is a process on this host that no longer exists, or the lock has
    not been renewed for longer than its lease."""
    return _stale_reason(info, info.get("age")) is not None


def describe(info: dict) -> str:
    if info.get("damaged"):
        return f"unreadable lock file {info.get('file', '')}".rstrip()
    return f"host {info.get('host')}, pid {info.get('pid')}, started {info.get('started')}"


def unlock(store) -> dict | None:
    """Remove the lock whatever its state; return what it held."""
    info = holder(store)
    try:
        lock_path(store).unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot unlock {store}: {exc.strerror or exc}") from None
    return info


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only file system says so even for a file that is not there
        pass


def _link(tmp: Path, path: Path) -> None:
    """Put ``tmp``'s content at ``path`` atomically, or raise FileExistsError."""
    try:
        os.link(tmp, path)
    except OSError as exc:  # a file system without hard links: create exclusively
        if exc.errno not in _NO_LINKS:
            raise
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(tmp.read_text())


def _identity(store: Path) -> str | None:
    try:
        st = os.stat(store)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


class _Renewer(threading.Thread):
    """Touches the lock every ``every`` seconds while its token is still in it."""

    def __init__(self, path: Path, token: str, every: float):
        super().__init__(daemon=True, name="sweeper-lock-renewer")
        self.path, self.token, self.every = path, token, every
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(self.every):
            info, _ = _read(self.path)
            if info is None or info.get("token") != self.token:
                log.warning(f"sweeper: the lock {self.path} is no longer this run's; not renewing it")
                return
            try:
                os.utime(self.path)
            except OSError:  # full or read-only for a moment: try again next time
                pass


class StoreLock:
    """Context manager: take the store's lock or raise StoreError naming the current holder.

    A stale lock (see the module's docstring) is taken over automatically, with a message.
    """

    def __init__(self, store):
        self.store = Path(store)
        self.path = lock_path(store)
        self.guard = self.path.with_name(self.path.name + ".guard")
        self.token = uuid.uuid4().hex
        self._renewer: _Renewer | None = None

    def __enter__(self):
        real = self.path.with_name(self.path.name[:-len(".lock")])
        info = {"host": socket.gethostname(), "pid": os.getpid(), "started": now(),
                "token": self.token, "store": str(real), "identity": _identity(real),
                "lease": _seconds("cluster.lock.lease")}
        # write the holder to a private file, then link it into place: the lock appears with its
        # content or not at all (a full disk never leaves an empty lock behind)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{self.token[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(info))
        except OSError as exc:
            _remove(tmp)
            raise StoreError(f"cannot lock {self.store}: {exc.strerror or exc}") from None
        try:
            self._take(tmp)
        except OSError as exc:
            raise StoreError(f"cannot lock {self.store}: {exc.strerror or exc}") from None
        finally:
            _remove(tmp)
        self._renewer = _Renewer(self.path, self.token, _seconds("cluster.lock.renew-every"))
        self._renewer.start()
        return self

    def _take(self, tmp: Path) -> None:
        for _ in range(8):  # each retry means the lock changed hands meanwhile
            try:
                _link(tmp, self.path)
                return
            except FileExistsError:
                pass
            current, st = _read(self.path)
            if current is not None and st is not None:
                age = max(0.0, time.time() - st.st_mtime)
                if age < _lease(current) / 2 and _stale_reason(current, age) is None:
                    raise self._held(current)  # plainly live: refusing needs no guard
            if self._take_over(tmp):
                return
        raise StoreError(f"cannot lock {self.store}: its lock keeps changing hands")

    def _held(self, current: dict) -> StoreError:
        return StoreError(f"{self.store} is being written by another sweeper run "
                          f"({describe(current)}); if that run is dead, clear it with "
                          f"`sweeper unlock {self.store}`")

    def _take_over(self, tmp: Path) -> bool:
        """Under the guard: replace the lock by ours if it is stale (True), refuse if it is live;
        False when it vanished or changed meanwhile (the caller tries again)."""
        clock = self._acquire_guard()
        try:
            current, st = _read(self.path)
            if current is None:
                return False
            reason = _stale_reason(current, None if st is None else max(0.0, clock - st.st_mtime))
            if reason is None:
                raise self._held(current)
            log.warning(f"sweeper: clearing a stale lock on {self.store} ({describe(current)}: {reason})")
            self.path.unlink(missing_ok=True)
            try:
                _link(tmp, self.path)
            except FileExistsError:  # a run that found no lock at all took it in between
                return False
            return True
        finally:
            _remove(self.guard)

    def _acquire_guard(self) -> float:
        """Create the guard file exclusively (waiting while another run holds it); returns its
        modification time: the file system's clock, against which leases are measured."""
        stuck = _seconds("cluster.lock.guard-timeout")
        pause = 0.0005
        while True:
            try:
                fd = os.open(self.guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    if time.time() - os.stat(self.guard).st_mtime > stuck:
                        _remove(self.guard)  # left by a run killed while taking over
                except FileNotFoundError:
                    pass
                # another run holds the guard for a few file operations; back off so that
                # many waiting runs leave it the processor
                time.sleep(pause * (0.5 + random.random()))
                pause = min(0.05, pause * 2)
                continue
            try:
                os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
                return os.fstat(fd).st_mtime
            finally:
                os.close(fd)

    def __exit__(self, *exc):
        if self._renewer is not None:
            self._renewer.stop.set()
            self._renewer.join(timeout=10)
        current, _ = _read(self.path)
        if current is not None and current.get("token") == self.token:
            _remove(self.path)  # not a lock someone else took after `sweeper unlock`
        return False
