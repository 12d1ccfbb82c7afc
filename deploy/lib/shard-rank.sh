#!/usr/bin/env bash
# One rank of a shard group: srun or mpirun start this on every host, once per rank. It works out
# what only the rank itself knows, then becomes shardwise-shard:
#   - its rank and local rank (mpirun's variables first: inside a Slurm allocation mpirun's
#     daemons carry Slurm's SLURM_PROCID of their own step);
#   - its log file, LOG_DIR/LOG_NAME[.stepS].rankR.log;
#   - one GPU: the local rank's entry of CUDA_VISIBLE_DEVICES when Slurm or the site left it
#     several (with --gpus-per-task Slurm already gives each task its own);
#   - the address the coordinator can dial back: the source address of this host's route to the
#     coordinator (or --iface's address), so a leader registers HOST:PORT, never 127.0.0.1 unless
#     the coordinator is on this host;
#   - leaders (tp rank 0) write STATE_DIR/leader.RANK ("host pid slurm-step") for
#     deploy/lib/supervise.sh, which drains them first; followers ignore SIGTERM, so a scancel or
#     a stop reaches the leader, which finishes its streams and then stops them.
# Usage: shard-rank.sh --tp N (--coordinator HOST:PORT | --coordinator-file FILE) --port P|auto
#                      [--iface IFACE] [--bin DIR] [--log-dir DIR] [--log-name NAME]
#                      [--state-dir DIR] -- [shardwise-shard options]
# --coordinator-file: the coordinator job's address file (grpc=HOST:PORT), read when the rank
# starts (so a relaunch finds a coordinator that moved), waited for up to COORDINATOR_WAIT_S.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

tp="" coordinator="" coordinator_file="" port="" bin="" log_dir="" log_name=shard state_dir=${SHARDWISE_STATE_DIR:-}
while [ $# -gt 0 ]; do
  case $1 in
    --tp) tp=$2; shift 2 ;;
    --coordinator) coordinator=$2; shift 2 ;;
    --coordinator-file) coordinator_file=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --iface) export SHARDWISE_IFACE=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --log-dir) log_dir=$2; shift 2 ;;
    --log-name) log_name=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --) shift; break ;;
    *) sw_die "unknown option $1 (see the usage at the top of $0)" ;;
  esac
done
[ -n "$tp" ] && [ -n "$coordinator$coordinator_file" ] && [ -n "$port" ] ||
  sw_die "--tp, --coordinator (or --coordinator-file) and --port are required"

if [ -n "${OMPI_COMM_WORLD_RANK:-}" ]; then
  rank=$OMPI_COMM_WORLD_RANK local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-0} slurm_step=-
elif [ -n "${SLURM_PROCID:-}" ]; then
  rank=$SLURM_PROCID local_rank=${SLURM_LOCALID:-0}
  slurm_step=${SLURM_JOB_ID}.${SLURM_STEP_ID:-0}
  log_name+=.step${SLURM_STEP_ID:-0}
else
  rank=${PMIX_RANK:-0} local_rank=0 slurm_step=-
fi
sw_tag="shard-rank[$rank]"

if [ -n "$log_dir" ]; then
  mkdir -p "$log_dir"
  exec >>"$log_dir/$log_name.rank$rank.log" 2>&1
fi

if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  IFS=, read -ra gpus <<<"$CUDA_VISIBLE_DEVICES"
  [ ${#gpus[@]} -le 1 ] || export CUDA_VISIBLE_DEVICES=${gpus[$((local_rank % ${#gpus[@]}))]}
  sw_log "local rank $local_rank on $(hostname): CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
fi

[ -z "$coordinator_file" ] ||
  coordinator=$(sw_wait_for_key "$coordinator_file" grpc "${COORDINATOR_WAIT_S:-600}")
address=$(sw_host_address "${coordinator%:*}")
replica=$((rank / tp))
if [ $((rank % tp)) -eq 0 ]; then
  # auto: a port free on this host now. shardwise-shard adds the replica's index to --listen's
  # port (one launch may hold several replicas), so the index is taken off here.
  [ "$port" != auto ] || port=$(($(sw_free_port) - replica))
  [ -z "$state_dir" ] || { mkdir -p "$state_dir" && echo "$(hostname) $$ $slurm_step" >"$state_dir/leader.$rank"; }
  sw_log "rank $rank on $(hostname) leads replica $replica: it registers $address:$((port + replica))"
else
  trap '' TERM
  [ "$port" != auto ] || port=1  # followers do not listen
  sw_log "rank $rank (local rank $local_rank) on $(hostname) follows in replica $replica"
fi
shard=shardwise-shard
[ -z "$bin" ] || shard=$bin/shardwise-shard
exec "$shard" --tp "$tp" --coordinator "$coordinator" --listen "$address:$port" "$@"
