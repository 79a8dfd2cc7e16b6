"""Test instrumentation: hold a process at one exact file write, so a test can act at that moment.

Python imports this module at start-up when tests/gate is on PYTHONPATH. It does nothing unless
SWEEPER_TEST_GATE is ``REGEX;FOLDER``. Then the first process (of all that share FOLDER) that opens
for writing a file whose path matches REGEX writes FOLDER/held (its pid and the path) and blocks
reading the FIFO FOLDER/fifo until it is killed, or until the test writes to the FIFO. Nothing is
replaced: the real code runs up to that instant. Used by tests/faults_gate.py.
"""

import os
import re
import sys
import threading

_SPEC = os.environ.get("SWEEPER_TEST_GATE")


def _install(pattern: str, folder: str) -> None:
    rx = re.compile(pattern)
    inside = threading.local()

    def writing(mode, flags) -> bool:
        if isinstance(mode, str):
            return any(c in mode for c in "wax+")
        return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR))

    def hook(event, args):
        if event != "open" or getattr(inside, "on", False) or len(args) < 3:
            return
        path, mode, flags = args[:3]
        if not isinstance(path, (str, bytes, os.PathLike)) or not writing(mode, flags):
            return
        name = os.fsdecode(path)
        if not rx.search(name):
            return
        inside.on = True
        try:
            try:  # the first match anywhere claims the gate; later ones pass
                fd = os.open(os.path.join(folder, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            tmp = os.path.join(folder, f"held.{os.getpid()}")
            with open(tmp, "w") as f:
                f.write(f"{os.getpid()}\n{name}\n")
            os.replace(tmp, os.path.join(folder, "held"))
            with open(os.path.join(folder, "fifo"), "rb") as fifo:  # blocks until a writer opens it
                fifo.read()
        finally:
            inside.on = False

    sys.addaudithook(hook)


if _SPEC:
    _install(*_SPEC.rsplit(";", 1))
