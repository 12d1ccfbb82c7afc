#!/usr/bin/env bash
# Runs fault_injection under mpirun and checks the group ends: non-zero status, within 30 s,
# with a log line naming the failure. Usage: fault_test.sh killed|hung FAULT_BINARY MPIRUN...
set -u
mode=$1 binary=$2
shift 2
log=$(mktemp)
start=$(date +%s)
timeout 90 "$@" -np 2 "$binary" "$mode" >"$log" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))
cat "$log"
echo "fault_test: mode=$mode exit status=$status after ${elapsed}s"
[ "$status" -ne 0 ] || { echo "FAIL: the group exited 0"; exit 1; }
[ "$status" -ne 124 ] || { echo "FAIL: the group hung until timeout(1) killed it"; exit 1; }
[ "$elapsed" -le 30 ] || { echo "FAIL: took longer than 30 s"; exit 1; }
if [ "$mode" = hung ]; then
  pattern="did not finish within 3.0 s"
else
  pattern="exited on signal 9"
fi
grep -q "$pattern" "$log" || { echo "FAIL: no log line matching '$pattern'"; exit 1; }
echo "PASS"
