#!/usr/bin/env bash
# The GPU checks, built here and run on the GPU machine (../shared/device/README.md) in one call:
#   scripts/gpu-check.sh pack [BUILD_DIR]   here: build the GPU executables and pack them, the
#                                           libraries the GPU machine may lack, an Open MPI
#                                           runtime and the hf-tiny test data into one xz
#                                           archive, .device/runtime.tar.xz (~37 MB; what
#                                           travels must stay under 64 MiB)
#   scripts/gpu-check.sh run [TAG...]       there: unpack, find the CUDA libraries, install the
#                                           packed Open MPI where the machine has none, then run
#                                           the steps in priority order (all, or those of the
#                                           given tags) within SHARDWISE_GPU_BUDGET seconds
#                                           (default 480); logs and a summary in $OUT
# TAG: tests (kernel and model tests), serve (CLI and shard against the CPU), comm (device
# communicators, collective faults), bench (bandwidth, attention, GEMM, decode/prefill, 70B
# slices, all-reduce, offline engine throughput), sanitizer (compute-sanitizer memcheck).
# With the device tool:
#   run(command: "scripts/gpu-check.sh run", carry: [".device"], timeout_s: 600)
set -euo pipefail
cd "$(dirname "$0")/.."

executables=(gpu_kernel_tests gpu_attention_tests gpu_model_tests gpu_comm_tests
             gpu_comm_mpi_tests device_comm_fault bandwidth_bench paged_attention_bench gemm_bench
             nccl_allreduce_bench decode_bench shardwise shardwise-shard engine_bench)
# Open MPI's runtime: the GPU machine's image may have no MPI at all, and our executables link
# this Open MPI (4.1). Packed as the Debian packages lay it out (mpirun, its plugins, help files
# and every library they load), and installed there only where the machine has no Open MPI.
openmpi_packages=(openmpi-bin openmpi-common libopenmpi3 libpmix2)
# Libraries the GPU machine may or may not have: packed into fallback/, and used only for the
# sonames the machine turns out to lack (its own copies win). MPI's come with the Open MPI
# runtime above. The driver's libcuda and cuBLAS and NCCL (hundreds of MB) are never packed:
# they are found on the machine.
maybe_provided='^(libz\.|libssl|libcrypto|libudev|libprotobuf\.so\.32|libfmt\.so\.9|libcudart)'
never_packed='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s|libstdc\+\+|libcuda\.|libcublas|libcublasLt|libnccl)'

# Copies into DEST each shared library the given ELF files need and the pattern selects.
copy_libraries() {
  local dest=$1 select=$2
  shift 2
  ldd "$@" 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
      [[ "$name" =~ $never_packed ]] && continue
      [[ "$name" =~ $select ]] && cp -Lu "$path" "$dest/"
    done
  return 0
}

# Writes a tar of the files of openmpi_packages and of the packages owning each library that
# mpirun, libmpi and the plugins load (glibc and the compiler's runtime aside), absolute paths.
pack_openmpi() {
  local tar_file=$1 plugins owners
  plugins=$(dpkg -L "${openmpi_packages[@]}" | grep -E '\.so[.0-9]*$')
  # shellcheck disable=SC2086
  owners=$(ldd /usr/bin/orterun $plugins 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $3}' |
    sort -u | while read -r lib; do
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true
    done | cut -d: -f1 | sort -u | grep -vE '^(libc6|libgcc-s1|libstdc\+\+6)$')
  # shellcheck disable=SC2086
  dpkg -L "${openmpi_packages[@]}" $owners | sort -u | grep -vE '^/usr/share/(doc|man|lintian)/' |
    while read -r path; do [ -d "$path" ] || [ ! -e "$path" ] || echo "${path#/}"; done |
    tar -cf "$tar_file" -C / --no-recursion -T -
}

