#!/usr/bin/env bash
# The runtime layout the Dockerfile describes, without a container registry: a Debian 12 root
# made by debootstrap (minbase), the build staged and its packages installed by the same
# scripts/install-runtime.sh calls as the Dockerfile's, then, inside the root (chroot, with its
# own /proc), the three binaries: --version, a generation, and a coordinator with a shard group
# under mpirun serving a completion that the host's client sends over loopback and that matches
# the build tree's own answer. The systemd units installed there pass `systemd-analyze verify`.
#
# The debootstrapped root is cached (CACHE_DIR/debian12-minbase.tar), and so is the root with
# the runtime packages, keyed by their list; the first run needs a Debian mirror
# (SHARDWISE_DEBIAN_MIRROR, default http://deb.debian.org/debian) and takes a few minutes.
# Usage: runtime_root_test.sh SOURCE_DIR BUILD_DIR CACHE_DIR
set -euo pipefail
source_dir=$1 build_dir=$2 cache=$3
mirror=${SHARDWISE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok (${SECONDS} s): $*"; }

[ "$(id -u)" -eq 0 ] || { echo "SKIP: chroot and debootstrap need root"; exit 0; }
for tool in debootstrap chroot unshare systemd-analyze curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/install-deps.sh"
done

work=$(mktemp -d)
root=$work/root
cleanup() {
  [ -f "$work/pids" ] && while read -r pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done <"$work/pids"
  sleep 1
  [ -f "$work/pids" ] && while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$work/pids"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$cache" "$root"

# 1. Debian 12 (minbase), once.
base=$cache/debian12-minbase.tar
if [ ! -f "$base" ]; then
  echo "debootstrap bookworm from $mirror (once; cached in $base)"
  debootstrap --variant=minbase bookworm "$work/bootstrap" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap from $mirror failed (is the mirror reachable?)"; }
  tar -C "$work/bootstrap" -cf "$base.partial" . && mv "$base.partial" "$base"
  rm -rf "$work/bootstrap"
fi

# 2. The Dockerfile's runtime stage: stage the build, copy it in, install its packages.
"$source_dir/scripts/install-runtime.sh" stage "$build_dir" "$work/stage"
key=$(sha256sum <"$work/stage/usr/local/share/shardwise/runtime-packages" | cut -c1-16)
with_packages=$cache/debian12-runtime-$key.tar
if [ -f "$with_packages" ]; then
  tar -C "$root" -xf "$with_packages"
  cp -a "$work/stage/." "$root/"
else
  tar -C "$root" -xf "$base"
  # This host's archives (debian:12 has the release, its updates and security), so the root
  # gets the library versions the binaries were built against.
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp /etc/apt/sources.list "$root/etc/apt/sources.list" 2>/dev/null || : >"$root/etc/apt/sources.list"
  cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/" 2>/dev/null || true
  cp -a "$work/stage/." "$root/"
  "$source_dir/scripts/install-runtime.sh" packages "$root"
  rm -f "$cache"/debian12-runtime-*.tar
  tar -C "$root" -cf "$with_packages.partial" . && mv "$with_packages.partial" "$with_packages"
fi
ok "the runtime root: $(wc -l <"$root/usr/local/share/shardwise/runtime-packages") packages," \
   "$(du -sh "$root" | cut -f1)"
[ ! -e "$root$source_dir" ] || fail "the root holds the source tree"

# Inside the root, with /proc, /dev/shm and /tmp of its own (a private mount namespace, so
# nothing stays mounted), as root: mpirun needs --allow-run-as-root.
in_root() {
  unshare --mount --fork sh -c '
    root=$1; shift
    mount -t proc proc "$root/proc" && mount -t tmpfs tmpfs "$root/dev/shm" &&
      mount -t tmpfs tmpfs "$root/tmp" && exec chroot "$root" "$@"' in_root "$root" "$@"
}
mpirun="mpirun --allow-run-as-root --oversubscribe"

for binary in shardwise shardwise-shard shardwise-coordinator; do
  line=$(in_root "/usr/local/bin/$binary" --version) || fail "$binary --version in the root"
  [ "$line" = "$("$build_dir/bin/$binary" --version)" ] || fail "$binary: '$line'"
done
ok "--version of the three binaries: $line"

expected=$("$build_dir/bin/shardwise" generate --prompt "Once upon a time" --max-new-tokens 12 \
           --log-level warn)
actual=$(in_root /usr/local/bin/shardwise generate --prompt "Once upon a time" \
         --max-new-tokens 12 --log-level warn) || fail "shardwise generate in the root"
[ "$actual" = "$expected" ] || fail "generate in the root: $actual, expected $expected"
ok "shardwise generate with the installed default model: $actual"

read -r grpc_port http_port shard_port < <(python3 -c "
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(('127.0.0.1', 0))
print(*[x.getsockname()[1] for x in s])")
setsid bash -c "$(declare -f in_root); root=$root; in_root /usr/local/bin/shardwise-coordinator \
  --grpc 127.0.0.1:$grpc_port --http 127.0.0.1:$http_port --heartbeat-ms 200" \
  >"$work/coordinator.log" 2>&1 &
echo $! >>"$work/pids"
setsid bash -c "$(declare -f in_root); root=$root; in_root $mpirun -np 2 \
  /usr/local/bin/shardwise-shard --tp 2 --threads 1 --coordinator 127.0.0.1:$grpc_port \
  --listen 127.0.0.1:$shard_port" >"$work/shard.log" 2>&1 &
echo $! >>"$work/pids"
ready=0
for _ in $(seq 600); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$http_port/health/ready")" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ $ready -ne 1 ]; then
  tail -20 "$work/coordinator.log" "$work/shard.log"
  fail "the coordinator in the root never became ready"
fi
ok "coordinator + a TP=2 shard group under mpirun in the root: ready"
answer=$(curl -s "127.0.0.1:$http_port/v1/completions" \
  -d '{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}')
text=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['choices'][0]['text'])" "$answer")
want=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['text'])" "$expected")
[ "$text" = "$want" ] || fail "the completion: '$text', expected '$want' ($answer)"
ok "a completion through the root's coordinator: '$text'"

# The units as installed, checked by the host's systemd against the root's binaries (the root
# has no systemd): their paths point into the root, the rest is as shipped.
mkdir -p "$work/units"
for unit in shardwise-coordinator.service shardwise-shard@.service; do
  sed -e "s#/usr/local/bin/#$root/usr/local/bin/#g" -e "s#/usr/bin/mpirun#$root/usr/bin/mpirun#g" \
    "$root/usr/local/lib/systemd/system/$unit" >"$work/units/${unit/@./@demo.}"
done
out=$(systemd-analyze verify "$work/units/shardwise-coordinator.service" \
      "$work/units/shardwise-shard@demo.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
ok "systemd-analyze verify: the coordinator and shard-group units"
echo PASS
