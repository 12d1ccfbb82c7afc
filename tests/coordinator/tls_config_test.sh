#!/usr/bin/env bash
# The coordinator configured from a YAML --config file, serving TLS on both listeners, with a
# shard that reaches it through --coordinator-ca and deregisters when it shuts down:
#   - --print-config writes a file that --config reads back to the same options; an unknown
#     key and an unreadable certificate are refused with a message;
#   - /health is 503 until the configured model has a live replica, then 200;
#   - HTTPS and gRPC over TLS serve a completion; plain HTTP and plain gRPC are refused;
#   - /metrics has the queue depth; SIGTERM to the shard takes it out of rotation at once
#     (heartbeats are 5 s apart, so only its deregistration explains it).
# Usage: tls_config_test.sh COORDINATOR SHARD PROTO_DIR
set -euo pipefail
coordinator=$1 shard=$2 proto_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
model=$(cd "$here/../.." && pwd)/assets/models/stories260K
. "$here/loopback.sh"
fail() {
  echo "FAIL: $*"
  for log in "$work"/*.log; do echo "--- $log"; tail -20 "$log"; done
  exit 1
}

command -v openssl >/dev/null || { echo "SKIP: openssl is not installed"; exit 0; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
read -r grpc_port http_port shard_port <<<"$(free_ports 3)"

cat >"$work/coordinator.yaml" <<EOF
# A coordinator for one model, over TLS, with an API key.
grpc: 127.0.0.1:$grpc_port
http: 127.0.0.1:$http_port
api_key: tls-secret
tls:
  cert: $work/cert.pem
  key: $work/key.pem
models: [stories260K]
heartbeat_ms: 5000
log_level: info
EOF

# --print-config round trip.
"$coordinator" --config "$work/coordinator.yaml" --print-config >"$work/printed.yaml"
"$coordinator" --config "$work/printed.yaml" --print-config >"$work/reprinted.yaml"
cmp -s "$work/printed.yaml" "$work/reprinted.yaml" || fail "--print-config does not round-trip"
grep -q "^tls-cert: $work/cert.pem" "$work/printed.yaml" || fail "tls cert missing from config"
# A command-line flag overrides the file.
"$coordinator" --config "$work/coordinator.yaml" --heartbeat-ms 700 --print-config |
  grep -q "^heartbeat-ms: 700$" || fail "the command line does not override the config file"
# An unknown key is refused, naming it.
printf 'grpc: 127.0.0.1:1\nbogus_key: 1\n' >"$work/bad.yaml"
if "$coordinator" --config "$work/bad.yaml" >"$work/bad.out" 2>&1; then
  fail "unknown config key accepted"
fi
grep -q "bogus-key" "$work/bad.out" || fail "unknown key not named: $(cat "$work/bad.out")"
# A certificate that is not PEM: a runtime failure (exit 1) with a TLS message, not a crash.
echo "not a certificate" >"$work/junk.pem"
status=0
"$coordinator" --config "$work/coordinator.yaml" --tls-cert "$work/junk.pem" \
  >"$work/junk.log" 2>&1 || status=$?
[ $status -eq 1 ] || fail "junk certificate: exit $status, expected 1"
grep -qi "tls\|listen" "$work/junk.log" || fail "junk certificate: no message"

"$coordinator" --config "$work/coordinator.yaml" >"$work/coordinator.log" 2>&1 &
pids+=($!)
https() { curl -sS --max-time 10 --cacert "$work/cert.pem" "$@"; }
for _ in $(seq 100); do
  https -o /dev/null "https://127.0.0.1:$http_port/health" 2>/dev/null && break
  sleep 0.1
done
code=$(https -o /dev/null -w "%{http_code}" "https://127.0.0.1:$http_port/health")
[ "$code" = 503 ] || fail "/health before the configured model registered: $code, expected 503"
if curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$http_port/health" 2>/dev/null; then
  fail "plain HTTP accepted on the TLS listener"
fi

"$shard" --model "$model" --threads 1 --coordinator "127.0.0.1:$grpc_port" \
  --coordinator-ca "$work/cert.pem" --listen "127.0.0.1:$shard_port" >"$work/shard.log" 2>&1 &
shard_pid=$!
pids+=($shard_pid)
for _ in $(seq 150); do
  [ "$(https -o /dev/null -w "%{http_code}" "https://localhost:$http_port/health")" = 200 ] && break
  sleep 0.1
done
[ "$(https -o /dev/null -w "%{http_code}" "https://localhost:$http_port/health")" = 200 ] ||
  fail "/health not 200 after the shard registered over TLS"

body=$(https -H "Authorization: Bearer tls-secret" "https://localhost:$http_port/v1/completions" \
  -d '{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 4}')
echo "$body" | grep -q '"completion_tokens":4' || fail "HTTPS completion: $body"

python_stubs "$proto_dir"
PYTHONPATH="$work" timeout 60 "$python" - "$grpc_port" "$work/cert.pem" <<'EOF' ||
import sys
import grpc
from shardwise.v1 import inference_pb2 as pb, inference_pb2_grpc as pbg
port, ca = sys.argv[1], open(sys.argv[2], "rb").read()
request = pb.GenerateRequest(model="stories260K", token_ids=pb.TokenIds(ids=[1, 403]),
                             sampling=pb.SamplingParams(temperature=0, max_tokens=3))
auth = [("authorization", "Bearer tls-secret")]
tls = pbg.InferenceStub(grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(ca)))
tokens = [t for m in tls.Generate(request, metadata=auth, timeout=20) for t in m.token_ids]
assert len(tokens) == 3, tokens
plain = pbg.InferenceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
try:
    list(plain.Generate(request, metadata=auth, timeout=5))
    sys.exit("plain gRPC accepted on the TLS listener")
except grpc.RpcError as e:
    assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL), e.code()
print("gRPC over TLS: OK")
EOF
  fail "gRPC over TLS"

https "https://localhost:$http_port/metrics" | grep -q '^shardwise_queue_depth{model="stories260K"} 0$' ||
  fail "no shardwise_queue_depth in /metrics"

kill -TERM "$shard_pid"
for _ in $(seq 30); do  # 3 s: well inside the 15 s a missed-heartbeat expiry would take
  [ "$(https -o /dev/null -w "%{http_code}" "https://localhost:$http_port/health")" = 503 ] && break
  sleep 0.1
done
[ "$(https -o /dev/null -w "%{http_code}" "https://localhost:$http_port/health")" = 503 ] ||
  fail "/health still 200 after the shard shut down"
grep -q "deregistered" "$work/coordinator.log" || fail "no deregistration in the coordinator log"
wait "$shard_pid" || fail "shard exited $? on SIGTERM"
echo "PASS"
