#!/usr/bin/env bash
# End to end on loopback: a coordinator, one TP=2 shard group and one pool of two TP=1 shard
# processes (both under mpirun, both serving stories260K), driven by e2e_client.py over gRPC
# (stubs generated here from the project's proto) and HTTP. The client ends by killing the TP=2
# group mid-stream. Every process is killed on exit; every wait is bounded.
# Usage: e2e_test.sh COORDINATOR SHARD CLI PROTO_DIR MPIRUN...
set -euo pipefail
coordinator=$1 shard=$2 cli=$3 proto_dir=$4
shift 4
mpirun=("$@")
here=$(cd "$(dirname "$0")" && pwd)
model=$(cd "$here/../.." && pwd)/assets/models/stories260K
. "$here/loopback.sh"

"$python" -c "import grpc, google.protobuf" 2>/dev/null ||
  { echo "SKIP: python3-grpcio / python3-protobuf are not installed"; exit 0; }
python_stubs "$proto_dir"
read -r grpc_port http_port group_port pool_port _ <<<"$(free_ports 5)"
key=e2e-secret

"$coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" --api-key "$key" \
  --heartbeat-ms 200 --log-level warn >"$work/coordinator.log" 2>&1 &
pids+=($!)
"${mpirun[@]}" -np 2 "$shard" --model "$model" --tp 2 --device cpu --threads 1 \
  --coordinator "127.0.0.1:$grpc_port" --listen "127.0.0.1:$group_port" --log-level warn \
  >"$work/group.log" 2>&1 &
group_pid=$!
pids+=($group_pid)
# The pool: two replicas of TP 1 in one mpirun job, listening on pool_port and pool_port + 1.
"${mpirun[@]}" -np 2 "$shard" --model "$model" --tp 1 --device cpu --threads 1 \
  --coordinator "127.0.0.1:$grpc_port" --listen "127.0.0.1:$pool_port" --log-level warn \
  >"$work/pool.log" 2>&1 &
pids+=($!)

status=0
PYTHONPATH="$work" timeout 240 "$python" "$here/e2e_client.py" --grpc "127.0.0.1:$grpc_port" \
  --http "127.0.0.1:$http_port" --api-key "$key" --cli "$cli" --model-dir "$model" \
  --group-pid "$group_pid" --replicas 3 || status=$?
if [ $status -ne 0 ]; then
  for log in coordinator group pool; do echo "--- $log.log"; tail -30 "$work/$log.log"; done
  exit $status
fi
# Graceful shutdown: SIGTERM makes the coordinator exit 0 promptly.
coordinator_pid=${pids[0]}
kill -TERM "$coordinator_pid"
for _ in $(seq 100); do kill -0 "$coordinator_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$coordinator_pid" 2>/dev/null; then echo "FAIL: coordinator ignored SIGTERM"; exit 1; fi
wait "$coordinator_pid" || { echo "FAIL: coordinator exited $?"; exit 1; }
echo "PASS"
