#!/usr/bin/env bash
# The soak and fault test in one command (issue 15; docs/reliability.md has a 10-minute run):
#   tests/soak/soak.sh [SECONDS] [BUILD_DIR]     default 120 s, build/
# 256 mixed gRPC and HTTP streams against two TP=2 groups of stories260K, with a kill -9 of a
# follower, of a leader, a SIGTERM drain and a coordinator restart on the way (soak.py). ctest
# runs it as `soak` (label slow, which .ci/run leaves out): ctest --test-dir build -L slow -R soak
# SOAK_SECONDS and SOAK_STREAMS override the duration and the number of streams.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
duration=${1:-${SOAK_SECONDS:-120}}
build=${2:-$root/build}
. "$root/tests/coordinator/loopback.sh"
python_stubs "$root/proto"
mpirun=$(command -v mpirun)
PYTHONPATH="$work" "$python" "$here/soak.py" --coordinator "$build/bin/shardwise-coordinator" \
  --shard "$build/bin/shardwise-shard" --model "$root/assets/models/stories260K" \
  --work "$work" --duration "$duration" --streams "${SOAK_STREAMS:-256}" \
  --mpirun "$mpirun --oversubscribe --allow-run-as-root" || {
  status=$?
  mkdir -p "$build/soak-logs" && cp "$work"/*.log "$build/soak-logs/"
  echo "logs: $build/soak-logs/"
  exit $status
}
