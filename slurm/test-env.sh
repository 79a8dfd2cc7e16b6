#!/usr/bin/env bash
# test-env.sh CMD...: run CMD (the test suite) with the one-node Slurm cluster up when possible.
#
# The cluster is started (installing Slurm with apt the first time) when SWEEPER_REQUIRE_SLURM=1,
# or when running as root on a machine with apt-get. CMD then sees SWEEPER_SLURM=1, and the
# cluster is stopped again when CMD ends, unless it was already running before. Otherwise CMD
# runs as is and the Slurm tests skip, saying why. The exit status is CMD's.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER="$HERE/local-cluster.sh"

want=0
if [ "${SWEEPER_REQUIRE_SLURM:-0}" = 1 ]; then
  want=1
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  want=1
fi
[ "$want" = 1 ] || exec "$@"

was_running=0
bash "$CLUSTER" status >/dev/null 2>&1 && was_running=1
if ! bash "$CLUSTER" start; then
  if [ "${SWEEPER_REQUIRE_SLURM:-0}" = 1 ]; then
    echo "test-env: SWEEPER_REQUIRE_SLURM=1 but the one-node Slurm cluster did not start" >&2
    bash "$CLUSTER" stop || true
    exit 1
  fi
  echo "test-env: the one-node Slurm cluster did not start; Slurm tests will skip" >&2
  bash "$CLUSTER" stop || true
  exec "$@"
fi
export SWEEPER_SLURM=1
if [ "$was_running" = 0 ]; then
  trap 'bash "$CLUSTER" stop' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
"$@"
exit $?
