# Sourced by the scripts that run real coordinator and shard processes on loopback. Gives:
#   $work      a folder removed on exit
#   pids       background processes to stop on exit (pids+=($!)): SIGTERM, up to 5 s to drain
#              and exit, then SIGKILL; every wait bounded
#   $python    the system interpreter, which has Debian's python3-grpcio
#   free_ports N          prints N free TCP ports on loopback
#   python_stubs PROTO    generates the Python modules of the project's protos into $work
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
