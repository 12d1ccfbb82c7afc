# shellcheck shell=bash
# Sourced by the batch scripts in this folder, after they set their variables: starts the
# coordinator and shard groups under deploy/lib/supervise.sh and drains them on a signal.
# How the pieces find each other: the coordinator job writes its address to
# $SHARDWISE_RUN_DIR/coordinator (a folder every node sees, like $HOME), as
#   grpc=HOST:PORT  http=HOST:PORT  job=ID  node=NAME
# and the shard jobs wait for that file, then register with grpc=. A coordinator that comes back
# on another node rewrites the file; the groups' supervisors see it change and relaunch, and the
# relaunched ranks read the new address.
# Variables: docs/deployment.md has them all.
set -uo pipefail
: "${SHARDWISE_HOME:?set SHARDWISE_HOME to the shardwise checkout (default: the folder you sbatch from)}"
SHARDWISE_BIN=${SHARDWISE_BIN:-$SHARDWISE_HOME/build/bin}
SHARDWISE_RUN_DIR=${SHARDWISE_RUN_DIR:-$HOME/shardwise-run}
export COORDINATOR_WAIT_S=${COORDINATOR_WAIT_S:-600}  # the ranks read it too
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-60}
BACKOFF_MIN_S=${BACKOFF_MIN_S:-2}
BACKOFF_MAX_S=${BACKOFF_MAX_S:-60}
MPI_TRANSPORT=${MPI_TRANSPORT:-auto}
MPI_NETWORKS=${MPI_NETWORKS:-${SHARDWISE_IFACE:-}}
# The cluster token (docs/security.md), which shards on other nodes must present to register. With
# the coordinator job (no $COORDINATOR), by default a random one in the run folder, readable by
# this user only, written by that job before it publishes its address (which the shard jobs wait
# for). Both binaries read the variable.
if [ -z "${SHARDWISE_CLUSTER_TOKEN_FILE:-}" ] && [ -z "${COORDINATOR:-}" ]; then
  export SHARDWISE_CLUSTER_TOKEN_FILE=$SHARDWISE_RUN_DIR/cluster-token
fi
. "$SHARDWISE_HOME/deploy/lib/common.sh"
. "$SHARDWISE_HOME/deploy/lib/mpirun-args.sh"

sw_tag="${SLURM_JOB_NAME:-job}[${SLURM_JOB_ID:-?}]"
address_file=$SHARDWISE_RUN_DIR/coordinator
log_dir=$SHARDWISE_RUN_DIR/logs
# One name per job (an array's element: ARRAYJOB_TASK) and per run of it (after a requeue).
job_name=${SLURM_JOB_NAME:-shardwise}-${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}
[ -n "${SLURM_ARRAY_JOB_ID:-}" ] || job_name+=${SLURM_JOB_ID:-0}
job_name+=.run${SLURM_RESTART_COUNT:-0}
supervise=$SHARDWISE_HOME/deploy/lib/supervise.sh
mkdir -p "$log_dir"
supervisors=()    # shard groups, stopped first
coordinator_pid=""

# Runs the coordinator here, supervised, and publishes its address once it answers HTTP.
# Usage: start_coordinator GRPC_PORT HTTP_PORT [shardwise-coordinator options...]
start_coordinator() {
  local grpc_port=$1 http_port=$2 host
  shift 2
  host=$(sw_host_address)
  if [ -n "${SHARDWISE_CLUSTER_TOKEN_FILE:-}" ] && [ ! -s "$SHARDWISE_CLUSTER_TOKEN_FILE" ]; then
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$SHARDWISE_CLUSTER_TOKEN_FILE.$$" &&
      mv "$SHARDWISE_CLUSTER_TOKEN_FILE.$$" "$SHARDWISE_CLUSTER_TOKEN_FILE")
    sw_log "new cluster token in $SHARDWISE_CLUSTER_TOKEN_FILE"
  fi
  "$supervise" --backoff-min "$BACKOFF_MIN_S" --backoff-max "$BACKOFF_MAX_S" -- \
    "$SHARDWISE_BIN/shardwise-coordinator" --grpc "0.0.0.0:$grpc_port" --http "0.0.0.0:$http_port" "$@" \
    >>"$log_dir/$job_name.coordinator.log" 2>&1 &
  coordinator_pid=$!
  sw_wait_http "$host:$http_port" /health 120 ||
    sw_die "the coordinator did not answer on $host:$http_port within 120 s: see $log_dir/$job_name.coordinator.log"
  sw_write_keys "$address_file" "grpc=$host:$grpc_port" "http=$host:$http_port" \
    "job=${SLURM_JOB_ID:-}" "node=$(hostname)"
  sw_log "coordinator up: gRPC $host:$grpc_port, HTTP http://$host:$http_port (written to $address_file)"
}

