#!/usr/bin/env bash
# Installs every Debian package shardwise needs to build and test. Idempotent and quiet: when
# all packages are present it changes nothing. The CUDA toolkit (nvcc, cuBLAS, NCCL) is not a
# Debian package here; it is found at /usr/local/cuda when present and skipped otherwise.
# For the operations tests: grpc-proto (health and reflection .proto files for the Python
# client), prometheus (promtool), debootstrap (the Debian 12 root of tests/deploy) and systemd
# (systemd-analyze verify of deploy/systemd).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format git python3
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev libpcre2-dev libicu-dev zlib1g-dev
  libopenmpi-dev openmpi-bin jq
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libcpp-httplib-dev
  libyaml-cpp-dev libssl-dev openssl
  python3-grpcio python3-protobuf curl
  slurmctld slurmd slurm-client munge iproute2 procps util-linux
  grpc-proto prometheus debootstrap debian-archive-keyring systemd
  clang libclang-rt-14-dev libomp-dev llvm  # scripts/fuzz.sh: libFuzzer, its OpenMP, symbolizer
  nodejs
  python3-yaml python3-matplotlib python3-numpy
)
# npm comes with some nodejs builds (NodeSource's) and is its own Debian package otherwise.
command -v npm >/dev/null || packages+=(npm)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi
# The official openai client for tests/coordinator/openai_npm_test.sh (from the npm registry).
"$(dirname "$0")/install-npm-client.sh"
