#!/usr/bin/env bash
# local-cluster.sh - a real one-node Slurm cluster on this machine, for tests and for trying the
# scripts in slurm/ on a workstation. Debian/Ubuntu, run as root; systemd is not needed.
#
#   bash slurm/local-cluster.sh start    install (apt, first time only), configure, start munged,
#                                        slurmctld and slurmd, wait until the node is idle
#   bash slurm/local-cluster.sh stop     cancel all jobs, stop ONLY the daemons `start` started
#   bash slurm/local-cluster.sh status   print the daemons; exit 0 if all three run, 3 otherwise
#
# Idempotent: `start` on a running cluster reuses it; `stop` with nothing running does nothing.
# Daemons that were running before `start` are never stopped. Everything stays on 127.0.0.1.
#
# Files: /etc/slurm/slurm.conf (the default path, so sbatch/srun/squeue need no SLURM_CONF),
#        /run/sweeper-slurm (pid files, record of what we started), /var/log/sweeper-slurm,
#        /var/spool/sweeper-slurm.
# Environment:
#   SWEEPER_SLURM_CPUS     CPUs the node advertises (default max(nproc, 4); more than the hardware
#                          works through SlurmdParameters=config_overrides, so 4-task jobs fit a 2-core box)
#   SWEEPER_SLURM_MEM_MB   RealMemory (default: what `slurmd -C` reports)
#   SWEEPER_SLURM_TIMEOUT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

ACTION="${1:-status}"
STATE=/var/spool/sweeper-slurm
LOGDIR=/var/log/sweeper-slurm
RUNDIR=/run/sweeper-slurm
CONF=/etc/slurm/slurm.conf
STARTED="$RUNDIR/started-by-script"     # lines "<name> <pid>"
TIMEOUT="${SWEEPER_SLURM_TIMEOUT:-60}"
HOST="$(hostname -s)"
CONF_CHANGED=0

log() { echo "[local-cluster] $*" >&2; }
alive() { [ -n "${1:-}" ] && [ -d "/proc/$1" ]; }   # works for other users' processes too
pid_from() { if [ -s "$1" ]; then cat "$1"; fi; }
record() { echo "$1 $2" >> "$STARTED"; }
ours() { [ -s "$STARTED" ] && awk -v n="$1" -v p="$2" '$1==n && $2==p {f=1} END {exit !f}' "$STARTED"; }

install_packages() {
  local missing=0 b
  for b in slurmctld slurmd sbatch munged; do command -v "$b" >/dev/null 2>&1 || missing=1; done
  [ "$missing" = 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { log "Slurm is not installed and apt-get is not available"; exit 1; }
  log "installing slurmctld slurmd slurm-client munge (apt)"
  # Package scripts must not try to start daemons (there is no init system to ask).
  local policy_made=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy_made=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q >/dev/null &&
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; } || rc=$?
  [ "$policy_made" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { log "apt-get failed (exit $rc)"; exit 1; }
}

ensure_hostname() {
  if ! getent hosts "$HOST" >/dev/null 2>&1; then
    log "hostname $HOST does not resolve; adding '127.0.0.1 $HOST' to /etc/hosts"
    echo "127.0.0.1 $HOST" >> /etc/hosts
  fi
}

write_conf() {
  local ncpu cpus mem tmp
  ncpu="$(nproc)"
  cpus="${SWEEPER_SLURM_CPUS:-$(( ncpu > 4 ? ncpu : 4 ))}"
  mem="${SWEEPER_SLURM_MEM_MB:-$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')}"
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGDIR" "$RUNDIR"
  tmp="$(mktemp)"
  cat > "$tmp" <<CONF
# Written by sweeper's slurm/local-cluster.sh: one node on loopback, no cgroups, no slurmdbd.
ClusterName=sweeper-local
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/d
SlurmctldPidFile=${RUNDIR}/slurmctld.pid
SlurmdPidFile=${RUNDIR}/slurmd.pid
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# sacct needs slurmdbd; finished jobs get one line each here instead
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGDIR}/jobcomp.log
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that names no memory takes the whole node and jobs run one at a time
DefMemPerCPU=1024
SchedulerType=sched/backfill
# start batch jobs right away instead of after the default 3 s
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
# lets the node advertise more CPUs than the hardware has (see SWEEPER_SLURM_CPUS)
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
NodeName=${HOST} NodeAddr=127.0.0.1 NodeHostname=${HOST} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
  if cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
  else
    if [ -f "$CONF" ]; then cp "$CONF" "$CONF.bak.$(date +%s)"; fi
    mv "$tmp" "$CONF"; chmod 644 "$CONF"; CONF_CHANGED=1
  fi
}

is_daemon() { [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]; }   # name pid (a reused PID is not)

