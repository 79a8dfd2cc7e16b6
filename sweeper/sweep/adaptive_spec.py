"""The ``adaptive`` sampling axis of a sweep spec: its keys, defaults and checks.

::

    axes:
      - grid: [drive]                 # optional outer axes: one learner per outer point
      - adaptive:
          parameters: [w_ei, w_ie]    # parameters with a range (log: true learns in log space)
          learner: 2d                 # 1d | 2d | nd (default: by the number of parameters)
          metric: mean_rate           # any stored metric ...
          population: inhibitory      # ... of this population drives the learner
          loss: default               # the learner's loss (LOSSES)
          goal: {n: 200, loss: 0.01}  # stop at n points per learner and/or below this loss

The points are chosen while the sweep runs (:mod:`.adaptive`); here only the names are checked,
so validating a spec does not import the ``adaptive`` library.
"""

from __future__ import annotations

from .. import metrics as metric_table
from ..config import get as config

AXIS_KEYS = ("parameters", "learner", "metric", "population", "loss", "goal")
GOAL_KEYS = ("n", "loss")
# learner name -> (fewest, most) parameters it learns over
LEARNERS = {"1d": (1, 1), "2d": (2, 2), "nd": (2, None)}
# learner name -> the loss names it takes (the functions: sweeper.sweep.adaptive.loss_function)
LOSSES = {"1d": ("default", "uniform", "curvature", "abs_min_log", "triangle"),
          "2d": ("default", "uniform", "minimize_triangle_surface"),  # (its triangle loss breaks loss())
          "nd": ("default", "uniform", "std", "curvature", "triangle")}


def max_points() -> int:
    """Points per learner when the goal names only a loss (config ``sweep.adaptive-max-points``)."""
    return int(config("sweep.adaptive-max-points"))


def parse_axis(checks, body, key, P):
    """Check one ``adaptive:`` entry; return ``("adaptive", settings)`` or None.

    ``checks`` is the :class:`~.validate.SpecChecks` being filled (its ranges, constraints,
    spec and, when already loaded, base network are read)."""
    kind = "adaptive"
    if not isinstance(body, dict):
        P.add(key + (kind,), "needs {parameters, metric, population, goal} (see the README)")
        return None
    for k in body:
        if k not in AXIS_KEYS:
            P.add(key + (kind, k), f"unknown key (known: {', '.join(AXIS_KEYS)})")
    names = body.get("parameters")
    if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
        P.add(key + (kind, "parameters"), f"must be a non-empty list of parameter names, got {names!r}")
        return None
    for name in names:
        if name not in checks.ranges:
            P.add(key + (kind, "parameters"), f"{name!r} is not a parameter with a range")
    learner = body.get("learner", {1: "1d", 2: "2d"}.get(len(names), "nd"))
    if learner not in LEARNERS:
        P.add(key + (kind, "learner"), f"unknown learner {learner!r} (use {', '.join(LEARNERS)})")
    else:
        low, high = LEARNERS[learner]
        if len(names) < low or (high is not None and len(names) > high):
            want = str(low) if low == high else f"at least {low}"
            P.add(key + (kind, "learner"), f"learner {learner} takes {want} parameter(s), got {len(names)}")
    loss = body.get("loss", "default")
    if learner in LOSSES and loss not in LOSSES[learner]:
        P.add(key + (kind, "loss"), f"unknown loss {loss!r} for learner {learner} "
              f"(use {', '.join(LOSSES[learner])})")
    metric = body.get("metric", "mean_rate")
    user = checks.spec.get("metrics") if isinstance(checks.spec.get("metrics"), dict) else {}
    if metric not in metric_table.BY_NAME and metric not in user:
        P.add(key + (kind, "metric"), f"unknown metric {metric!r} (built-in: {', '.join(metric_table.BY_NAME)}"
              + (f"; the spec's own: {', '.join(user)}" if user else "") + ")")
    population = _population(checks, body, key + (kind, "population"), P)
    goal = _goal(body.get("goal"), key + (kind, "goal"), P)
    for c in getattr(checks, "constraints", []):
        if set(c.names) & set(names):
            P.add(("constraints",), f"{c.text!r} names an adaptive parameter; constraints may only "
                  "name parameters of the other axes")
    return (kind, {"parameters": list(names), "learner": learner, "metric": metric, "population": population,
                   "loss": loss, "goal": goal, "n": goal["n"] if goal["n"] is not None else max_points()})


def _population(checks, body, key, P) -> str | None:
    base = checks.__dict__.get("_base")  # the network, when the file or builder loaded
    recorded = list(base.recorded) if base is not None else None
    population = body.get("population")
    if population is None:
        if recorded is not None and len(recorded) == 1:
            return recorded[0]
        if recorded is not None:
            P.add(key, f"name the population whose metric drives the learner (one of {', '.join(recorded)})")
        return None
    if not isinstance(population, str) or (recorded is not None and population not in recorded):
        P.add(key, f"{population!r} is not a recorded population"
              + (f" (use one of {', '.join(recorded)})" if recorded else ""))
    return population


def _goal(goal, key, P) -> dict:
    out = {"n": None, "loss": None}
    if not isinstance(goal, dict) or not any(k in goal for k in GOAL_KEYS):
        P.add(key, f"needs n (points per learner) and/or loss (stop below it), got {goal!r}")
        return out
    for k in goal:
        if k not in GOAL_KEYS:
            P.add(key + (k,), f"unknown key (known: {', '.join(GOAL_KEYS)})")
    n, loss = goal.get("n"), goal.get("loss")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            P.add(key + ("n",), f"must be an integer >= 1, got {n!r}")
        elif n > max_points():
            P.add(key + ("n",), f"must be at most {max_points()} (config sweep.adaptive-max-points), got {n!r}")
        else:
            out["n"] = n
    if loss is not None:
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not loss > 0:
            P.add(key + ("loss",), f"must be a number > 0, got {loss!r}")
        else:
            out["loss"] = float(loss)
    return out
