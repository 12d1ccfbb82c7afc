#!/usr/bin/env bash
# Keeps one launch of a shard group (or a coordinator) running: relaunches it when it ends,
# pausing longer after each quick failure, and drains it on SIGTERM/SIGINT: the group's leaders
# are signalled first (each deregisters from the coordinator, finishes its streams and stops its
# followers), and the launcher (srun, mpirun) only after they are done or --drain-timeout passed.
#
# Usage: supervise.sh [options] -- COMMAND [ARGS...]
#   --backoff-min S    pause before the first relaunch (default 2)
#   --backoff-max S    longest pause; it doubles after every run shorter than --healthy-after
#                      (default 60)
#   --healthy-after S  a run at least this long resets the pause (default 120)
#   --max-restarts N   give up (exit with the group's status) after N relaunches in a row
#                      without a healthy run; 0: never (default 0)
#   --drain-timeout S  how long leaders may drain before the launcher is stopped (default 30)
#   --state-dir DIR    where the ranks write leader pid files (default: a temporary folder)
#   --remote-shell CMD how to reach a leader on another host to signal it: "ssh" (default), or
#                      any command called as CMD HOST COMMAND
#   --watch FILE       relaunch (drained) when FILE comes to hold something new, e.g. the
#                      coordinator's address file when it moved; FILE going away changes nothing
#                      (a coordinator back at the same address is registered with again)
#   --orphan-grace S   a launch whose leaders on this host have all exited is stopped after S
#                      seconds (default 10): mpirun waits minutes on a host it cannot reach
# COMMAND sees SHARDWISE_STATE_DIR (for deploy/lib/shard-rank.sh) and SHARDWISE_LAUNCH (1, 2, ...).
# Exits 0 after a drain on a signal.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
sw_tag="supervise[$$]"

backoff_min=2 backoff_max=60 healthy_after=120 max_restarts=0 drain_timeout=30
state_dir="" remote_shell=ssh watch="" orphan_grace=10
while [ $# -gt 0 ]; do
  case $1 in
    --backoff-min) backoff_min=$2; shift 2 ;;
    --backoff-max) backoff_max=$2; shift 2 ;;
    --healthy-after) healthy_after=$2; shift 2 ;;
    --max-restarts) max_restarts=$2; shift 2 ;;
    --drain-timeout) drain_timeout=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --remote-shell) remote_shell=$2; shift 2 ;;
    --watch) watch=$2; shift 2 ;;
    --orphan-grace) orphan_grace=$2; shift 2 ;;
    --) shift; break ;;
    *) sw_die "unknown option $1 (see the usage at the top of $0)" ;;
  esac
done
[ $# -gt 0 ] || sw_die "no command to supervise (usage: supervise.sh [options] -- COMMAND...)"
if [ -z "$state_dir" ]; then
  state_dir=$(mktemp -d)
  trap 'rm -rf "$state_dir"' EXIT
fi
mkdir -p "$state_dir"
export SHARDWISE_STATE_DIR=$state_dir

child=""
stopping=0
this_host=$(hostname)

# Signals every leader of the running launch: by pid on this host, through Slurm for a leader
# that srun started elsewhere, through the remote shell for one that mpirun started elsewhere.
signal_leaders() {
  local file host pid step
  for file in "$state_dir"/leader.*; do
    [ -e "$file" ] || continue
    read -r host pid step <"$file" || continue
    if [ "$host" = "$this_host" ]; then
      # The pid is checked to be a shard (not a recycled pid) before it is signalled.
      grep -qa shardwise-shard "/proc/$pid/cmdline" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    elif [ -n "$step" ] && [ "$step" != - ]; then
      scancel --signal=TERM "$step" 2>/dev/null
    else
      $remote_shell "$host" kill -TERM "$pid" </dev/null 2>/dev/null
    fi
    sw_log "asked leader $pid on $host to drain"
  done
}

# Succeeds when this host had leaders in the running launch and none of them is alive.
leaders_gone() {
  local file host pid step seen=0
  for file in "$state_dir"/leader.*; do
    [ -e "$file" ] || continue
    read -r host pid step <"$file" || continue
    [ "$host" = "$this_host" ] || continue
    seen=1
    kill -0 "$pid" 2>/dev/null && return 1
  done
  [ $seen -eq 1 ]
}

# Signals every process of the launch's session (the launcher, its local ranks, the rsh
# agents it started in process groups of their own).
signal_launch() {
  local pid
  for pid in $(ps -o pid= -s "$child" 2>/dev/null); do kill "-$1" "$pid" 2>/dev/null; done
}

# Waits up to $1 seconds for the launch to end; succeeds when it has.
wait_child() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$child" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
  return 0
}

# Drains the running launch: leaders first, then the launcher, then anything left.
drain() {
  [ -n "$child" ] && kill -0 "$child" 2>/dev/null || return 0
  signal_leaders
  wait_child "$drain_timeout" && return 0
  sw_log "the launch still runs ${drain_timeout}s after the leaders were asked to drain: stopping it"
  stop_launch
}

stop_launch() {
  signal_launch TERM
  wait_child 10 && return 0
  signal_launch KILL
}

on_signal() {
  sw_log "$1: draining the group"
  stopping=1
  drain
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT

watched() { [ -z "$watch" ] || cat "$watch" 2>/dev/null; }

launch=0 restarts=0 backoff=$backoff_min
while [ $stopping -eq 0 ]; do
  launch=$((launch + 1))
  rm -f "$state_dir"/leader.*
  export SHARDWISE_LAUNCH=$launch
  watched_before=$(watched)
  changed=0
  started=$SECONDS
  sw_log "launch $launch: $*"
  # A session of its own, so that a stop reaches everything it started on this host.
  setsid "$@" &
  child=$!
  orphaned=0
  while kill -0 "$child" 2>/dev/null && [ $stopping -eq 0 ]; do
    now_watched=$(watched)
    if [ -n "$now_watched" ] && [ "$now_watched" != "$watched_before" ]; then
      if [ -z "$watched_before" ]; then
        watched_before=$now_watched  # launched before it existed: the ranks wait and read it
      else
        sw_log "$watch changed: relaunching the group"
        changed=1
        drain
        break
      fi
    fi
    if leaders_gone; then
      orphaned=$((orphaned + 1))
      if [ $orphaned -ge "$orphan_grace" ]; then
        sw_log "the leaders exited ${orphan_grace}s ago but the launcher still runs: stopping it"
        stop_launch
        break
      fi
    fi
    sleep 1 &
    wait $! 2>/dev/null
  done
  wait "$child" 2>/dev/null
  status=$?
  [ $stopping -eq 0 ] || break
  [ $changed -eq 0 ] || continue
  ran=$((SECONDS - started))
  if [ $ran -ge "$healthy_after" ]; then
    restarts=0
    backoff=$backoff_min
  fi
  restarts=$((restarts + 1))
  if [ "$max_restarts" -gt 0 ] && [ $restarts -gt "$max_restarts" ]; then
    sw_log "launch $launch exited with status $status after ${ran}s; $max_restarts relaunches failed: giving up"
    exit "$status"
  fi
  sw_log "launch $launch exited with status $status after ${ran}s; relaunching in ${backoff}s"
  sleep "$backoff" &
  wait $! 2>/dev/null
  backoff=$((backoff * 2 > backoff_max ? backoff_max : backoff * 2))
done
sw_log "stopped"
exit 0
