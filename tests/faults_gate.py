"""Hold a `sweeper` process (driver or worker) at one exact file write: an event to act on.

``Gate(folder, regex).env()`` is the environment for a subprocess (or a LocalCluster's worker
processes); the first write to a path matching ``regex`` in any of them blocks there, and
``gate.wait(proc)`` returns (pid, path) once it does. A process that ends before reaching the
gate fails the test loudly: the moment a test needs is reached, or the test says it was not.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

GATE_DIR = Path(__file__).resolve().parent / "gate"


class Gate:
    def __init__(self, folder: Path, regex: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ("claim", "held"):
            (self.folder / name).unlink(missing_ok=True)
        fifo = self.folder / "fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        self.regex = regex

    def env(self, base: dict | None = None) -> dict:
        env = dict(os.environ if base is None else base)
        env["PYTHONPATH"] = os.pathsep.join([str(GATE_DIR)] + [p for p in [env.get("PYTHONPATH")] if p])
        env["SWEEPER_TEST_GATE"] = f"{self.regex};{self.folder}"
        return env

    @property
    def held(self) -> tuple[int, str] | None:
        try:
            pid, path = (self.folder / "held").read_text().splitlines()[:2]
        except (FileNotFoundError, ValueError):
            return None
        return int(pid), path

    def wait(self, proc=None, alive=None, timeout: float = 600) -> tuple[int, str]:
        """Block until some process is held at the gate (polling a file: the event itself)."""
        deadline = time.monotonic() + timeout
        while self.held is None:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the run ended before reaching the gate {self.regex!r}: "
                                     f"{proc.communicate()}")
            if alive is not None and not alive():
                raise AssertionError(f"the run ended before reaching the gate {self.regex!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing reached the gate {self.regex!r} in {timeout} s")
            time.sleep(0.005)
        return self.held

    def release(self) -> None:
        """Let the held process go on (opening the FIFO for writing ends its blocking read)."""
        # the held process writes `held` just before it opens the FIFO: until it has, opening for
        # writing fails with ENXIO, so wait for that event (or for the process to be gone)
        deadline = time.monotonic() + 600
        while True:
            try:
                fd = os.open(self.folder / "fifo", os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                held = self.held
                if held is None or not _alive(held[0]):
                    return  # nobody to release
                if time.monotonic() > deadline:
                    raise AssertionError("the held process never opened the gate's FIFO") from None
                time.sleep(0.005)
                continue
            os.close(fd)
            return


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
