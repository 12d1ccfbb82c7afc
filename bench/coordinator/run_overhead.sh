#!/usr/bin/env bash
# Runs overhead.py against a coordinator and one TP=1 stories260K shard started here on
# loopback (tests/coordinator/loopback.sh), with stubs generated from the project's proto, and
# stops both afterwards.
# Usage: bench/coordinator/run_overhead.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
. "$root/tests/coordinator/loopback.sh"
python_stubs "$root/proto"
read -r grpc_port http_port shard_port <<<"$(free_ports 3)"

"$build/bin/shardwise-coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" \
  --log-level warn >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
pids+=($coordinator_pid)
"$build/bin/shardwise-shard" --model "$root/assets/models/stories260K" --tp 1 --device cpu \
  --threads 1 --capacity 256 --coordinator "127.0.0.1:$grpc_port" \
  --listen "127.0.0.1:$shard_port" --log-level warn >"$work/shard.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http_port/health" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$http_port/health" >/dev/null ||
  { echo "the shard did not register"; cat "$work"/*.log; exit 1; }
PYTHONPATH="$work" "$python" "$root/bench/coordinator/overhead.py" \
  "127.0.0.1:$grpc_port" "127.0.0.1:$shard_port" "$coordinator_pid"
