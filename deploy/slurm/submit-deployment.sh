#!/usr/bin/env bash
# Brings up a whole deployment as three jobs: the coordinator (coordinator.sbatch), a GPU group
# (gpu-group.sbatch: Llama 3.1 70B at TP 8 over 2 nodes by default) and a CPU pool
# (cpu-pool.sbatch: four Llama 3.1 8B replicas by default). The shard jobs wait for the
# coordinator's address file (up to COORDINATOR_WAIT_S); AFTER_COORDINATOR=1 also keeps them
# queued until the coordinator job runs (--dependency=after; Slurm may take up to a scheduling
# interval, ~30-60 s, to notice), so they hold no nodes while it waits. Each job keeps a life
# of its own: one can be requeued, resized or cancelled without the others. (A heterogeneous job
# would start and stop all three together and cannot requeue one part alone.)
#
# Run from the checkout:  deploy/slurm/submit-deployment.sh
# Prints "coordinator=ID", "gpu=ID", "cpu=ID". The three scripts' variables apply (exported, they
# reach every job); these pick per job what the scripts share by name:
#   GPU_MODEL, GPU_TP, GPU_LAUNCHER       the GPU group's MODEL, TP (default: all its tasks),
#                                         LAUNCHER (srun)
#   CPU_MODEL, CPU_TP, CPU_LAUNCHER       the pool's MODEL, TP (1), LAUNCHER (srun)
#   COORDINATOR_SBATCH, GPU_SBATCH, CPU_SBATCH
#                                         more sbatch options per job, e.g. GPU_SBATCH="--nodes=4"
#   NO_GPU=1 / NO_CPU=1                   leave that job out
#   AFTER_COORDINATOR=1                   queue the shard jobs behind the coordinator job
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
read -ra coordinator_sbatch <<<"${COORDINATOR_SBATCH:-}"
read -ra gpu_sbatch <<<"${GPU_SBATCH:-}"
read -ra cpu_sbatch <<<"${CPU_SBATCH:-}"

coordinator=$(sbatch --parsable "${coordinator_sbatch[@]}" "$here/coordinator.sbatch")
echo "coordinator=$coordinator"
after=()
[ "${AFTER_COORDINATOR:-0}" != 1 ] || after=(--dependency=after:"${coordinator%%;*}")
if [ "${NO_GPU:-0}" != 1 ]; then
  gpu=$(MODEL=${GPU_MODEL:-${MODEL:-/shared/models/Llama-3.1-70B-Instruct}} TP=${GPU_TP:-} \
    LAUNCHER=${GPU_LAUNCHER:-srun} sbatch --parsable "${after[@]}" "${gpu_sbatch[@]}" "$here/gpu-group.sbatch")
  echo "gpu=$gpu"
fi
if [ "${NO_CPU:-0}" != 1 ]; then
  cpu=$(MODEL=${CPU_MODEL:-${MODEL:-/shared/models/Llama-3.1-8B-Instruct}} TP=${CPU_TP:-1} \
    LAUNCHER=${CPU_LAUNCHER:-srun} sbatch --parsable "${after[@]}" "${cpu_sbatch[@]}" "$here/cpu-pool.sbatch")
  echo "cpu=$cpu"
fi
