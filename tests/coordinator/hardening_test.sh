#!/usr/bin/env bash
# The coordinator alone on loopback, probed as issue 15's hostile operator did (by
# hardening_client.py over real gRPC and HTTP connections): registrations whose chat template
# nests thousands deep, undecodable protobuf, integers past int32, empty prompts, oversized and
# chunked bodies, too many headers, and 70 slowloris connections. Each must get its error while
# the coordinator lives and /health keeps answering.
# Usage: hardening_test.sh COORDINATOR PROTO_DIR
set -euo pipefail
coordinator=$1 proto_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
model=$(cd "$here/../.." && pwd)/assets/models/stories260K
. "$here/loopback.sh"

"$python" -c "import grpc, google.protobuf" 2>/dev/null ||
  { echo "SKIP: python3-grpcio / python3-protobuf are not installed"; exit 0; }
python_stubs "$proto_dir"
read -r grpc_port http_port _ <<<"$(free_ports 2)"
header_timeout_ms=4000

# Heartbeats a minute apart: the replicas registered here (never dialled) stay live throughout.
"$coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" --heartbeat-ms 60000 \
  --http-header-timeout-ms "$header_timeout_ms" --log-level warn >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
pids+=($coordinator_pid)
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$http_port/health" && break
  sleep 0.1
done

status=0
PYTHONPATH="$work" timeout 240 "$python" "$here/hardening_client.py" --grpc "127.0.0.1:$grpc_port" \
  --http "127.0.0.1:$http_port" --model-dir "$model" \
  --header-timeout "$((header_timeout_ms / 1000))" || status=$?
if ! kill -0 "$coordinator_pid" 2>/dev/null; then
  echo "FAIL: the coordinator died"
  status=1
fi
if [ $status -ne 0 ]; then
  echo "--- coordinator.log"
  tail -30 "$work/coordinator.log"
  exit $status
fi
echo "PASS"
