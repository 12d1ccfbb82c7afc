#!/usr/bin/env bash
# shardwise-loadgen against a real coordinator (TLS on both listeners, an API key) and one
# stories260K shard on loopback. Every run is checked by check_run.py: each request sent has
# a row, finished + errors = sent, the output tokens are the sum of the usage and equal the
# server's /metrics delta. Also: gRPC, /v1/completions (open loop) and /v1/chat/completions;
# the shared-prefix workload; a JSONL workload without streaming; a model the server does not
# serve and a wrong API key (every request an error with its code); bad flags (exit 2); and the
# shard killed mid-run (the requests it held fail, none is lost).
# Usage: loadgen_e2e_test.sh LOADGEN COORDINATOR SHARD
set -euo pipefail
loadgen=$1 coordinator=$2 shard=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
stories=$root/assets/models/stories260K
. "$root/tests/coordinator/loopback.sh"
fail() {
  echo "FAIL: $*"
  for log in "$work"/*.log; do echo "--- $log"; tail -20 "$log"; done
  exit 1
}
check() { "$python" "$here/check_run.py" "$@" || fail "check_run.py $*"; }

# stories260K with a chat template (it has none), so that /v1/chat/completions can serve it.
model=$work/stories260K
mkdir "$model"
for f in config.json generation_config.json model.safetensors tokenizer.json; do
  ln -s "$stories/$f" "$model/$f"
done
"$python" - "$stories/tokenizer_config.json" "$model/tokenizer_config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["chat_template"] = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
json.dump(config, open(sys.argv[2], "w"))
PY

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
read -r grpc_port http_port shard_port <<<"$(free_ports 3)"
key=loadgen-secret

"$coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" --api-key "$key" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --heartbeat-ms 200 --log-level warn \
  >"$work/coordinator.log" 2>&1 &
pids+=($!)
"$shard" --model "$model" --threads 1 --capacity 16 --coordinator "localhost:$grpc_port" \
  --coordinator-ca "$work/cert.pem" --listen "127.0.0.1:$shard_port" --log-level warn \
  >"$work/shard.log" 2>&1 &
shard_pid=$!
pids+=($shard_pid)
https() { curl -sS --max-time 10 --cacert "$work/cert.pem" "$@"; }
for _ in $(seq 150); do
  [ "$(https -o /dev/null -w "%{http_code}" "https://localhost:$http_port/health" 2>/dev/null)" = 200 ] && break
  sleep 0.1
done
[ "$(https -o /dev/null -w "%{http_code}" "https://localhost:$http_port/health")" = 200 ] ||
  fail "the shard did not register"

lg() {
  "$loadgen" --model "${served:-stories260K}" --grpc "localhost:$grpc_port" --http "https://localhost:$http_port" \
    --tls-ca "$work/cert.pem" --api-key "${api_key:-$key}" --progress off "$@"
}

# gRPC, closed loop, ranged prompt lengths, warm-up, an SLO.
lg --protocol grpc --concurrency 4 --requests 24 --warmup 2 --input-len 8-24 --output-len 8 \
  --slo ttft=10s,tpot=2s --out "$work/grpc.json" --csv "$work/runs.csv" --label grpc \
  >"$work/grpc.txt" || fail "gRPC run exited $?"
check "$work/grpc.json" --sent 24 --errors 0 --output-tokens 192 --agree --itl
grep -q "server output_tokens: 192 (shardwise_generation_tokens_total); loadgen: 192 (agree)" \
  "$work/grpc.txt" || fail "no server count beside the loadgen's: $(cat "$work/grpc.txt")"
grep -q "goodput" "$work/grpc.txt" || fail "no goodput in the summary"

# /v1/completions, streamed, open loop (Poisson at 30 requests/s).
lg --protocol completions --rate 30 --requests 16 --input-len 12 --output-len 6 \
  --out "$work/completions.json" --csv "$work/runs.csv" --label completions >/dev/null ||
  fail "completions run exited $?"
check "$work/completions.json" --sent 16 --errors 0 --output-tokens 96 --agree --itl
# /v1/chat/completions: prompts are words, their token counts come back in the usage.
lg --protocol chat --concurrency 2 --requests 6 --input-len 5 --output-len 5 \
  --out "$work/chat.json" --csv "$work/runs.csv" --label chat >/dev/null || fail "chat run exited $?"
check "$work/chat.json" --sent 6 --errors 0 --output-tokens 30 --agree --min-input-tokens 5 --itl

# The shared-prefix workload: 2 system prompts x 3 questions, cycled.
lg --protocol grpc --workload shared-prefix --num-prefixes 2 --questions-per-prefix 3 \
  --prefix-len 32 --input-len 8 --output-len 4 --concurrency 3 --requests 12 \
  --out "$work/prefix.json" >/dev/null || fail "shared-prefix run exited $?"
check "$work/prefix.json" --sent 12 --errors 0 --output-tokens 48 --agree --min-input-tokens 40

# A JSONL workload, not streamed (one body per request).
printf '%s\n' '{"prompt": "Once upon a time"}' '{"prompt": [1, 403, 407], "max_tokens": 2}' \
  >"$work/prompts.jsonl"
lg --protocol completions --workload jsonl --jsonl "$work/prompts.jsonl" --requests 4 \
  --output-len 3 --no-stream --out "$work/jsonl.json" >/dev/null || fail "JSONL run exited $?"
check "$work/jsonl.json" --sent 4 --errors 0 --output-tokens 10 --agree

# Rejections are errors with their codes, never lost.
served=not-a-model lg --protocol grpc --concurrency 2 --requests 5 --out "$work/bad-grpc.json" \
  >/dev/null || fail "bad-model gRPC run exited $?"
check "$work/bad-grpc.json" --sent 5 --errors 5 --error-code NOT_FOUND --output-tokens 0 --agree
served=not-a-model lg --protocol completions --concurrency 2 --requests 5 \
  --out "$work/bad-http.json" >/dev/null || fail "bad-model HTTP run exited $?"
check "$work/bad-http.json" --sent 5 --errors 5 --error-code NOT_FOUND
api_key=wrong-key lg --protocol grpc --requests 3 --out "$work/bad-key.json" >/dev/null ||
  fail "wrong-key run exited $?"
check "$work/bad-key.json" --sent 3 --errors 3 --error-code UNAUTHENTICATED

[ "$(wc -l <"$work/runs.csv")" = 4 ] || fail "runs.csv: expected a header and 3 lines"
head -1 "$work/runs.csv" | grep -q "^label,protocol,model," || fail "runs.csv has no header"
grep -q "^completions,completions,stories260K," "$work/runs.csv" || fail "runs.csv: no completions line"

# Bad flags: exit 2 with a message, nothing sent.
for flags in "--requests 1 --rate -1" "--requests 1 --input-len 0" "--requests 1 --protocol bogus" \
  "--requests 0" "--requests 1 --slo ttft=fast" "--requests 1 --bogus-flag" \
  "--requests 1 --workload jsonl --jsonl $work/missing.jsonl"; do
  status=0
  # shellcheck disable=SC2086
  lg $flags >"$work/flags.out" 2>&1 || status=$?
  [ $status -eq 2 ] || fail "flags '$flags': exit $status, expected 2: $(cat "$work/flags.out")"
done

# The shard dies mid-run: the requests it held fail, later ones fail fast, none is lost.
lg --protocol grpc --concurrency 4 --requests 40 --duration 60 --input-len 8 --output-len 400 \
  --metrics none --out "$work/killed.json" >/dev/null &
loadgen_pid=$!
sleep 1.5
kill -KILL "$shard_pid"
status=0
timeout 120 tail --pid="$loadgen_pid" -f /dev/null || fail "loadgen still running after the kill"
wait "$loadgen_pid" || status=$?
[ $status -eq 0 ] || fail "killed-shard run exited $status"
check "$work/killed.json" --sent 40 --min-errors 4 --error-code UNAVAILABLE
echo "PASS"
