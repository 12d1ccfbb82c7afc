#!/usr/bin/env bash
# Builds the fuzz targets of tests/fuzz with clang's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer in their own build folder (the main builds stay gcc), and runs each
# for SECONDS (default 30) from its seed corpus and its regression inputs; fails when one
# crashes, leaks, hangs (10 s on one input) or passes 2 GiB. A crash leaves its input in
# build-fuzz/crashes/: committed under tests/fuzz/regressions/NAME once fixed, every later run
# (and each build's ctest fuzz_replay_NAME) replays it.
#   scripts/fuzz.sh [SECONDS] [NAME...]     e.g. scripts/fuzz.sh 600 jinja tokenizer_json
# libFuzzer's last lines for each target (execs, cov, ft, corpus) go to build-fuzz/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
all=(safetensors_header model_config tokenizer_json jinja openai_request step_plan register
     yaml_config)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSHARDWISE_FUZZ=ON -DSHARDWISE_SANITIZE=address,undefined -DSHARDWISE_CUDA=OFF \
    -DSHARDWISE_BENCHMARKS=OFF >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
fi
ninja -C "$build" -j "$(nproc)" "${targets[@]/%/_fuzzer}"

mkdir -p "$build/crashes"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for name in "${targets[@]}"; do
  corpus="$build/corpus/$name"  # grows across runs; the committed seeds stay as they are
  mkdir -p "$corpus"
  inputs=("$corpus")
  for dir in "tests/fuzz/corpus/$name" "tests/fuzz/regressions/$name"; do
    [ -d "$dir" ] && inputs+=("$dir")
  done
  dictionary=()
  [ -f "tests/fuzz/dictionaries/$name.dict" ] && dictionary=(-dict="tests/fuzz/dictionaries/$name.dict")
  echo "fuzz: $name for ${seconds}s"
  if ! "$build/bin/${name}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/crashes/$name-" \
      "${dictionary[@]}" "${inputs[@]}" \
      >"$build/$name.log" 2>&1; then
    tail -40 "$build/$name.log"
    failed+=("$name")
  fi
  grep -E "^#[0-9]+.*(DONE|cov:)" "$build/$name.log" | tail -1 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/crashes/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
