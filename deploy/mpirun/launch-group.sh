#!/usr/bin/env bash
# Launches shard groups across hosts with Open MPI's mpirun, outside Slurm: ranks fill the
# hostfile's slots in order (the first TP ranks form replica 0, whose leader runs on the first
# host), talk MPI over the networks given, and each leader registers with the coordinator at an
# address of its own host. Ends when the launch ends; deploy/lib/supervise.sh (or the systemd
# unit deploy/systemd/shardwise-supervised-group@.service) brings it back.
#
# Usage: launch-group.sh --hostfile FILE --tp N --model DIR --coordinator HOST:PORT [options]
#                        [-- more shardwise-shard options]
#   --np N           ranks in all (default TP: one replica); replicas = N / TP
#   --port P|auto    the leaders' gRPC port (default auto: one free on each leader's host)
#   --device D       cpu (default) or cuda
#   --networks LIST  interfaces or CIDR subnets for MPI and Open MPI's own traffic, e.g.
#                    "10.1.0.0/16" or "ib0"; an interface name also sets NCCL_SOCKET_IFNAME and
#                    the address each leader registers
#   --transport T    auto (default: UCX when there is InfiniBand/RoCE), ucx or tcp
#   --rsh-agent CMD  how mpirun starts its daemons on other hosts (default ssh)
#   --bin DIR        where shardwise-shard is on every host (default: beside this checkout)
#   --log-dir DIR    rank logs, NAME.rankR.log (default /tmp/shardwise-logs)
# The same paths (this script's checkout, --bin, the model) must exist on every host.
# SHARDWISE_CLUSTER_TOKEN_FILE (the cluster token, docs/security.md), NCCL_* and UCX_NET_DEVICES
# are passed to every rank; without a token the coordinator accepts only shards on its own host.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/mpirun-args.sh"
sw_tag=launch-group

hostfile="" tp="" model="" coordinator="" np="" port=auto device=cpu networks="" transport=auto
rsh_agent="" bin=$(cd "$here/../.." && pwd)/build/bin log_dir=/tmp/shardwise-logs
while [ $# -gt 0 ]; do
  case $1 in
    --hostfile) hostfile=$2; shift 2 ;;
    --tp) tp=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --coordinator) coordinator=$2; shift 2 ;;
    --np) np=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --networks) networks=$2; shift 2 ;;
    --transport) transport=$2; shift 2 ;;
    --rsh-agent) rsh_agent=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --log-dir) log_dir=$2; shift 2 ;;
    --) shift; break ;;
    *) sw_die "unknown option $1 (see the usage at the top of $0)" ;;
  esac
done
[ -n "$hostfile" ] && [ -n "$tp" ] && [ -n "$model" ] && [ -n "$coordinator" ] ||
  sw_die "--hostfile, --tp, --model and --coordinator are required"
[ -r "$hostfile" ] || sw_die "hostfile $hostfile: not readable"
np=${np:-$tp}

mpi=()
sw_mpirun_args mpi "$transport" "$networks"
[ -z "$rsh_agent" ] || mpi+=(--mca plm_rsh_agent "$rsh_agent")
rank=("$here/../lib/shard-rank.sh" --tp "$tp" --coordinator "$coordinator" --port "$port"
  --bin "$bin" --log-dir "$log_dir" --log-name "group-$(hostname)-launch${SHARDWISE_LAUNCH:-1}")
[ -z "${SHARDWISE_STATE_DIR:-}" ] || rank+=(--state-dir "$SHARDWISE_STATE_DIR")
if [ -n "$networks" ] && [[ $networks != */* && $networks != *,* ]]; then
  rank+=(--iface "$networks")
  export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-$networks}
fi
sw_mpirun_env mpi
sw_log "mpirun: $np ranks (tp $tp) from $hostfile, transport $transport, networks ${networks:-any}; logs $log_dir"
exec mpirun -np "$np" --hostfile "$hostfile" --map-by slot "${mpi[@]}" \
  "${rank[@]}" -- --model "$model" --device "$device" "$@"
