#!/usr/bin/env bash
# The GPU checks, built here and run on the GPU machine (../shared/device/README.md):
#   scripts/gpu-check.sh pack [BUILD_DIR]   here: build the GPU tests, benchmarks and CLIs, and
#                                           pack them, their libraries and the hf-tiny test data
#                                           into .device/ (git-ignored)
#   scripts/gpu-check.sh tests              there: every GPU test, the mpirun device-communicator
#                                           tests and compute-sanitizer memcheck; logs in $OUT
#   scripts/gpu-check.sh bench              there: the kernel, all-reduce and model benchmarks
# The device tool runs a command in a copy of this tree, e.g.
#   run(command: "scripts/gpu-check.sh tests", carry: [".device"])
set -euo pipefail
cd "$(dirname "$0")/.."

tests=(gpu_kernel_tests gpu_attention_tests gpu_model_tests gpu_comm_tests)
mpi_tests=(gpu_comm_mpi_tests device_comm_fault)
benches=(paged_attention_bench gemm_bench nccl_allreduce_bench decode_bench)
tools=(shardwise shardwise-shard)

pack() {
  local build=${1:-build}
  export PATH=/usr/local/cuda/bin:$PATH
  scripts/build.sh "$build" >/dev/null
  local exes=()
  for name in "${tests[@]}" "${mpi_tests[@]}" "${benches[@]}" "${tools[@]}"; do
    if [ -x "$build/bin/$name" ]; then exes+=("$build/bin/$name"); else echo "not built: $name"; fi
  done
  rm -rf .device
  ../shared/device/pack-runtime.sh -o .device "${exes[@]}" >/dev/null
  strip --strip-debug .device/bin/* .device/lib/* 2>/dev/null || true
  mkdir -p .device/testdata
  cp -r ../shared/testdata/hf-tiny .device/testdata/
  cp -r bench/gpu/configs .device/ 2>/dev/null || true
  du -sh .device
}

# Runs one logged step; a failure is recorded and the next step still runs.
step() {
  local log=$1
  shift
  echo "=== $*" >>"$log"
  local start=$SECONDS status=0
  timeout 300 "$@" >>"$log" 2>&1 || status=$?
  echo "=== exit $status after $((SECONDS - start)) s: $*" >>"$log"
  [ $status -eq 0 ] || echo "FAILED ($status): $*" >>"$OUT/summary.txt"
}

environment() {
  : "${OUT:?set OUT to the folder for the logs}"
  export LD_LIBRARY_PATH=$PWD/.device/lib
  export SHARDWISE_TESTDATA_DIR=$PWD/.device/testdata SHARDWISE_SOURCE_DIR=$PWD
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
  touch "$OUT/summary.txt"
}

run_tests() {
  environment
  local mpirun=(mpirun --oversubscribe --allow-run-as-root -x LD_LIBRARY_PATH
                -x SHARDWISE_TESTDATA_DIR -x SHARDWISE_SOURCE_DIR)
  for t in "${tests[@]}"; do
    [ -x .device/bin/$t ] && step "$OUT/tests.log" "${mpirun[@]}" -np 1 .device/bin/$t
  done
  [ -x .device/bin/gpu_comm_mpi_tests ] &&
    step "$OUT/tests.log" "${mpirun[@]}" -np 2 .device/bin/gpu_comm_mpi_tests
  if [ -x .device/bin/device_comm_fault ]; then
    step "$OUT/tests.log" tests/gpu/device_comm_fault_test.sh hung 2 .device/bin/device_comm_fault "${mpirun[@]}"
    step "$OUT/tests.log" tests/gpu/device_comm_fault_test.sh killed 2 .device/bin/device_comm_fault "${mpirun[@]}"
    step "$OUT/tests.log" tests/gpu/device_comm_fault_test.sh stalled 1 .device/bin/device_comm_fault "${mpirun[@]}"
  fi
  for t in gpu_kernel_tests gpu_attention_tests; do
    [ -x .device/bin/$t ] && step "$OUT/memcheck.log" compute-sanitizer --tool memcheck \
      --error-exitcode 1 .device/bin/$t
  done
  grep -hE "^\[  (PASSED|FAILED|SKIPPED) |tests? .*(passed|failed)|^PASS|^FAIL" "$OUT"/tests.log \
    >>"$OUT/summary.txt" || true
  cat "$OUT/summary.txt"
}

run_bench() {
  environment
  for b in paged_attention_bench gemm_bench; do
    [ -x .device/bin/$b ] && step "$OUT/bench.log" .device/bin/$b
  done
  [ -x .device/bin/nccl_allreduce_bench ] &&
    step "$OUT/bench.log" mpirun --allow-run-as-root -np 1 -x LD_LIBRARY_PATH .device/bin/nccl_allreduce_bench
  [ -x .device/bin/decode_bench ] && step "$OUT/bench.log" .device/bin/decode_bench --help
  cat "$OUT/summary.txt" "$OUT/bench.log"
}

case "${1:-}" in
  pack) pack "${2:-build}" ;;
  tests) run_tests ;;
  bench) run_bench ;;
  *) sed -n 2,10p "$0"; exit 2 ;;
esac
