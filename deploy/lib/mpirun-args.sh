# shellcheck shell=bash
# Sourced: the mpirun (Open MPI 4.1) options a real cluster needs, shared by deploy/mpirun/ and
# the Slurm jobs' mpirun-in-the-allocation variant.

# The transport Open MPI should use between ranks: "ucx" when this Open MPI has the UCX PML and
# UCX sees a device beyond TCP and shared memory (InfiniBand/RoCE: rc, dc, ud), else "tcp".
sw_mpi_transport_auto() {
  if ompi_info --parsable 2>/dev/null | grep -q '^mca:pml:ucx:' &&
    command -v ucx_info >/dev/null && ucx_info -d 2>/dev/null | grep -qE 'Transport: (rc|dc|ud)'; then
    echo ucx
  else
    echo tcp
  fi
}

# Fills the array named by the first argument with mpirun options.
# Usage: sw_mpirun_args ARRAY TRANSPORT NETWORKS
#   TRANSPORT  auto, ucx or tcp
#   NETWORKS   interfaces or CIDR subnets (comma-separated) for MPI traffic and Open MPI's own
#              out-of-band channel, e.g. "ib0" or "10.1.0.0/16"; empty: Open MPI picks (it may
#              pick a docker bridge or a management network that other hosts cannot reach)
sw_mpirun_args() {
  local -n out=$1
  local transport=$2 networks=$3
  [ "$transport" != auto ] || transport=$(sw_mpi_transport_auto)
  out=(--bind-to none)
  [ "$(id -u)" -ne 0 ] || out+=(--allow-run-as-root)
  case $transport in
    ucx) out+=(--mca pml ucx --mca btl "^vader,tcp,openib,uct") ;;
    tcp)
      out+=(--mca pml ob1 --mca btl "self,vader,tcp")
      [ -z "$networks" ] || out+=(--mca btl_tcp_if_include "$networks")
      ;;
    *) sw_die "MPI transport '$transport': expected auto, ucx or tcp" ;;
  esac
  [ -z "$networks" ] || out+=(--mca oob_tcp_if_include "$networks")
  # A host that vanishes (cable, power) is noticed by mpirun in ~16 s instead of ~8 min, so the
  # launch ends and the supervisor can bring the group back.
  out+=(--mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 2
    --mca oob_tcp_keepalive_probes 3)
}

# Appends to the array named by the first argument an "-x NAME" for each variable every rank
# needs from this environment and that is set here: mpirun passes no environment to the ranks on
# other hosts by itself.
sw_mpirun_env() {
  local -n out=$1
  local name
  for name in SHARDWISE_CLUSTER_TOKEN_FILE NCCL_SOCKET_IFNAME NCCL_DEBUG NCCL_IB_HCA \
    NCCL_IB_TIMEOUT UCX_NET_DEVICES; do
    [ -z "${!name:-}" ] || out+=(-x "$name")
  done
}
