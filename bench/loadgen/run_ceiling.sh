#!/usr/bin/env bash
# The load generator's own ceiling: output tokens it absorbs per second of its own CPU time,
# against a coordinator and one TP=1 stories260K shard (--threads 1 --capacity 256) started
# here on loopback, at high concurrency with long outputs (4 prompt tokens, 300 generated),
# over gRPC (256 streams) and over HTTP /v1/completions with SSE (64 streams: cpp-httplib's
# listen backlog of 5 drops some of 256 connections opened at once). Beside it: the
# coordinator's CPU per token (from /proc/PID/stat) and the machine's load average.
# Usage: bench/loadgen/run_ceiling.sh [BUILD_DIR] [REPEATS]   (default: build, 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
repeats=${2:-3}
. "$root/tests/coordinator/loopback.sh"
start_stories_deployment "$build/bin" --http-threads 256

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local protocol=$1 concurrency=$2
  local before after
  before=$(cpu_ticks "$coordinator_pid")
  "$build/bin/shardwise-loadgen" --model stories260K --grpc "127.0.0.1:$grpc_port" \
    --http "http://127.0.0.1:$http_port" --protocol "$protocol" --concurrency "$concurrency" \
    --requests "$((concurrency * 2))" --warmup 8 --input-len 4 --output-len 300 --quiet \
    --progress off --out "$work/run.json"
  after=$(cpu_ticks "$coordinator_pid")
  "$python" - "$work/run.json" "$((after - before))" "$(getconf CLK_TCK)" "$protocol" \
    "$concurrency" <<'PY'
import json, sys
run, ticks, hz, protocol, concurrency = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
s, c = run["summary"], run["client"]
messages = sum(r["messages"] for r in run["requests"])
agree = all(x.get("agree", True) for x in run["server"]["counters"] if x["metric"])
coordinator_s = ticks / hz
print(f"{protocol:>11} x {concurrency:>3}: {s['output_tokens']} tokens in {c['wall_s']:.2f} s "
      f"({s['output_throughput']:.0f} tok/s, {s['output_tokens'] / max(messages, 1):.2f} tokens/message), "
      f"{s['errors']} errors, counts agree: {agree}; "
      f"loadgen CPU {c['cpu_s']:.2f} s ({c['cpu_utilization']:.0%} of a core) = "
      f"{c['output_tokens_per_cpu_s']:.0f} tok/s per loadgen core; coordinator "
      f"{coordinator_s:.2f} s = {s['output_tokens'] / max(coordinator_s, 1e-9):.0f} tok/s per "
      f"core; load average {run['machine']['load_average_end'][0]:.2f}")
PY
}
for _ in $(seq "$repeats"); do
  run grpc 256
  run completions 64
done