pack() {
  local build=${1:-build}
  export PATH=/usr/local/cuda/bin:$PATH
  [ -f "$build/build.ninja" ] || scripts/build.sh "$build" >/dev/null
  ninja -C "$build" -j "$(nproc)" "${executables[@]}" >/dev/null
  local stage
  stage=$(mktemp -d)
  # jq too: the serve step compares token ids, and the machine's image may not have it.
  ../shared/device/pack-runtime.sh -o "$stage" "${executables[@]/#/$build/bin/}" \
    "$(command -v jq)" >/dev/null
  mkdir -p "$stage/fallback" "$stage/testdata"
  copy_libraries "$stage/fallback" "$maybe_provided" "$stage"/bin/*
  pack_openmpi "$stage/openmpi.tar"
  strip --strip-debug "$stage"/bin/* "$stage"/lib/* "$stage"/fallback/* 2>/dev/null || true
  cp -r ../shared/testdata/hf-tiny "$stage/testdata/"
  rm -rf .device
  mkdir -p .device
  # One archive with a dictionary larger than all of it: the executables share most of their
  # CUDA kernels, which xz then stores once.
  tar -cf - -C "$stage" . | xz -T1 --lzma2=preset=6,dict=256MiB >.device/runtime.tar.xz
  rm -rf "$stage"
  du -sh .device/runtime.tar.xz
}

runtime=/tmp/shardwise-runtime  # where run unpacks .device/runtime.tar.xz
budget=${SHARDWISE_GPU_BUDGET:-480}
tags=()
mpirun=()

# Makes every executable's libraries resolvable: our lib/ first, then the machine's own, then
# for a soname still missing, the CUDA folders of the machine (the toolkit, Python wheels) or
# our fallback/ copy, linked into extra/.
resolve_libraries() {
  mkdir -p $runtime/extra
  local path=$runtime/lib:$runtime/extra pass name found
  # One walk of the places CUDA libraries live (the toolkit first, then Python wheels).
  find /usr/local/cuda* /usr/local/nvidia /usr/lib /opt -name 'lib*.so*' \( -type f -o -type l \) \
    2>/dev/null >$runtime/libraries.txt
  for pass in 1 2 3; do
    local missing
    missing=$(LD_LIBRARY_PATH=$path ldd $runtime/bin/* $runtime/extra/* $runtime/lib/* 2>/dev/null |
      awk '/not found/ {print $1}' | sort -u)
    [ -n "$missing" ] || break
    for name in $missing; do
      found=$(grep -m 1 "/$name\$" $runtime/libraries.txt || true)
      if [ -n "$found" ]; then
        [[ ":$path:" == *":$(dirname "$found"):"* ]] || path=$path:$(dirname "$found")
      elif [ -e "$runtime/fallback/$name" ]; then
        ln -sf "$runtime/fallback/$name" "$runtime/extra/$name"
      fi
    done
  done
  export LD_LIBRARY_PATH=$path
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  LD_LIBRARY_PATH=$path ldd $runtime/bin/* 2>/dev/null | grep "not found" | sort -u || true
}

# Uses the machine's mpirun when it is Open MPI's; otherwise installs the packed Open MPI.
resolve_mpirun() {
  local launcher=mpirun version
  version=$(mpirun --version 2>&1 || true)
  if [[ "$version" != *"Open MPI"* ]]; then
    if [ ! -e /usr/bin/orterun ]; then
      # Never over a file the machine has: only what is missing is added.
      tar -xf $runtime/openmpi.tar -C / --skip-old-files && ldconfig
      echo "installed the packed Open MPI (the machine has none)"
    fi
    launcher=/usr/bin/orterun
    # Plugins of transports this machine has no library for fail to load: say nothing of them.
    export OMPI_MCA_mca_base_component_show_load_errors=0
  fi
  mpirun=("$launcher" --oversubscribe --allow-run-as-root --mca btl self,vader --mca pml ob1)
  # Without ssh, Open MPI 4 refuses to start even a job on this host alone: launch locally.
  command -v ssh >/dev/null || mpirun+=(--mca plm isolated)
  mpirun+=(-x LD_LIBRARY_PATH -x SHARDWISE_TESTDATA_DIR -x SHARDWISE_SOURCE_DIR)
  version=$("$launcher" --version 2>&1 || true)
  echo "${version%%$'\n'*}"
}

# step TAG TIMEOUT LOG COMMAND...: runs one logged step unless its tag is filtered out or the
# budget is spent; a failure is recorded and the next step still runs.
step() {
  local tag=$1 limit=$2 log=$3
  shift 3
  if [ ${#tags[@]} -gt 0 ] && [[ ! " ${tags[*]} " =~ " $tag " ]]; then return 0; fi
  local left=$((budget - SECONDS))
  if [ "$left" -le 5 ]; then
    printf '%-9s %5s  %s\n' "NOT RUN" "-" "${*//"$runtime/bin/"/}" >>"$OUT/summary.txt"
    return 0
  fi
  [ "$limit" -le "$left" ] || limit=$left
  echo "=== $*" >>"$log"
  local start=$SECONDS status=0
  timeout "$limit" "$@" >>"$log" 2>&1 || status=$?
  echo "=== exit $status after $((SECONDS - start)) s" >>"$log"
  local verdict=ok
  case $status in
    0) ;;
    77) verdict=SKIPPED ;;
    124) verdict=TIMEOUT ;;
    *) verdict="FAIL($status)" ;;
  esac
  local shown="$*"
  shown=${shown//"${mpirun[*]}"/mpirun}
  printf '%-9s %4ss  %s\n' "$verdict" "$((SECONDS - start))" "${shown//"$runtime/bin/"/}" \
    >>"$OUT/summary.txt"
}

