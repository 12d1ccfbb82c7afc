#!/usr/bin/env bash
# The official `openai` npm client against a coordinator and one TP=1 shard on loopback.
# Installs the client into NPM_DIR (kept between runs); skips only when npm is absent.
# Usage: openai_npm_test.sh COORDINATOR SHARD CLI NPM_DIR MPIRUN...
set -euo pipefail
coordinator=$1 shard=$2 cli=$3 npm_dir=$4
shift 4
mpirun=("$@")
command -v npm >/dev/null && command -v node >/dev/null ||
  { echo "SKIP: npm/node are not installed"; exit 0; }
here=$(cd "$(dirname "$0")" && pwd)
model=$(cd "$here/../.." && pwd)/assets/models/stories260K
mkdir -p "$npm_dir"
[ -d "$npm_dir/node_modules/openai" ] ||
  (cd "$npm_dir" && timeout 180 npm install --silent --no-audit --no-fund openai@4 >/dev/null)
cp "$here/openai_client_test.mjs" "$npm_dir/"  # node resolves 'openai' beside the script

# stories260K with a chat template added, so that chat completions have something to render.
chat_model=$(mktemp -d)
for f in "$model"/*; do ln -s "$f" "$chat_model/"; done
rm "$chat_model/tokenizer_config.json"
node -e '
const config = JSON.parse(require("fs").readFileSync(process.argv[1]));
config.chat_template = "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}" +
                       "{% if add_generation_prompt %}assistant:{% endif %}";
require("fs").writeFileSync(process.argv[2], JSON.stringify(config));' \
  "$model/tokenizer_config.json" "$chat_model/tokenizer_config.json"

pids=()
log=$(mktemp)
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$log" "$chat_model"
}
trap cleanup EXIT
read -r grpc_port http_port shard_port < <(node -e "
const net = require('net');
const servers = [0, 1, 2].map(() => net.createServer().listen(0, '127.0.0.1'));
setTimeout(() => { console.log(servers.map((s) => s.address().port).join(' '));
                   servers.forEach((s) => s.close()); }, 100);")
key=npm-secret
"$coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" --api-key "$key" \
  --log-level warn >>"$log" 2>&1 &
pids+=($!)
"${mpirun[@]}" -np 1 "$shard" --model "$chat_model" --model-name stories260K --threads 1 --coordinator "127.0.0.1:$grpc_port" \
  --listen "127.0.0.1:$shard_port" --log-level warn >>"$log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
expected=$("$cli" generate --model "$model" --prompt "Once upon a time" --max-new-tokens 24 \
           --temperature 0 --log-level warn)
text=$(node -e 'console.log(JSON.parse(process.argv[1]).text)' "$expected")
tokens=$(node -e 'console.log(JSON.parse(process.argv[1]).token_ids.length)' "$expected")
chat=$("$cli" generate --model "$chat_model" --prompt "Tell me a story" --chat --max-new-tokens 24 \
       --temperature 0 --log-level warn)
chat_text=$(node -e 'console.log(JSON.parse(process.argv[1]).text)' "$chat")
timeout 120 node "$npm_dir/openai_client_test.mjs" "http://127.0.0.1:$http_port/v1" "$key" \
  "$text" "$tokens" "$chat_text" || { cat "$log"; exit 1; }
