# shellcheck shell=bash
# Sourced by slurm_cluster_test.sh: a real one-node Slurm cluster in a folder of its own (nothing
# in /etc): munged with its own key and socket, slurmctld and slurmd from Debian's slurm-wlm,
# this machine as controller and only node, 2 CPUs shared by up to 4 jobs each, and 2 "GPUs":
# Slurm GRES backed by character devices that are /dev/null, so that --gpus-per-task and the
# CUDA_VISIBLE_DEVICES Slurm gives each task are real while the ranks run on the CPU.
# Gives:
#   start_slurm_cluster DIR   writes DIR/slurm.conf, starts the daemons, exports SLURM_CONF,
#                             returns once the node is idle
#   stop_slurm_cluster        cancels every job, waits for their processes, stops the daemons
#                             (safe to call when start failed half-way, and twice)

slurm_daemon_pids=()
slurm_dir=""

slurm_conf() {
  local ctld_port slurmd_port
  read -r ctld_port slurmd_port <<<"$(free_ports 2)"
  cat <<EOF
ClusterName=shardwise-test
GresTypes=gpu
SlurmctldHost=$(hostname)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$slurm_dir/munge/socket
StateSaveLocation=$slurm_dir/state
SlurmdSpoolDir=$slurm_dir/spool
SlurmctldPidFile=$slurm_dir/slurmctld.pid
SlurmdPidFile=$slurm_dir/slurmd.pid
SlurmctldLogFile=$slurm_dir/slurmctld.log
SlurmdLogFile=$slurm_dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
# A released job (scontrol update StartTime=now) waits for the next backfill pass: 2 s, not 30.
SchedulerParameters=bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# Time a job's processes have between SIGTERM and SIGKILL: the shard leaders drain in it.
KillWait=30
MinJobAge=10
NodeName=$(hostname) NodeAddr=127.0.0.1 CPUs=2 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$(hostname) Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
}

start_slurm_cluster() {
  slurm_dir=$1
  mkdir -p "$slurm_dir"/{munge,state,spool}
  chmod 700 "$slurm_dir/munge"
  head -c 1024 /dev/urandom >"$slurm_dir/munge/munge.key"
  chmod 600 "$slurm_dir/munge/munge.key"
  # --force: munged refuses a key and socket outside its own folders unless told.
  munged --force --foreground --socket="$slurm_dir/munge/socket" \
    --key-file="$slurm_dir/munge/munge.key" --log-file="$slurm_dir/munge/munged.log" \
    --pid-file="$slurm_dir/munge/munged.pid" --seed-file="$slurm_dir/munge/seed" \
    >"$slurm_dir/munge/munged.out" 2>&1 &
  slurm_daemon_pids+=($!)
  slurm_conf >"$slurm_dir/slurm.conf"
  mknod "$slurm_dir/fake-gpu0" c 1 3
  mknod "$slurm_dir/fake-gpu1" c 1 3
  echo "NodeName=$(hostname) Name=gpu File=$slurm_dir/fake-gpu[0-1]" >"$slurm_dir/gres.conf"
  export SLURM_CONF=$slurm_dir/slurm.conf
  for _ in $(seq 50); do [ -S "$slurm_dir/munge/socket" ] && break; sleep 0.1; done
  slurmctld -D -f "$SLURM_CONF" >"$slurm_dir/slurmctld.out" 2>&1 &
  slurm_daemon_pids+=($!)
  slurmd -D -f "$SLURM_CONF" >"$slurm_dir/slurmd.out" 2>&1 &
  slurm_daemon_pids+=($!)
  for _ in $(seq 150); do
    [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && return 0
    sleep 0.2
  done
  echo "FAIL: the one-node Slurm cluster did not come up in 30 s"
  tail -20 "$slurm_dir"/slurmctld.log "$slurm_dir"/slurmd.log "$slurm_dir"/munge/munged.log 2>/dev/null
  return 1
}

stop_slurm_cluster() {
  [ -n "$slurm_dir" ] || return 0
  if [ -n "${SLURM_CONF:-}" ] && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    scancel --full --signal=KILL --user="$(id -un)" 2>/dev/null || true
    scancel --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 100); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  local pid
  for pid in "${slurm_daemon_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${slurm_daemon_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1 || true; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${slurm_daemon_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  slurm_daemon_pids=()
  slurm_dir=""
}
