#!/usr/bin/env bash
# The project's own Slurm batch scripts on a real one-node Slurm cluster (slurm_cluster.sh):
# deploy/slurm/submit-deployment.sh submits the coordinator job, a TP=2 group
# (gpu-group.sbatch with --device cpu on two fake GPUs, under srun --mpi=pmix) and a second
# replica (cpu-pool.sbatch under mpirun inside its allocation). Then, with a real client
# (deploy_client.py): /health, tokens equal to `shardwise generate`, per-rank log files, one GPU
# per rank; a killed rank relaunched by the batch script's retry loop; `scontrol requeue` of the
# group while streams are in flight (they finish: the leader drains; the replica leaves, and
# returns when the requeued job runs); `scancel` of the other replica the same way; a requeued
# coordinator, with which the group registers again; a coordinator that moved, which the group
# follows through its address file. Every daemon and job is stopped on exit, whatever happened.
# Usage: slurm_cluster_test.sh COORDINATOR SHARD CLI PROTO_DIR
set -euo pipefail
coordinator=$1 shard=$2 cli=$3 proto_dir=$4
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../coordinator/loopback.sh"
. "$here/slurm_cluster.sh"
trap 'stop_slurm_cluster; loopback_cleanup' EXIT

[ "$(id -u)" -eq 0 ] || { echo "SKIP: slurmd runs jobs only as root"; exit 0; }
for tool in munged slurmctld slurmd sbatch; do
  command -v $tool >/dev/null || { echo "FAIL: $tool is missing: run scripts/install-deps.sh"; exit 1; }
done
[ "$(dirname "$coordinator")" = "$(dirname "$shard")" ] ||
  { echo "FAIL: the jobs take both executables from one folder (SHARDWISE_BIN)"; exit 1; }
python_stubs "$proto_dir"

