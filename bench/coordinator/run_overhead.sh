#!/usr/bin/env bash
# Runs overhead.py against a coordinator and one TP=1 stories260K shard started here on
# loopback (tests/coordinator/loopback.sh), with stubs generated from the project's proto, and
# stops both afterwards.
# Usage: bench/coordinator/run_overhead.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
. "$root/tests/coordinator/loopback.sh"
python_stubs "$root/proto"
start_stories_deployment "$build/bin"
PYTHONPATH="$work" "$python" "$root/bench/coordinator/overhead.py" \
  "127.0.0.1:$grpc_port" "127.0.0.1:$shard_port" "$coordinator_pid"