stop_pids() {   # "name pid"...: TERM them together, wait (KILL after 10 s), forget them
  local item left name pid
  for item in "$@"; do
    read -r name pid <<< "$item"
    if is_daemon "$name" "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for _ in $(seq 200); do
    left=0
    for item in "$@"; do read -r name pid <<< "$item"; if is_daemon "$name" "$pid"; then left=1; fi; done
    [ "$left" = 0 ] && break
    sleep 0.05
  done
  for item in "$@"; do
    read -r name pid <<< "$item"
    if is_daemon "$name" "$pid"; then
      log "$name (pid $pid) ignored TERM; sending KILL"; kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
    sed -i "/^$name $pid\$/d" "$STARTED" 2>/dev/null || true
  done
}

start_munged() {
  local pf=/run/munge/munged.pid pid
  pid="$(pid_from "$pf")"
  if alive "$pid"; then log "munged already running (pid $pid)"; return 0; fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge; chmod 0700 /var/log/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock "$pf"
  runuser -u munge -- /usr/sbin/munged       # forks into the background and writes $pf
  for _ in $(seq 50); do pid="$(pid_from "$pf")"; alive "$pid" && break; sleep 0.1; done
  alive "$pid" || { log "munged did not start"; exit 1; }
  record munged "$pid"; log "munged started (pid $pid)"
  munge -n | unmunge >/dev/null || { log "munge self-test failed"; exit 1; }
}

start_daemon() {   # slurmctld | slurmd
  local name="$1" pf="$RUNDIR/$1.pid" pid
  pid="$(pid_from "$pf")"
  if alive "$pid"; then
    if [ "$CONF_CHANGED" = 0 ]; then log "$name already running (pid $pid)"; return 0; fi
    if ours "$name" "$pid"; then
      log "slurm.conf changed: restarting $name"; stop_pids "$name $pid"
    else
      log "slurm.conf changed; $name (pid $pid) is not ours, so only 'scontrol reconfigure'"
      scontrol reconfigure || true; return 0
    fi
  fi
  rm -f "$pf"
  if [ "$name" = slurmctld ]; then slurmctld -c -i; else slurmd; fi   # both daemonize, write $pf
  for _ in $(seq 100); do pid="$(pid_from "$pf")"; alive "$pid" && break; sleep 0.1; done
  if ! alive "$pid"; then
    log "$name did not start; last lines of $LOGDIR/$name.log:"; tail -20 "$LOGDIR/$name.log" >&2 || true; exit 1
  fi
  record "$name" "$pid"; log "$name started (pid $pid)"
}

wait_idle() {
  local t0 st; t0=$(date +%s)
  while :; do
    st="$(sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -1 || true)"
    case "$st" in
      idle|mixed|allocated) log "node $HOST is $st after $(( $(date +%s) - t0 )) s"; return 0 ;;
      drain*|down*|inval*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    if [ $(( $(date +%s) - t0 )) -ge "$TIMEOUT" ]; then
      log "node not idle after ${TIMEOUT} s (state '${st}')"; sinfo -N -l >&2 || true
      tail -20 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 || true; exit 1
    fi
    sleep 0.3
  done
}

need_root() { [ "$(id -u)" = 0 ] || { log "'$ACTION' needs root: it manages system daemons"; exit 1; }; }

do_start() {
  need_root
  install_packages
  ensure_hostname
  write_conf
  touch "$STARTED"
  start_munged
  start_daemon slurmctld
  start_daemon slurmd
  wait_idle
}

do_stop() {
  [ -s "$STARTED" ] || { log "nothing started by this script is running"; return 0; }
  need_root
  if grep -q '^slurmctld ' "$STARTED" && squeue -h >/dev/null 2>&1; then
    # cancel every job first so that no slurmstepd or job process outlives the daemons
    squeue -h -o %i | xargs -r scancel --full 2>/dev/null || true
    for _ in $(seq 60); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  if grep -q '^slurmd ' "$STARTED"; then   # let slurmstepd finish its epilog and exit
    for _ in $(seq 50); do pgrep -x slurmstepd >/dev/null || break; sleep 0.2; done
  fi
  # the Slurm daemons together, then munged, which they need to authenticate their last words
  local slurm munge
  mapfile -t slurm < <(awk '$1=="slurmd" || $1=="slurmctld"' "$STARTED")
  mapfile -t munge < <(awk '$1=="munged"' "$STARTED")
  if [ "${#slurm[@]}" -gt 0 ]; then stop_pids "${slurm[@]}"; fi
  if [ "${#munge[@]}" -gt 0 ]; then stop_pids "${munge[@]}"; fi
  rm -f "$STARTED"
}

do_status() {
  local pf pid all=0
  for pf in /run/munge/munged.pid "$RUNDIR/slurmctld.pid" "$RUNDIR/slurmd.pid"; do
    pid="$(pid_from "$pf")"
    if alive "$pid"; then
      echo "$(basename "$pf" .pid): running (pid $pid)$(ours "$(basename "$pf" .pid)" "$pid" && echo ', started by this script')"
    else
      echo "$(basename "$pf" .pid): not running"; all=3
    fi
  done
  if [ "$all" = 0 ]; then sinfo 2>/dev/null || true; fi
  return "$all"
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
