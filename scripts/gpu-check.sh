#!/usr/bin/env bash
# The GPU checks, built here and run on the GPU machine (../shared/device/README.md). Each
# executable carries its CUDA kernels (~12 MB stripped), OpenBLAS and ICU data weigh 65 MB, and
# what travels must stay under 64 MiB: so the checks come in three groups, each packed into one
# xz archive (~20 MB) and run on its own:
#   scripts/gpu-check.sh pack GROUP [BUILD_DIR]   here: build (if needed) and pack GROUP's
#                                                 executables, their libraries and the hf-tiny
#                                                 test data into .device/ (git-ignored)
#   scripts/gpu-check.sh run GROUP                there: unpack, run them; logs and a summary
#                                                 in $OUT
# GROUP: kernels (kernel and communicator tests, compute-sanitizer, kernel and all-reduce
# benchmarks), model (model tests, decode/prefill benchmarks), serve (CLI, TP=2 on one GPU,
# offline engine throughput). With the device tool:
#   run(command: "scripts/gpu-check.sh run kernels", carry: [".device"])
set -euo pipefail
cd "$(dirname "$0")/.."

executables() {
  case $1 in
    kernels) echo gpu_kernel_tests gpu_attention_tests gpu_comm_tests gpu_comm_mpi_tests \
                  device_comm_fault paged_attention_bench gemm_bench nccl_allreduce_bench ;;
    model) echo gpu_model_tests decode_bench ;;
    serve) echo shardwise shardwise-shard engine_bench ;;
    *) echo "unknown group '$1' (kernels, model or serve)" >&2; exit 2 ;;
  esac
}

pack() {
  local group=$1 build=${2:-build}
  local names
  executables "$group" >/dev/null  # exits on an unknown group
  read -r -a names <<<"$(executables "$group")"
  export PATH=/usr/local/cuda/bin:$PATH
  [ -f "$build/build.ninja" ] || scripts/build.sh "$build" >/dev/null
  ninja -C "$build" -j "$(nproc)" "${names[@]}" >/dev/null
  local stage
  stage=$(mktemp -d)
  ../shared/device/pack-runtime.sh -o "$stage" "${names[@]/#/$build/bin/}" >/dev/null
  strip --strip-debug "$stage"/bin/* "$stage"/lib/* 2>/dev/null || true
  mkdir -p "$stage/testdata"
  [ "$group" = serve ] || cp -r ../shared/testdata/hf-tiny "$stage/testdata/"
  rm -rf .device
  mkdir -p .device
  tar -cf - -C "$stage" . | xz -T0 -6 >.device/runtime.tar.xz
  rm -rf "$stage"
  echo "$group" >.device/group
  du -sh .device/runtime.tar.xz
}

# Runs one logged step; a failure is recorded in the summary and the next step still runs.
step() {
  local log=$1
  shift
  echo "=== $*" >>"$log"
  local start=$SECONDS status=0
  timeout 300 "$@" >>"$log" 2>&1 || status=$?
  echo "=== exit $status after $((SECONDS - start)) s" >>"$log"
  case $status in
    0) ;;
    77) echo "SKIPPED (no GPU?): $*" >>"$OUT/summary.txt" ;;
    *) echo "FAILED ($status): $*" >>"$OUT/summary.txt" ;;
  esac
}

runtime=/tmp/shardwise-runtime  # where run unpacks .device/runtime.tar.xz
mpirun=(mpirun --oversubscribe --allow-run-as-root -x LD_LIBRARY_PATH -x SHARDWISE_TESTDATA_DIR
        -x SHARDWISE_SOURCE_DIR)

run_kernels() {
  for t in gpu_kernel_tests gpu_attention_tests; do
    step "$OUT/tests.log" $runtime/bin/$t
    step "$OUT/memcheck.log" compute-sanitizer --tool memcheck --error-exitcode 1 $runtime/bin/$t
  done
  step "$OUT/tests.log" "${mpirun[@]}" -np 1 $runtime/bin/gpu_comm_tests
  step "$OUT/tests.log" "${mpirun[@]}" -np 2 $runtime/bin/gpu_comm_mpi_tests
  for mode in "hung 2" "killed 2" "stalled 1"; do
    # shellcheck disable=SC2086
    step "$OUT/tests.log" tests/gpu/device_comm_fault_test.sh $mode $runtime/bin/device_comm_fault \
      "${mpirun[@]}"
  done
  step "$OUT/bench.log" $runtime/bin/paged_attention_bench
  step "$OUT/bench.log" $runtime/bin/gemm_bench
  step "$OUT/bench.log" "${mpirun[@]}" -np 1 $runtime/bin/nccl_allreduce_bench --iterations 200
  step "$OUT/bench.log" "${mpirun[@]}" -np 2 $runtime/bin/nccl_allreduce_bench --iterations 200
}

run_model() {
  step "$OUT/tests.log" $runtime/bin/gpu_model_tests
  step "$OUT/memcheck.log" compute-sanitizer --tool memcheck --error-exitcode 1 \
    $runtime/bin/gpu_model_tests --gtest_filter='*/0:GpuModel.*'
  local b=$runtime/bin/decode_bench configs=bench/gpu/configs
  step "$OUT/bench.log" $b --model $configs/llama-3-8b --batch 1,64 --prefill 2048
  step "$OUT/bench.log" $b --model $configs/llama-3-8b --batch 1 --no-cuda-graphs --prefill 0
  step "$OUT/bench.log" $b --model $configs/llama-3-70b --tp 4 --batch 1,16,64
  step "$OUT/bench.log" $b --model $configs/llama-3-70b --tp 8 --batch 1,16,64
}

