#!/usr/bin/env bash
# The scaling-study driver end to end, on loopback:
#   1. a two-point study (stories260K, TP=1, one replica under mpirun, concurrency 1 and 2):
#      it finishes, leaves no process of any session it started, and writes results.json with
#      both points (every request finished, the server's token count agreeing), their raw
#      loadgen JSON, report.md and the PNG plots;
#   2. the other launchers: an existing coordinator (started here, and still running after)
#      and a start command, one point each.
# Usage: study_driver_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/coordinator/loopback.sh"
fail() {
  echo "FAIL: $*"
  tail -40 "$work/study.log" 2>/dev/null || true
  exit 1
}
session_ids() {
  "$python" -c "import json, sys
print(' '.join(str(s) for d in json.load(open(sys.argv[1]))['deployments'] for s in d['session_ids']))" "$1"
}
# Fails when a live process (not a zombie waiting to be reaped) of these sessions remains
# after 2 s.
no_process_left() {
  local left=""
  for _ in $(seq 20); do
    left=$(ps -e -o sid= -o pid= -o stat= -o args= | awk -v list=" $* " \
      'index(list, " " $1 " ") && $3 !~ /^Z/')
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  echo "$left"
  fail "processes of the study's sessions survived it"
}

cat >"$work/two-point.yaml" <<YAML
name: two-point
description: The driver's test, stories260K at TP=1 with one replica, concurrency 1 and 2.
deployments:
  - model: assets/models/stories260K
    threads: 1
    capacity: 4
sweep:
  concurrency: [1, 2]
  input_len: [8]
  output_len: [8]
loadgen:
  requests: 3
  requests_per_concurrency: 2
  warmup: 1
YAML
"$root/scripts/scaling-study.sh" "$work/two-point.yaml" --build "$build" --out "$work/out" \
  >"$work/study.log" 2>&1 || fail "the study exited $?"

"$python" - "$work/out" <<'PY' || fail "results"
import gzip, json, os, sys
out = sys.argv[1]
results = json.load(open(os.path.join(out, "results.json")))
points = results["points"]
assert [p["point"] for p in points] == ["c1-in8-out8", "c2-in8-out8"], points
for p, sent in zip(points, (3, 4)):  # max(3 requests, 2 x concurrency)
    s = p["summary"]
    assert s["sent"] == sent and s["finished"] == sent and s["errors"] == 0, s
    assert s["output_tokens"] == 8 * sent, s
    counter = [c for c in p["server"]["counters"] if c["quantity"] == "output_tokens"][0]
    assert counter["agree"] and counter["server"] == 8 * sent, counter
    raw = json.load(gzip.open(os.path.join(out, p["raw"])))
    assert len(raw["requests"]) == sent, p["raw"]
(d,) = results["deployments"]
assert d["clean_teardown"] and not d.get("error"), d
assert results["versions"]["commit"] and results["machine"]["cores"], results["versions"]
report = open(os.path.join(out, "report.md")).read()
assert "scripts/scaling-study.sh" in report and "stories260K-tp1-r1" in report, report[:500]
for png in ("throughput-latency-stories260K.png", "latency-vs-load-stories260K.png"):
    assert open(os.path.join(out, png), "rb").read(8) == b"\x89PNG\r\n\x1a\n", png
    assert f"]({png})" in report, png
print("ok: results.json, raw JSON, report.md and plots")
PY
sessions=$(session_ids "$work/out/results.json")
[ -n "$sessions" ] || fail "no session ids recorded"
# shellcheck disable=SC2086
no_process_left $sessions
echo "ok: no process left of sessions $sessions"

# The existing-coordinator and command launchers.
read -r grpc_port http_port shard_port <<<"$(free_ports 3)"
"$build/bin/shardwise-coordinator" --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" \
  --log-level warn >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
pids+=($coordinator_pid)
"$build/bin/shardwise-shard" --model "$root/assets/models/stories260K" --threads 1 --capacity 4 \
  --coordinator "127.0.0.1:$grpc_port" --listen "127.0.0.1:$shard_port" --log-level warn \
  >"$work/shard.log" 2>&1 &
pids+=($!)
cat >"$work/launchers.yaml" <<YAML
name: launchers
deployments:
  - name: running
    launcher: existing
    model_name: stories260K
    grpc: 127.0.0.1:$grpc_port
    http: http://127.0.0.1:$http_port
  - name: by-command
    launcher: command
    model: assets/models/stories260K
    start: >-
      {build}/bin/shardwise-coordinator --grpc {grpc} --http 127.0.0.1:{http_port}
      --log-level warn & exec {build}/bin/shardwise-shard --model {model_dir} --threads 1
      --capacity 4 --coordinator {grpc} --listen 127.0.0.1:{shard_port} --log-level warn
sweep:
  concurrency: [1]
  input_len: [4]
  output_len: [4]
loadgen:
  requests: 2
YAML
"$root/scripts/scaling-study.sh" "$work/launchers.yaml" --build "$build" --out "$work/out2" \
  >"$work/study.log" 2>&1 || fail "the launchers study exited $?"
"$python" - "$work/out2/results.json" <<'PY' || fail "launcher results"
import json, sys
results = json.load(open(sys.argv[1]))
assert [p["deployment"] for p in results["points"]] == ["running", "by-command"], results["points"]
for p in results["points"]:
    assert p["summary"]["finished"] == 2 and p["summary"]["output_tokens"] == 8, p
assert all(d["clean_teardown"] for d in results["deployments"]), results["deployments"]
print("ok: existing and command launchers")
PY
kill -0 "$coordinator_pid" 2>/dev/null || fail "the study stopped an existing coordinator"
# shellcheck disable=SC2046
no_process_left $(session_ids "$work/out2/results.json")
echo "PASS"
