#!/usr/bin/env bash
# The official `openai` npm client against a coordinator and one TP=1 CPU shard of the default
# model (with its chat template) on loopback. The client is installed into NPM_DIR by
# scripts/install-deps.sh (this script installs it there too when it is missing); it skips
# only when node/npm are absent.
# Usage: openai_npm_test.sh COORDINATOR SHARD CLI NPM_DIR MPIRUN...
set -euo pipefail
coordinator=$1 shard=$2 cli=$3 npm_dir=$4
shift 4
mpirun=("$@")
command -v npm >/dev/null && command -v node >/dev/null ||
  { echo "SKIP: npm/node are not installed (scripts/install-deps.sh installs them)"; exit 0; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=$root/assets/models/stories260K
[ -d "$npm_dir/node_modules/openai" ] || "$root/scripts/install-npm-client.sh" "$npm_dir"
. "$here/loopback.sh"
cp "$here/openai_client_test.mjs" "$npm_dir/"  # node resolves 'openai' beside the script

read -r grpc_port http_port shard_port <<<"$(free_ports 3)"
key=npm-secret
"$coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" --api-key "$key" \
  --log-level warn >>"$work/log" 2>&1 &
pids+=($!)
"${mpirun[@]}" -np 1 "$shard" --model "$model" --threads 1 --coordinator "127.0.0.1:$grpc_port" \
  --listen "127.0.0.1:$shard_port" --log-level warn >>"$work/log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
json_field() { node -e "console.log(JSON.parse(process.argv[1])$2)" "$1"; }
expected=$("$cli" generate --model "$model" --prompt "Once upon a time" --max-new-tokens 24 \
           --temperature 0 --log-level warn)
chat=$("$cli" generate --model "$model" --prompt "Tell me a story" --chat --max-new-tokens 24 \
       --temperature 0 --log-level warn)
hidden=$(json_field "$(cat "$model/config.json")" .hidden_size)
timeout 240 node "$npm_dir/openai_client_test.mjs" "http://127.0.0.1:$http_port/v1" "$key" \
  "$(json_field "$expected" .text)" "$(json_field "$expected" .token_ids.length)" \
  "$(json_field "$chat" .text)" "$(json_field "$expected" .token_ids[0])" "$hidden" ||
  { tail -40 "$work/log"; exit 1; }
