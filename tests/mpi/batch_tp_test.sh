#!/usr/bin/env bash
# `mpirun -np 2 shardwise batch --tp 2` writes the same results as `shardwise batch`, with
# cache pressure and chunked prefill in play. Usage: batch_tp_test.sh CLI_BINARY MPIRUN...
set -euo pipefail
cli=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/requests.jsonl" <<'JSONL'
{"id": "a", "prompt": "Once upon a time", "max_tokens": 40}
{"id": "b", "token_ids": [1], "max_tokens": 30, "ignore_eos": true}
{"id": "c", "prompt": "The little dog", "max_tokens": 25}
{"id": "d", "token_ids": [1, 403, 407], "max_tokens": 35, "temperature": 0.8, "seed": 11}
JSONL
options=(--input "$dir/requests.jsonl" --num-kv-blocks 16 --block-size 4 --max-batch-tokens 6)
"$cli" batch "${options[@]}" --output "$dir/one.jsonl" --log-level warn
"$@" -np 2 "$cli" batch "${options[@]}" --tp 2 --output "$dir/tp2.jsonl" --log-level warn
# The seeded sampled request (d) must match too: TP logits agree with one process to ~1e-6,
# far below what could move a seeded draw across a token boundary.
if ! diff <(jq -c '{id, token_ids, finish_reason}' "$dir/one.jsonl") \
          <(jq -c '{id, token_ids, finish_reason}' "$dir/tp2.jsonl"); then
  echo "FAIL: TP=2 batch results differ from one process"
  exit 1
fi
[ "$(wc -l <"$dir/tp2.jsonl")" -eq 4 ] || { echo "FAIL: expected 4 result lines"; exit 1; }
echo "PASS: $(wc -l <"$dir/tp2.jsonl") results equal"
