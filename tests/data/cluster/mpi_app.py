"""Run under `mpiexec -n 4`: computes through sweeper.cluster.connect("mpi") and exits with $APP_RC.

Prints one line: OK <sum of squares> <number of distinct worker pids> <worker count>.
"""
import os
import sys
import time

from sweeper.cluster import connect


def square(x):
    time.sleep(0.02)  # long enough that both workers get some
    return x * x, os.getpid()


def main() -> int:
    with connect("mpi", quiet=True) as client:
        results = client.gather(client.map(square, range(40)))
        workers = len(client.scheduler_info()["workers"])
        print("OK", sum(r[0] for r in results), len({r[1] for r in results}), workers, flush=True)
    return int(os.environ.get("APP_RC", "0"))


if __name__ == "__main__":
    sys.exit(main())