run_serve() {
  local cli=$runtime/bin/shardwise model=assets/models/stories260K
  step "$OUT/tests.log" $cli generate --model $model --device cpu --ids 1,403,407 --max-new-tokens 32
  step "$OUT/tests.log" $cli generate --model $model --device cuda --dtype f32 --ids 1,403,407 \
    --max-new-tokens 32
  step "$OUT/tests.log" "${mpirun[@]}" -np 1 $runtime/bin/shardwise-shard --device cuda \
    --model $model --ids 1,403 --max-new-tokens 16
  step "$OUT/tests.log" "${mpirun[@]}" -np 2 $runtime/bin/shardwise-shard --device cuda \
    --dtype f32 --tp 2 --model $model --ids 1,403 --max-new-tokens 16
  for io in "128 128" "2048 128" "128 2048"; do
    set -- $io
    step "$OUT/bench.log" $runtime/bin/engine_bench --device cuda --random-weights \
      --model bench/gpu/configs/llama-3-8b --input-len "$1" --output-len "$2" \
      --concurrency 1,16,64 --max-batch-tokens 4096 --repeats 3
  done
}

run() {
  local group=$1
  : "${OUT:?set OUT to the folder for the logs}"
  executables "$group" >/dev/null
  [ "$(cat .device/group 2>/dev/null)" = "$group" ] ||
    { echo "pack $group first: .device holds '$(cat .device/group 2>/dev/null)'" >&2; exit 2; }
  rm -rf "$runtime" && mkdir -p "$runtime" && tar -xJf .device/runtime.tar.xz -C "$runtime"
  export PATH=$runtime/bin:$PATH LD_LIBRARY_PATH=$runtime/lib
  export SHARDWISE_TESTDATA_DIR=$runtime/testdata SHARDWISE_SOURCE_DIR=$PWD
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
  : >"$OUT/summary.txt"
  "run_$group"
  grep -hE "^\[  (PASSED  |SKIPPED) \] [0-9]+ test|^\[  FAILED  \]|^PASS|^FAIL" "$OUT"/tests.log \
    >>"$OUT/summary.txt" || true
  cat "$OUT/summary.txt"
}

case "${1:-}" in
  pack) pack "${2:?group}" "${3:-build}" ;;
  run) run "${2:?group}" ;;
  *) sed -n 2,12p "$0"; exit 2 ;;
esac
