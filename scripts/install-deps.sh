#!/usr/bin/env bash
# Installs every Debian package shardwise needs to build and test. Idempotent and quiet: when
# all packages are present it changes nothing. The CUDA toolkit (nvcc, cuBLAS, NCCL) is not a
# Debian package here; it is found at /usr/local/cuda when present and skipped otherwise.
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
  python3-numpy
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
