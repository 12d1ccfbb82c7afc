#!/usr/bin/env bash
# README command 1: install dependencies, build, and generate a story with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
echo
echo "== shardwise generate (default model: assets/models/stories260K) =="
build/bin/shardwise generate --ids 1 --max-new-tokens 200 --temperature 0
