#!/usr/bin/env bash
# The cluster's trust rules with real processes (issue 15): a coordinator with a cluster token
# and its Registry on a port of its own, a shard leader with the token, strangers and a fake
# shard (cluster_trust_client.py, phase "trust"); then the coordinator is killed and restarted
# while the shard is stopped, and requests must get 503 / UNAVAILABLE with a retry hint, never
# 404, until the shard registers again (phase "restart").
# Usage: cluster_trust_test.sh COORDINATOR SHARD PROTO_DIR TESTDATA_DIR
set -euo pipefail
coordinator=$1 shard=$2 proto_dir=$3 testdata=$4
here=$(cd "$(dirname "$0")" && pwd)
model=$(cd "$here/../.." && pwd)/assets/models/stories260K
. "$here/loopback.sh"
fail() {
  echo "FAIL: $*"
  for log in "$work"/*.log; do echo "--- $log"; tail -20 "$log"; done
  exit 1
}
flood_tokenizer=$testdata/llama2-tokenizer/tokenizer.json.gz
[ -f "$flood_tokenizer" ] || fail "missing $flood_tokenizer (the shared test data)"

python_stubs "$proto_dir"
read -r grpc_port http_port registry_port shard_port fake_port <<<"$(free_ports 5)"
token=$("$python" -c "import secrets; print(secrets.token_hex(24))")
(umask 077 && echo "$token" >"$work/cluster.token")
window_s=5
start_coordinator() {
  "$coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" \
    --registry "127.0.0.1:$registry_port" --cluster-token-file "$work/cluster.token" \
    --heartbeat-ms 300 --replica-grace 2 --registration-window-ms $((window_s * 1000)) \
    >>"$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  pids+=($coordinator_pid)
}
start_coordinator
"$shard" --model "$model" --threads 1 --coordinator "127.0.0.1:$registry_port" \
  --listen "127.0.0.1:$shard_port" --cluster-token-file "$work/cluster.token" \
  >"$work/shard.log" 2>&1 &
shard_pid=$!
pids+=($shard_pid)

client=("$python" "$here/cluster_trust_client.py" --grpc "127.0.0.1:$grpc_port"
  --http "127.0.0.1:$http_port")
PYTHONPATH="$work" timeout 180 "${client[@]}" --phase trust --registry "127.0.0.1:$registry_port" \
  --shard-address "127.0.0.1:$shard_port" --token "$token" --model-dir "$model" \
  --flood-tokenizer "$flood_tokenizer" --fake-port "$fake_port" \
  --coordinator-pid "$coordinator_pid" || fail "trust phase"

# A coordinator restart while the shard cannot re-register yet.
kill -STOP "$shard_pid"
kill -KILL "$coordinator_pid"
wait "$coordinator_pid" 2>/dev/null || true
start_coordinator
PYTHONPATH="$work" timeout 60 "${client[@]}" --phase restart --shard-pid "$shard_pid" \
  --window-s $window_s || { kill -CONT "$shard_pid"; fail "restart phase"; }
echo "PASS"