# The coordinator's gRPC address: $COORDINATOR when set, else the coordinator job's file.
coordinator_address() {
  if [ -n "${COORDINATOR:-}" ]; then
    echo "$COORDINATOR"
  else
    sw_wait_for_key "$address_file" grpc "$COORDINATOR_WAIT_S"
  fi
}

# Starts one launch of shard groups (TOTAL_TASKS / TP replicas), supervised.
# Usage: start_group LAUNCHER TP PORT -- [shardwise-shard options...]
#   LAUNCHER  srun (srun --mpi=pmix) or mpirun (Open MPI inside the allocation, no PMIx needed)
#   PORT      the leaders' gRPC port, or auto (a free port on each leader's host)
start_group() {
  local launcher=$1 tp=$2 port=$3 coordinator state=$SHARDWISE_RUN_DIR/state/$job_name
  local launch=() mpi=() where=(--coordinator-file "$address_file") watch=(--watch "$address_file")
  [ "${4:-}" = -- ] || sw_die "start_group LAUNCHER TP PORT -- [shard options]"
  shift 4
  coordinator=$(coordinator_address) || exit 2
  if [ -n "${COORDINATOR:-}" ]; then
    where=(--coordinator "$COORDINATOR")
    watch=()
  fi
  # Threads per rank: the task's CPUs (srun no longer passes --cpus-per-task down by itself).
  local cpus=${SLURM_CPUS_PER_TASK:-}
  case " $* " in *" --threads "*) ;; *) [ -z "$cpus" ] || set -- --threads "$cpus" "$@" ;; esac
  local rank=("$SHARDWISE_HOME/deploy/lib/shard-rank.sh" --tp "$tp" "${where[@]}" --port "$port"
    --bin "$SHARDWISE_BIN" --log-dir "$log_dir" --log-name "$job_name" --state-dir "$state" --)
  case $launcher in
    srun)
      launch=(srun --mpi=pmix --kill-on-bad-exit=1)
      [ -z "$cpus" ] || launch+=(--cpus-per-task="$cpus")
      ;;
    mpirun)
      sw_mpirun_args mpi "$MPI_TRANSPORT" "$MPI_NETWORKS"
      sw_mpirun_env mpi
      # scancel signals mpirun together with the leader, and mpirun kills its ranks this long
      # after (1 s by default): the leader's time to drain. (It can also delay the end of a
      # launch whose rank died by as much; srun has no such wait.)
      launch=(mpirun "${mpi[@]}" --mca odls_base_sigkill_timeout "$DRAIN_TIMEOUT_S")
      ;;
    *) sw_die "LAUNCHER=$launcher: expected srun or mpirun" ;;
  esac
  "$supervise" --state-dir "$state" --drain-timeout "$DRAIN_TIMEOUT_S" "${watch[@]}" \
    --backoff-min "$BACKOFF_MIN_S" --backoff-max "$BACKOFF_MAX_S" -- \
    "${launch[@]}" "${rank[@]}" "$@" >>"$log_dir/$job_name.supervisor.log" 2>&1 &
  supervisors+=($!)
  sw_log "shard group ($launcher, tp $tp) registering with $coordinator: logs $log_dir/$job_name.*"
}

# Drains on SIGTERM (scancel, or --signal=B:TERM@SECONDS before the time limit): the shard
# groups first, the coordinator after them, so the last streams can finish.
stop_all() {
  sw_log "$1: draining"
  trap '' TERM INT
  local pid
  for pid in "${supervisors[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${supervisors[@]}"; do wait "$pid" 2>/dev/null; done
  if [ -n "$coordinator_pid" ]; then
    kill -TERM "$coordinator_pid" 2>/dev/null
    wait "$coordinator_pid" 2>/dev/null
    # Only this job's address is taken down: a newer coordinator may have written its own.
    grep -qx "job=${SLURM_JOB_ID:-}" "$address_file" 2>/dev/null && rm -f "$address_file"
  fi
  sw_log "stopped"
  exit 0
}

# Waits for a signal (or for every supervisor to give up) and drains.
serve_until_stopped() {
  trap 'stop_all SIGTERM' TERM
  trap 'stop_all SIGINT' INT
  local pid status=0
  for pid in "${supervisors[@]}" $coordinator_pid; do
    while kill -0 "$pid" 2>/dev/null; do
      wait "$pid"
    done
    wait "$pid" 2>/dev/null || status=$?
  done
  exit "$status"
}