start_slurm_cluster "$work/slurm"
srun --mpi=list 2>&1 | grep -q pmix || { echo "FAIL: this Slurm has no PMIx plugin"; exit 1; }
read -r grpc_port http_port <<<"$(free_ports 2)"
client() { PYTHONPATH="$work" "$python" "$here/deploy_client.py" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" "$@"; }
run=$work/run
show_logs() {
  echo "--- jobs"; squeue 2>&1 || true
  for log in "$run"/*.out "$run"/logs/*; do echo "--- $log"; tail -25 "$log"; done
}
trap 'status=$?; [ $status -eq 0 ] || show_logs; stop_slurm_cluster; loopback_cleanup; exit $status' EXIT

# What a user sets for the scripts (sbatch passes the environment on). SHARDWISE_HOME is the
# folder sbatch runs from; the binaries are this build's.
export SHARDWISE_BIN=$(dirname "$shard") SHARDWISE_RUN_DIR=$run GRPC_PORT=$grpc_port HTTP_PORT=$http_port
export COORDINATOR_ARGS="--heartbeat-ms 500 --models stories260K"
export MODEL=$repo/assets/models/stories260K BACKOFF_MIN_S=1 DRAIN_TIMEOUT_S=20
mkdir -p "$run"
cd "$repo"
sbatch_args="--cpus-per-task=1 --output=$run/%x-%j.out"
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The deployment as a user submits it, with resources cut to this node: the coordinator job,
# the GPU group script at TP 2 on the two fake GPUs with its ranks on the CPU (srun --mpi=pmix),
# and a pool of one CPU replica under mpirun inside its allocation.
start=$(date +%s.%N)
jobs=$(DEVICE=cpu GPU_TP=2 GPU_MODEL=$MODEL CPU_MODEL=$MODEL CPU_LAUNCHER=mpirun \
  COORDINATOR_SBATCH="$sbatch_args" GPU_SBATCH="$sbatch_args --nodes=1 --ntasks-per-node=2" \
  CPU_SBATCH="$sbatch_args --array=0" deploy/slurm/submit-deployment.sh)
echo "$jobs"
group=$(sed -n 's/^gpu=//p' <<<"$jobs")
replica=$(sed -n 's/^cpu=//p' <<<"$jobs")_0
client --timeout 120 wait-live 1 --at-least
first=$(date +%s.%N)
client --timeout 120 wait-live 2
echo "sbatch -> /health 200: $(awk -v a="$start" -v b="$first" 'BEGIN { printf "%.1f", b - a }') s; both replicas live: $(since "$start") s"
squeue

client matches-cli --cli "$cli" --model-dir "$MODEL" --prompts 2
group_logs=$run/logs/shardwise-gpu-$group.run0
for log in "$group_logs.step0.rank0" "$group_logs.step0.rank1" "$run/logs/shardwise-cpu-$replica.run0.rank0"; do
  grep -q "registered stories260K\|follows in replica" "$log.log" || { echo "FAIL: no rank log $log.log"; exit 1; }
done
echo "ok: per-rank logs by job, step and rank: $(cd "$run/logs" && ls ./*.rank*.log | tr '\n' ' ')"
grep -q "CUDA_VISIBLE_DEVICES=0$" "$group_logs.step0.rank0.log" && grep -q "CUDA_VISIBLE_DEVICES=1$" "$group_logs.step0.rank1.log" ||
  { echo "FAIL: --gpus-per-task did not give each rank its own GPU"; exit 1; }
echo "ok: --gpus-per-task: rank 0 has CUDA_VISIBLE_DEVICES=0, rank 1 has 1"

# A rank dies: its group ends, and the batch script's retry loop brings it back.
leader_pid=$(awk '{ print $2 }' "$run/state/shardwise-gpu-$group.run0/leader.0")
# srun's ranks are children of one slurmstepd.
follower_pid=$(pgrep -P "$(ps -o ppid= "$leader_pid" | tr -d ' ')" -x shardwise-shard | grep -vx "$leader_pid" | head -1)
kill -KILL "$follower_pid"
echo "killed follower rank $follower_pid of the TP=2 group"
client --timeout 30 wait-live 1
client --timeout 60 wait-live 2
grep -q "relaunching in" "$group_logs.supervisor.log" ||
  { echo "FAIL: the supervisor did not say it relaunched"; exit 1; }

# Requeue the TP=2 group while streams run: the leader drains (every stream completes), the
# replica leaves at once, and comes back when Slurm runs the requeued job.
client streams --count 6 --max-tokens 200 --expect ok --then "scontrol requeue $group"
client --timeout 30 wait-live 1
# Slurm holds a requeued job for two minutes once its last run has ended; release it then.
for _ in $(seq 150); do [ "$(squeue -h -j "$group" -o %T)" = PENDING ] && break; sleep 0.2; done
requeued=$(date +%s.%N)
scontrol update JobId="$group" StartTime=now
client --timeout 60 wait-live 2
echo "requeued group back in rotation $(since "$requeued") s after its release"
grep -q "registered stories260K" "$run/logs/shardwise-gpu-$group.run1.step0.rank0.log" ||
  { echo "FAIL: no log of the requeued run"; exit 1; }

# scancel the mpirun replica while streams run: it drains too, and leaves for good.
client streams --count 6 --max-tokens 200 --expect ok --then "scancel $replica"
client --timeout 30 wait-live 1

# The coordinator job is requeued: the group, registered at the same address, registers again
# as soon as it is back.
coordinator_job=$(sed -n 's/^coordinator=//p' <<<"$jobs")
scontrol requeue "$coordinator_job"
for _ in $(seq 150); do [ "$(squeue -h -j "$coordinator_job" -o %T)" = PENDING ] && break; sleep 0.2; done
released=$(date +%s.%N)
scontrol update JobId="$coordinator_job" StartTime=now
client --timeout 60 wait-live 1
echo "requeued coordinator serving again $(since "$released") s after its release"

# The coordinator moves (cancelled; a new job on other ports): the group's supervisor sees the
# new address file and relaunches the group, whose ranks register there.
scancel "$coordinator_job"
read -r grpc_port http_port <<<"$(free_ports 2)"
moved=$(date +%s.%N)
GRPC_PORT=$grpc_port HTTP_PORT=$http_port sbatch --parsable $sbatch_args deploy/slurm/coordinator.sbatch >/dev/null
client --timeout 60 wait-live 1
echo "moved coordinator serving $(since "$moved") s after its sbatch"
grep -q "coordinator changed: relaunching the group" "$run/logs/shardwise-gpu-$group.run1.supervisor.log" ||
  { echo "FAIL: the group did not follow the coordinator's address file"; exit 1; }
client matches-cli --cli "$cli" --model-dir "$MODEL" --prompts 2
echo "PASS"