# Runs each test suite of a gtest binary in a process of its own: an abort (a failed CHECK, an
# illegal address) then costs one suite, not the rest of the binary.
run_suites() {
  local binary=$1 failed=0 suite
  for suite in $("$binary" --gtest_list_tests | awk '/^[^ ]/ && $1 ~ /\.$/ {print $1}'); do
    "$binary" --gtest_filter="${suite}*" || { failed=1; echo "SUITE FAILED: ${suite%.}"; }
  done
  return $failed
}

# The greedy tokens of the CUDA path (f32 and bf16) and of shardwise-shard at TP=1 and TP=2
# (host-staged on one GPU) against the CPU's, on the default model.
serve_agrees_with_cpu() {
  local cli=$runtime/bin/shardwise shard=$runtime/bin/shardwise-shard
  local model=assets/models/stories260K ids=1,403,407 n=32
  local cpu f32 bf16 tp1 tp2
  cpu=$($cli generate --model $model --device cpu --ids $ids --max-new-tokens $n | jq -c .token_ids)
  f32=$($cli generate --model $model --device cuda --dtype f32 --ids $ids --max-new-tokens $n |
    jq -c .token_ids)
  bf16=$($cli generate --model $model --device cuda --ids $ids --max-new-tokens $n | jq -c .token_ids)
  tp1=$("${mpirun[@]}" -np 1 $shard --device cuda --dtype f32 --model $model --ids $ids \
    --max-new-tokens $n | jq -c .token_ids)
  tp2=$("${mpirun[@]}" -np 2 $shard --device cuda --dtype f32 --tp 2 --model $model --ids $ids \
    --max-new-tokens $n | jq -c .token_ids)
  printf 'cpu  %s\ncuda f32 %s\ncuda bf16 %s (may part from f32 at a near-tie)\n' "$cpu" "$f32" "$bf16"
  printf 'shard tp1 %s\nshard tp2 %s\n' "$tp1" "$tp2"
  [ -n "$cpu" ] && [ "$f32" = "$cpu" ] && [ "$tp1" = "$cpu" ] && [ "$tp2" = "$cpu" ]
}

