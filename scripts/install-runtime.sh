#!/usr/bin/env bash
# The runtime layout of shardwise, as the Dockerfile's runtime image holds it and as
# tests/deploy/runtime_root_test.sh checks it in a debootstrapped Debian 12 root: the three
# binaries in /usr/local/bin, the default model in /usr/local/share/shardwise/models, example
# configs in /usr/local/share/shardwise, the systemd units in /usr/local/lib/systemd/system, and
# the Debian packages that hold the binaries' libraries.
#
#   scripts/install-runtime.sh stage BUILD_DIR STAGE_DIR
#       Installs the build (cmake --install, prefix /usr/local) under STAGE_DIR and writes
#       STAGE_DIR/usr/local/share/shardwise/runtime-packages: the packages, on this (the build)
#       machine, that own every shared library the binaries load, and openmpi-bin (mpirun).
#       Libraries no package owns are copied to STAGE_DIR/usr/local/lib instead.
#   scripts/install-runtime.sh packages ROOT
#       With the staged tree copied into ROOT (/ in a container; a Debian root otherwise,
#       entered with chroot): apt-get installs runtime-packages there, then checks that every
#       library of every binary resolves.
set -euo pipefail

binaries=(shardwise shardwise-shard shardwise-coordinator)
prefix=/usr/local
list=share/shardwise/runtime-packages

# Runs a command in ROOT: directly for /, else through chroot.
in_root() {
  local root=$1
  shift
  if [ "$root" = / ]; then "$@"; else chroot "$root" "$@"; fi
}

# The package that owns a library, under any of the names merged /usr gives it (ldd may say
# /lib/... where dpkg knows /usr/lib/..., or the other way round); empty when none does.
owner_of() {
  local path owner
  for path in "$1" "$(readlink -f "$1")" "/usr${1}" "${1#/usr}"; do
    owner=$(dpkg -S "$path" 2>/dev/null | grep -v '^diversion' | head -1) || true
    if [ -n "$owner" ]; then
      echo "${owner%%:*}"
      return 0
    fi
  done
  return 0
}

stage() {
  local build=$1 stage=$2
  DESTDIR="$stage" cmake --install "$build" --prefix "$prefix" >/dev/null
  local packages=(openmpi-bin) library owner
  mkdir -p "$stage$prefix/lib"
  while read -r library; do
    owner=$(owner_of "$library")
    if [ -n "$owner" ]; then
      packages+=("$owner")
    else
      cp -L "$library" "$stage$prefix/lib/"
    fi
  done < <(for binary in "${binaries[@]}"; do
             ldd "$stage$prefix/bin/$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
           done | sort -u)
  printf '%s\n' "${packages[@]}" | sort -u >"$stage$prefix/$list"
  echo "install-runtime: staged ${binaries[*]} in $stage$prefix;" \
       "$(wc -l <"$stage$prefix/$list") runtime packages"
}

packages() {
  local root=$1
  mapfile -t wanted <"$root$prefix/$list"
  in_root "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  in_root "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${wanted[@]}" >/dev/null
  in_root "$root" ldconfig
  local missing
  for binary in "${binaries[@]}"; do
    missing=$(in_root "$root" ldd "$prefix/bin/$binary" | grep "not found" || true)
    if [ -n "$missing" ]; then
      echo "install-runtime: $binary cannot load: $missing" >&2
      exit 1
    fi
  done
  echo "install-runtime: ${#wanted[@]} packages installed in $root; every library resolves"
}

case "${1:-}" in
  stage) [ $# -eq 3 ] || { echo "usage: $0 stage BUILD_DIR STAGE_DIR" >&2; exit 2; }; stage "$2" "$3" ;;
  packages) [ $# -eq 2 ] || { echo "usage: $0 packages ROOT" >&2; exit 2; }; packages "$2" ;;
  *) echo "usage: $0 stage BUILD_DIR STAGE_DIR | packages ROOT" >&2; exit 2 ;;
esac
