"""Times dipde's ``Network.run`` for benchmarks/run.py, in dipde's own Python.

dipde 0.2.2 needs the numpy/scipy of its time (numpy < 1.24), so it cannot share a process
with sweeper: benchmarks/run.py starts this script under the interpreter named by
``--dipde-python`` (or ``SWEEPER_DIPDE_PYTHON``; see benchmarks/dipde_env.sh) and talks to it
by JSON lines on stdin/stdout. The first line is a list of networks as plain data (see
``network_data`` in benchmarks/run.py); each later line ``{"case": i}`` builds network i anew
and answers ``{"seconds": s}``, the CPU time of one ``Network.run`` (lazy operator set-up
included, object construction excluded, as in tests/data/reference/dipde_timings.json), or
``{"error": text}``. It imports nothing from sweeper.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings


def build(net: dict):
    from dipde.internals.connection import Connection
    from dipde.internals.externalpopulation import ExternalPopulation
    from dipde.internals.internalpopulation import InternalPopulation
    from dipde.internals.network import Network

    pops = {}
    for p in net["populations"]:
        if p["kind"] == "internal":
            pops[p["name"]] = InternalPopulation(
                tau_m=tuple(p["tau_m"]), v_min=p["v_min"], v_max=p["v_max"], dv=p["dv"],
                update_method=p["update_method"], approx_order=p["approx_order"], tol=p["tol"],
                norm=math.inf if p["norm"] == "inf" else p["norm"], p0=tuple(p["p0"]),
                initial_firing_rate=p["initial_firing_rate"])
        else:
            pops[p["name"]] = ExternalPopulation(p["rate"])
    conns = [Connection(pops[c["source"]], pops[c["target"]], c["nsyn"], weights=tuple(c["weights"]),
                        delays=tuple(c["delays"]))
             for c in net["connections"]]
    return Network(list(pops.values()), conns)


def main() -> int:
    warnings.simplefilter("ignore")
    nets = json.loads(sys.stdin.readline())
    for line in sys.stdin:
        net = nets[json.loads(line)["case"]]
        try:
            dn = build(net)
            t = time.process_time()
            dn.run(t0=net["t0"], dt=net["dt"], tf=net["tf"])
            answer = {"seconds": time.process_time() - t}
        except Exception as exc:  # noqa: BLE001 - reported by the caller, which falls back
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
