#!/usr/bin/env bash
# Installs the official `openai` npm client, which the OpenAI-compatibility test drives, into
# DIR (default: .deps/npm in the repository). Idempotent. Usage: install-npm-client.sh [DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.deps/npm}
version=4.95.0  # openai-node v4: completions, chat, embeddings (base64 by default), models
if [ -f "$dir/node_modules/openai/package.json" ] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/openai/package.json"; then
  exit 0
fi
mkdir -p "$dir"
(cd "$dir" && timeout 300 npm install --silent --no-audit --no-fund --no-save "openai@$version" >/dev/null)
echo "install-npm-client: openai@$version in $dir"
