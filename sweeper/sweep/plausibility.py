"""Plausibility warnings (not errors): values that look like the wrong unit.

sweeper's units are seconds, volts and hertz; a new user's ``tf: 500``, ``dt: 1``,
``tau_m: [20, 40]`` or weights of 2 V run and are marked done without a word. These checks
warn, naming the value and the code that silences it in the spec: ``warnings: false`` (all)
or ``warnings: [tf-units, ...]`` (those codes).
"""

from __future__ import annotations

import logging

from ..model import Network

log = logging.getLogger(__name__)

CODES = ("tf-units", "dt-units", "tau_m-units", "weight-range", "dv-range", "few-steps")


def warnings_for(net: Network, where: str = "the network") -> list[tuple[str, str]]:
    """(code, message) for every value of ``net`` that looks like the wrong unit."""
    out = []
    sim = net.simulation
    span, dt = float(sim.tf) - float(sim.t0), float(sim.dt)
    if span > 100:
        out.append(("tf-units", f"{where}: simulation tf={sim.tf!r} s is {span / 60:.3g} minutes of network "
                    "time: milliseconds? (times are in seconds)"))
    if dt >= 0.01:
        out.append(("dt-units", f"{where}: simulation dt={sim.dt!r} s is coarse for membrane dynamics: "
                    "milliseconds? (times are in seconds; dt is usually 1e-4)"))
    if 0 < span / dt < 10:
        out.append(("few-steps", f"{where}: t0={sim.t0!r} .. tf={sim.tf!r} with dt={sim.dt!r} is only "
                    f"{span / dt:.3g} time steps (PopNet tstop and dt are in milliseconds, sweeper's in seconds)"))
    for p in net.internal:
        width = float(p.v_max) - float(p.v_min)
        if max(p.tau_m.values) >= 1:
            out.append(("tau_m-units", f"{where}: populations[{p.name!r}].tau_m={list(p.tau_m.values)} s: "
                        "milliseconds? (tau_m is in seconds, usually 0.01 to 0.05)"))
        if float(p.dv) >= width:
            out.append(("dv-range", f"{where}: populations[{p.name!r}].dv={p.dv!r} V is as wide as the "
                        f"voltage range {p.v_min!r} .. {p.v_max!r} V: one bin"))
    for i, c in enumerate(net.connections):
        try:
            target = net.population(c.target)
            width = float(target.v_max) - float(target.v_min)
        except (KeyError, AttributeError):
            continue
        big = [w for w in c.weights.values if abs(w) > width]
        if big:
            out.append(("weight-range", f"{where}: connections[{i}] ({c.source}->{c.target}).weights "
                        f"{big[0]!r} V is larger than the target's voltage range ({width:g} V): millivolts?"))
    return out


def report(sweep, base: Network) -> list[str]:
    """Log the warnings of ``sweep`` (its base network and each swept numeric value) that its
    ``warnings`` key does not silence; return the messages."""
    setting = sweep.spec.get("warnings", True)
    if setting is False:
        return []
    silenced = set(setting) if isinstance(setting, list) else set()
    nets = [(base, "the network")]
    for name, values in sweep.values.items():
        path = sweep.paths.get(name)
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for v in sorted(set(nums), key=abs)[-1:] + sorted(set(nums), key=abs)[:1] if path is not None else []:
            try:
                nets.append((path.apply(base, v), f"{path.text}={v!r}"))
            except Exception:  # noqa: BLE001 - the value checks report it
                pass
    shown, seen = [], set()
    for net, where in nets:
        for code, message in warnings_for(net, where):
            if code in silenced or code in seen:
                continue
            seen.add(code)
            text = f"sweeper: warning: {sweep.source}: {message} [silence: warnings: [{code}]]"
            log.warning(text)
            shown.append(text)
    return shown


def check_setting(spec: dict, P) -> None:
    setting = spec.get("warnings", True)
    if setting is True or setting is False:
        return
    if not isinstance(setting, list) or any(c not in CODES for c in setting):
        P.add(("warnings",), f"must be true, false or a list of codes to silence ({', '.join(CODES)}), "
              f"got {setting!r}")
