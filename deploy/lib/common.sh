# shellcheck shell=bash
# Sourced by the deploy scripts (Slurm jobs, the mpirun launcher, the supervisor): small
# functions, no side effects. Every variable they read is listed in docs/deployment.md.

# A log line on stderr, stamped and tagged with $sw_tag (the script's name).
sw_log() { printf '%s %s: %s\n' "$(date '+%F %T')" "${sw_tag:-shardwise}" "$*" >&2; }
sw_die() {
  sw_log "error: $*"
  exit 2
}

# First IPv4 address of HOST (a name or an address).
sw_resolve() { getent ahostsv4 "$1" | awk '{ print $1; exit }'; }

# The address of this host that others should dial, in order of preference:
# $SHARDWISE_HOST_ADDRESS; the IPv4 address of interface $SHARDWISE_IFACE; the source address
# this host uses to reach PEER (so the coordinator can route back to it); the first address of
# `hostname -I`. Usage: sw_host_address [PEER]
sw_host_address() {
  local peer=${1:-} address=""
  if [ -n "${SHARDWISE_HOST_ADDRESS:-}" ]; then
    echo "$SHARDWISE_HOST_ADDRESS"
    return
  fi
  if [ -n "${SHARDWISE_IFACE:-}" ]; then
    address=$(ip -4 -o addr show dev "$SHARDWISE_IFACE" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
    [ -n "$address" ] || sw_die "SHARDWISE_IFACE=$SHARDWISE_IFACE has no IPv4 address on $(hostname)"
  elif [ -n "$peer" ] && command -v ip >/dev/null; then
    local peer_ip
    peer_ip=$(sw_resolve "$peer")
    [ -z "$peer_ip" ] || address=$(ip -4 route get "$peer_ip" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
  fi
  [ -n "$address" ] || address=$(hostname -I 2>/dev/null | awk '{ print $1 }')
  [ -n "$address" ] || address=$(hostname)
  echo "$address"
}

# A TCP port nobody listens on here now (the kernel's pick); a small race with other starters,
# which a failed bind reports loudly.
sw_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# Waits until FILE exists and holds a line KEY=VALUE, then prints VALUE.
# Usage: sw_wait_for_key FILE KEY TIMEOUT_S
sw_wait_for_key() {
  local file=$1 key=$2 timeout=$3 value="" waited=0
  while :; do
    [ -r "$file" ] && value=$(sed -n "s/^$key=//p" "$file" | tail -1)
    [ -n "$value" ] && break
    [ "$waited" -lt "$timeout" ] || sw_die "no $key in $file after ${timeout}s (is the coordinator job running?)"
    sleep 1
    waited=$((waited + 1))
  done
  echo "$value"
}

# Writes KEY=VALUE lines to FILE atomically (readers never see half a file).
# Usage: sw_write_keys FILE KEY=VALUE...
sw_write_keys() {
  local file=$1
  shift
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$@" >"$file.tmp.$$"
  mv -f "$file.tmp.$$" "$file"
}

# Succeeds once http://ADDRESS/PATH answers at all (any status), within TIMEOUT_S.
# Usage: sw_wait_http ADDRESS PATH TIMEOUT_S
sw_wait_http() {
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    curl -s -o /dev/null --max-time 2 "http://$1$2" && return 0
    sleep 0.5
  done
  return 1
}
