#!/usr/bin/env bash
# README command 2: install dependencies, check the tree's shape, build, and run every test
# that runs on this machine: the normal build, then the same suite under AddressSanitizer +
# UndefinedBehaviorSanitizer.
# GPU tests skip with a message where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-tree.sh  # clang-format and the library order, before anything is built

scripts/build.sh build
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600

# The sanitizer build leaves CUDA out (nvcc objects are not instrumented; the GPU tests run
# on the GPU machine under compute-sanitizer instead) and the benchmarks (run by hand).
scripts/build.sh build-asan -DSHARDWISE_SANITIZE=address,undefined -DSHARDWISE_CUDA=OFF \
  -DSHARDWISE_BENCHMARKS=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 900
