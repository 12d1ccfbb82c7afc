#!/usr/bin/env bash
# `mpirun -np N shardwise-shard --tp T --ids ...` prints, once, the JSON `shardwise generate`
# prints, for TP 1, 2 and 4 and for 2 replicas of TP 1.
# Usage: shard_one_shot_test.sh SHARD_BINARY CLI_BINARY TESTDATA_DIR MPIRUN...
set -euo pipefail
shard=$1 cli=$2 testdata=$3
shift 3
mpirun=("$@")
check() {  # model np tp ids
  local expected actual
  expected=$("$cli" generate --model "$1" --ids "$4" --max-new-tokens 16 --temperature 0 --log-level warn)
  actual=$("${mpirun[@]}" -np "$2" "$shard" --model "$1" --tp "$3" --ids "$4" --max-new-tokens 16 \
           --temperature 0 --log-level warn)
  if [ "$actual" != "$expected" ]; then
    echo "FAIL: $1 np=$2 tp=$3: got '$actual', expected '$expected'"
    exit 1
  fi
  echo "ok: $(basename "$1") np=$2 tp=$3 -> $actual"
}
stories=$(cd "$(dirname "$0")/../.." && pwd)/assets/models/stories260K
check "$stories" 1 1 1
check "$stories" 2 2 1,403,407,261,378
check "$stories" 4 4 1
check "$stories" 2 1 1
check "$testdata/hf-tiny/tiny-llama-gqa-f32" 4 4 5,17,9
# Errors reach the user: an id outside the vocabulary fails the whole group with a message.
if err=$("${mpirun[@]}" -np 2 "$shard" --tp 2 --ids 1,9999 --log-level warn 2>&1); then
  echo "FAIL: an out-of-vocabulary id succeeded"; exit 1
fi
grep -q "token id 9999" <<<"$err" || { echo "FAIL: no clear error: $err"; exit 1; }
echo "PASS"
