# Sourced by the scripts that run real coordinator and shard processes on loopback. Gives:
#   $work      a folder removed on exit
#   pids       background processes to stop on exit (pids+=($!)): SIGTERM, up to 5 s to drain
#              and exit, then SIGKILL; every wait bounded
#   $python    the system interpreter, which has Debian's python3-grpcio
#   free_ports N          prints N free TCP ports on loopback
#   python_stubs PROTO    generates the Python modules of the project's protos into $work
#   start_stories_deployment BIN_DIR [COORDINATOR FLAGS...]
#                         a coordinator and one TP=1 stories260K shard (--threads 1
#                         --capacity 256) on free ports, waited for; sets grpc_port, http_port,
#                         shard_port and coordinator_pid (for the benchmarks in bench/)
work=$(mktemp -d)
pids=()
loopback_cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap loopback_cleanup EXIT

python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)

free_ports() {
  "$python" -c "
import socket
socks = [socket.socket() for _ in range($1)]
for s in socks: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))"
}

python_stubs() {
  protoc --proto_path="$1" --python_out="$work" --grpc_out="$work" \
    --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
    "$1/shardwise/v1/inference.proto" "$1/shardwise/v1/shard.proto"
}

start_stories_deployment() {
  local bin=$1
  shift
  read -r grpc_port http_port shard_port <<<"$(free_ports 3)"
  "$bin/shardwise-coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" \
    --log-level warn "$@" >"$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  pids+=($coordinator_pid)
  # OMP_NUM_THREADS too: --threads is applied on the shard's main thread, not on its engine's.
  OMP_NUM_THREADS=1 "$bin/shardwise-shard" \
    --model "$(dirname "${BASH_SOURCE[0]}")/../../assets/models/stories260K" \
    --tp 1 --device cpu --threads 1 --capacity 256 --coordinator "127.0.0.1:$grpc_port" \
    --listen "127.0.0.1:$shard_port" --log-level warn >"$work/shard.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$http_port/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "the shard did not register"
  cat "$work"/*.log
  exit 1
}