run_steps() {
  local b=$runtime/bin t=$OUT/tests.log m=$OUT/memcheck.log p=$OUT/bench.log
  local eight=bench/gpu/configs/llama-3-8b seventy=bench/gpu/configs/llama-3-70b peak
  step bench 60 "$p" $b/bandwidth_bench
  peak=$(awk '/^peak_tbps/ {print $2}' "$p" 2>/dev/null | tail -n 1)
  peak=${peak:-3.0}
  step tests 150 "$t" "$0" suites $b/gpu_kernel_tests
  step tests 150 "$t" "$0" suites $b/gpu_attention_tests
  step tests 200 "$t" "$0" suites $b/gpu_model_tests
  step bench 90 "$p" $b/paged_attention_bench --peak-tbps "$peak"
  step bench 120 "$p" $b/decode_bench --model $eight --batch 1,64,256 --prefill 2048 \
    --peak-tbps "$peak"
  step bench 150 "$p" $b/engine_bench --device cuda --random-weights --model $eight \
    --input-len 128 --output-len 128 --concurrency 64,256,1024 --max-batch-tokens 8192 --repeats 3
  step serve 120 "$t" "$0" serve-check
  step comm 60 "$t" "${mpirun[@]}" -np 1 $b/gpu_comm_tests
  step comm 90 "$t" "${mpirun[@]}" -np 2 $b/gpu_comm_mpi_tests
  step bench 90 "$p" $b/gemm_bench
  step bench 60 "$p" $b/decode_bench --model $eight --batch 1 --no-cuda-graphs --prefill 0 \
    --peak-tbps "$peak"
  step bench 90 "$p" $b/decode_bench --model $seventy --tp 4 --batch 1,16,64 --peak-tbps "$peak"
  step bench 90 "$p" $b/decode_bench --model $seventy --tp 8 --batch 1,16,64 --peak-tbps "$peak"
  step bench 20 "$p" python3 bench/gpu/project_tp.py "$p" --config $seventy/config.json
  # An H200 (139 GiB) holds all of Llama-3-70B's 131 GiB of bf16 weights: measured, not projected.
  step bench 90 "$p" $b/decode_bench --model $seventy --batch 1,16 --prefill 0 --peak-tbps "$peak"
  step bench 60 "$p" "${mpirun[@]}" -np 1 $b/nccl_allreduce_bench --iterations 200
  step bench 60 "$p" "${mpirun[@]}" -np 2 $b/nccl_allreduce_bench --iterations 200
  local mode
  for mode in "hung 2" "killed 2" "stalled 1"; do
    # shellcheck disable=SC2086
    step comm 60 "$t" tests/gpu/device_comm_fault_test.sh $mode $b/device_comm_fault "${mpirun[@]}"
  done
  # memcheck slows kernels tens of times: one shape of each suite, and the tiny models.
  local sanitize=(compute-sanitizer --tool memcheck --error-exitcode 1)
  step sanitizer 120 "$m" "${sanitize[@]}" $b/gpu_kernel_tests
  step sanitizer 120 "$m" "${sanitize[@]}" $b/gpu_attention_tests --gtest_filter='*/0:*/3:*/5'
  step sanitizer 120 "$m" "${sanitize[@]}" $b/gpu_model_tests --gtest_filter='*/0:GpuModel.*'
  step bench 150 "$p" $b/engine_bench --device cuda --random-weights --model $eight \
    --input-len 2048 --output-len 128 --concurrency 256 --max-batch-tokens 8192 --repeats 1
  step bench 150 "$p" $b/engine_bench --device cuda --random-weights --model $eight \
    --input-len 128 --output-len 2048 --concurrency 256 --max-batch-tokens 8192 --repeats 1
}

run() {
  : "${OUT:?set OUT to the folder for the logs}"
  set +e  # a failing check is recorded by step(); the rest still run
  tags=("$@")
  [ -f .device/runtime.tar.xz ] || { echo "no .device/runtime.tar.xz: run 'pack' first" >&2; exit 2; }
  rm -rf $runtime && mkdir -p $runtime
  if command -v xz >/dev/null; then
    xz -dc .device/runtime.tar.xz | tar -xf - -C $runtime
  else  # an image without xz-utils still has Python
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' \
      .device/runtime.tar.xz | tar -xf - -C $runtime
  fi
  # The CUDA tools (compute-sanitizer) last: our executables and the machine's own come first.
  export PATH=$runtime/bin:$PATH:/usr/local/cuda/bin
  export SHARDWISE_TESTDATA_DIR=$runtime/testdata SHARDWISE_SOURCE_DIR=$PWD
  {
    nvidia-smi 2>&1 || true
    grep PRETTY /etc/os-release || true
    ldd --version 2>&1 | sed -n 1p
    resolve_mpirun  # first: an installed Open MPI provides libraries resolve_libraries looks for
    resolve_libraries
    command -v compute-sanitizer jq || true
  } >"$OUT/env.txt" 2>&1
  printf '%-9s %5s  %s\n' "result" "time" "step (budget ${budget} s)" >"$OUT/summary.txt"
  run_steps
  {
    echo
    grep -hE "^\[  (PASSED  |SKIPPED )\] [0-9]+ test|^\[  FAILED  \]|^(PASS|FAIL|SUITE FAILED)" \
      "$OUT"/tests.log \
      "$OUT"/memcheck.log 2>/dev/null || true
    echo
    grep -hE "TB/s|TFLOP/s|tokens/s|tok/s|all-reduces:|median_us|^ +[0-9]+ +[0-9.]+ +[0-9]+ " \
      "$OUT"/bench.log 2>/dev/null | grep -v "^PROJECTION\|^gpt-fast\|^ *tp " | cut -c1-200 || true
    sed -n '/^PROJECTION/,/^gpt-fast/p' "$OUT"/bench.log 2>/dev/null
  } >>"$OUT/summary.txt"
  cat "$OUT/env.txt" "$OUT/summary.txt" | tail -c 11000
}

case "${1:-}" in
  pack) pack "${2:-build}" ;;
  run) shift; run "$@" ;;
  serve-check) set +e; resolve_mpirun >/dev/null; serve_agrees_with_cpu ;;  # steps of run
  suites) set +e; run_suites "$2" ;;
  *) sed -n 2,17p "$0"; exit 2 ;;
esac
