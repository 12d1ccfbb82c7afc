#!/usr/bin/env bash
# Real separate hosts: three network namespaces on a bridge, each with its own IP and hostname.
# host-a and host-b run one TP=2 group started by deploy/mpirun/launch-group.sh (mpirun on
# host-a, its daemon reaching host-b through an `ip netns exec` rsh agent, MPI over TCP between
# them) under deploy/lib/supervise.sh; host-c runs the coordinator. Checked with a real client
# (deploy_client.py): the leader registers host-a's address, completions equal `shardwise
# generate`; then host-a's cable is cut during streams: the coordinator takes the replica out of
# rotation within its heartbeat window, the streams end UNAVAILABLE naming it, new requests are
# refused clearly, the collective timeout ends the group with a log line naming the stalled
# operation; once the cable is back the supervisor's relaunch registers again and serves.
# Namespaces, bridge and every process in them are removed on exit.
# Usage: netns_hosts_test.sh COORDINATOR SHARD CLI PROTO_DIR
set -euo pipefail
coordinator=$1 shard=$2 cli=$3 proto_dir=$4
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
model=$repo/assets/models/stories260K
. "$here/../coordinator/loopback.sh"

tag=sw$$
probe=${tag}probe
if ! ip netns add "$probe" 2>/dev/null; then
  echo "SKIP: this machine forbids network namespaces (ip netns add needs CAP_NET_ADMIN)"
  exit 0
fi
ip netns del "$probe"
unshare --uts true 2>/dev/null || { echo "SKIP: unshare --uts is forbidden here"; exit 0; }
python_stubs "$proto_dir"

namespaces=("${tag}a" "${tag}b" "${tag}c")
bridge=${tag}br
net_cleanup() {
  local ns pid
  for ns in "${namespaces[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  for ns in "${namespaces[@]}"; do
    ip link del "veth-$ns" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
}
show_logs() {
  for log in "$work"/*.log "$work"/logs/*; do echo "--- $log"; tail -25 "$log"; done
}
trap 'status=$?; [ $status -eq 0 ] || show_logs; loopback_cleanup; net_cleanup; exit $status' EXIT

# A /24 no interface here uses yet.
for _ in $(seq 20); do
  net=10.$((RANDOM % 200 + 20)).$((RANDOM % 250))
  ip -4 addr | grep -q " $net\." || break
done
ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
i=2
for ns in "${namespaces[@]}"; do
  ip netns add "$ns"
  ip link add "veth-$ns" type veth peer name eth0 netns "$ns"
  ip link set "veth-$ns" master "$bridge" up
  ip -n "$ns" addr add "$net.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  i=$((i + 1))
done
host_a=$net.2 host_b=$net.3 host_c=$net.4
# Runs a command on a "host": in its network namespace, under its own hostname.
on_host() {
  local ns=$1 name=$2
  shift 2
  ip netns exec "$ns" unshare --uts sh -c 'hostname "$0"; exec "$@"' "$name" "$@"
}
# mpirun's rsh agent: called as AGENT HOST COMMAND..., like ssh.
agent=$work/netns-rsh
cat >"$agent" <<EOF
#!/bin/sh
case \$1 in
  $host_a) ns=${namespaces[0]} name=host-a ;;
  $host_b) ns=${namespaces[1]} name=host-b ;;
  *) echo "netns-rsh: unknown host \$1" >&2; exit 255 ;;
esac
shift
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$name; \$*"
EOF
chmod +x "$agent"
printf '%s slots=1\n%s slots=1\n' "$host_a" "$host_b" >"$work/hostfile"

# The coordinator and the leader are on different hosts: they need the cluster token
# (docs/security.md), which launch-group.sh passes on to every rank.
export SHARDWISE_CLUSTER_TOKEN_FILE=$work/cluster-token
(umask 077 && openssl rand -hex 24 >"$SHARDWISE_CLUSTER_TOKEN_FILE")

grpc_port=50051 http_port=8000
on_host "${namespaces[2]}" host-c "$coordinator" --grpc "$host_c:$grpc_port" --http "$host_c:$http_port" \
  --heartbeat-ms 500 --missed-heartbeats 4 --models stories260K >"$work/coordinator.log" 2>&1 &
pids+=($!)
on_host "${namespaces[0]}" host-a "$repo/deploy/lib/supervise.sh" --backoff-min 1 --backoff-max 2 \
  --drain-timeout 5 --orphan-grace 3 --remote-shell "$agent" --state-dir "$work/state" -- \
  "$repo/deploy/mpirun/launch-group.sh" --hostfile "$work/hostfile" --tp 2 --np 2 --model "$model" \
  --coordinator "$host_c:$grpc_port" --networks "$net.0/24" --transport tcp --rsh-agent "$agent" \
  --bin "$(dirname "$shard")" --log-dir "$work/logs" -- --threads 1 --collective-timeout 5 \
  >"$work/supervisor.log" 2>&1 &
pids+=($!)

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
client() { PYTHONPATH="$work" "$python" "$here/deploy_client.py" --grpc "$host_c:$grpc_port" --http "$host_c:$http_port" "$@"; }
client --timeout 90 wait-live 1
address=$(curl -s "http://$host_c:$http_port/health" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["replicas"][0]["address"])')
[[ $address == "$host_a":* ]] || { echo "FAIL: the leader registered $address, not an address of host-a ($host_a)"; exit 1; }
echo "ok: the leader on host-a registered $address"
grep -q "follows in replica 0" "$work"/logs/group-host-a-launch1.rank1.log &&
  grep -q "on host-b" "$work"/logs/group-host-a-launch1.rank1.log ||
  { echo "FAIL: rank 1 did not run on host-b"; exit 1; }
client matches-cli --cli "$cli" --model-dir "$model" --prompts 2

# Cut host-a's cable while streams run.
# The coordinator's window: 4 missed heartbeats of 500 ms; 1 s more for its 100 ms sweep and
# the heartbeat that was on its way when the cable went.
client --timeout 30 streams --count 4 --max-tokens 400 --expect cut --gone "$address" --gone-within 3 \
  --then "ip link set veth-${namespaces[0]} down && date +%s.%N >$work/cut-at" | tee "$work/cut.txt"
cut=$(cat "$work/cut-at")
client no-replica
for _ in $(seq 100); do
  grep -qh "did not finish within 5.0 s" "$work"/logs/group-host-a-launch1.rank*.log 2>/dev/null && break
  sleep 0.1
done
grep -h "did not finish within" "$work"/logs/group-host-a-launch1.rank*.log ||
  { echo "FAIL: no rank logged the collective that timed out"; exit 1; }
for _ in $(seq 300); do grep -q "launch 1 exited" "$work/supervisor.log" && break; sleep 0.1; done
grep "launch 1 exited" "$work/supervisor.log" || { echo "FAIL: the group did not end after the cut"; exit 1; }

ip link set "veth-${namespaces[0]}" up
back=$(date +%s.%N)
client --timeout 90 wait-live 1
echo "cable cut -> replica out of rotation: $(sed -n 's/.* gone after \([0-9.]*\) s/\1/p' "$work/cut.txt") s;" \
  "cable back (after $(awk -v a="$cut" -v b="$back" 'BEGIN { printf "%.1f", b - a }') s) -> replica in rotation: $(since "$back") s"
client matches-cli --cli "$cli" --model-dir "$model" --prompts 1
grep "launch" "$work/supervisor.log"
echo "PASS"
