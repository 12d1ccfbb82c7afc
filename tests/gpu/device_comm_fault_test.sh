#!/usr/bin/env bash
# Runs device_comm_fault under mpirun and checks the job ends: non-zero status, within 30 s, with
# a log line naming the failure. Exits 77 (ctest: skipped) when the binary finds no GPU.
# Usage: device_comm_fault_test.sh hung|killed|stalled NP FAULT_BINARY MPIRUN...
set -u
mode=$1 np=$2 binary=$3
shift 3
log=$(mktemp)
start=$(date +%s)
timeout 90 "$@" -np "$np" "$binary" "$mode" >"$log" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))
cat "$log"
echo "device_comm_fault_test: mode=$mode np=$np exit status=$status after ${elapsed}s"
if grep -q "SKIP: no CUDA device" "$log"; then
  echo "SKIPPED: no CUDA device"
  exit 77
fi
[ "$status" -ne 0 ] || { echo "FAIL: the job exited 0"; exit 1; }
[ "$status" -ne 124 ] || { echo "FAIL: the job hung until timeout(1) killed it"; exit 1; }
[ "$elapsed" -le 30 ] || { echo "FAIL: took longer than 30 s"; exit 1; }
case $mode in
  hung) pattern="all_reduce_sum of 32768 .* did not finish within 3.0 s" ;;
  killed) pattern="exited on signal 9" ;;
  stalled) pattern="all_reduce_sum of 32768 elements (BF16) did not finish within 3.0 s on rank 0" ;;
esac
grep -q "$pattern" "$log" || { echo "FAIL: no log line matching '$pattern'"; exit 1; }
echo "PASS"
