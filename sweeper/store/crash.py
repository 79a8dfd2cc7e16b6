"""Named steps of every structure change, and a test hook that stops the process at one of them.

Each change of a store (creation, a chunk write, an extension, a metric added) passes through
:func:`step` between its writes.  With ``SWEEPER_TEST_CRASH_AT=<name>`` in the environment the
process exits at once (``os._exit``, as a kill would) when it reaches the step of that name, so a
test can stop a run at every step in turn rather than at random moments.
``SWEEPER_TEST_CRASH_LOG=<file>`` appends each step's name as it passes (to prove that a test's
list of steps is complete).  Both are read from the environment at each step; unset, a step costs a
dictionary lookup.
"""

from __future__ import annotations

import os

CRASH_AT = "SWEEPER_TEST_CRASH_AT"
CRASH_LOG = "SWEEPER_TEST_CRASH_LOG"
EXIT_STATUS = 99

CREATE_STEPS = ("create.arrays", "create.attrs", "create.consolidated", "create.renamed")
EXTEND_STEPS = ("extend.parameters", "extend.resized", "extend.ids", "extend.committed", "extend.consolidated")
REPAIR_STEPS = ("repair.cut", "repair.ids")
METRIC_STEPS = ("metric.array", "metric.committed", "metric.chunk", "metric.done")  # sweeper metrics
RUN_STEPS = ("run.completed",)


def write_step(variable: str) -> str:
    """The step after ``variable``'s part of a chunk is written."""
    return f"write.{variable}"


def step(name: str) -> None:
    """Pass the named step (exit here when the test hook asks for it)."""
    log = os.environ.get(CRASH_LOG)
    if log:
        with open(log, "a") as f:
            f.write(name + "\n")
    if os.environ.get(CRASH_AT) == name:
        os._exit(EXIT_STATUS)
