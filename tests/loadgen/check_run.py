"""Checks one shardwise-loadgen JSON document; exits non-zero, saying why, on the first failure.

Always: every request sent has a row, and finished + errors = sent; each row's inter-token
gaps are one fewer than its token messages, which do not outnumber its tokens; the summary's
output tokens are the sum of the rows'.
Usage: check_run.py RUN.json [--sent N] [--errors N] [--output-tokens N] [--agree]
                             [--error-code CODE] [--min-input-tokens N] [--itl]
(A server may send several tokens in one message when the client falls behind, so the gaps
are per message.)"""
import argparse
import json
import sys


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--sent", type=int)
    parser.add_argument("--errors", type=int)
    parser.add_argument("--min-errors", type=int)
    parser.add_argument("--output-tokens", type=int)
    parser.add_argument("--agree", action="store_true", help="the server's output count agrees")
    parser.add_argument("--error-code", help="every error has this code")
    parser.add_argument("--min-input-tokens", type=int, help="every finished row has at least")
    parser.add_argument("--itl", action="store_true", help="finished rows have a TTFT")
    args = parser.parse_args()
    with open(args.run) as f:
        run = json.load(f)
    s, rows = run["summary"], run["requests"]
    name = run["config"]["label"] or args.run
    if len(rows) != s["sent"]:
        fail(f"{name}: {len(rows)} rows for {s['sent']} requests sent")
    if s["finished"] + s["errors"] != s["sent"]:
        fail(f"{name}: finished {s['finished']} + errors {s['errors']} != sent {s['sent']}")
    if sorted(r["index"] for r in rows) != list(range(len(rows))):
        fail(f"{name}: request indices are not 0..{len(rows) - 1}")
    if sum(1 for r in rows if r["error"]) != s["errors"]:
        fail(f"{name}: rows with errors differ from the summary's count")
    if sum(r["output_tokens"] for r in rows) != s["output_tokens"]:
        fail(f"{name}: output tokens of the rows differ from the summary")
    for r in rows:
        if r["messages"] > r["output_tokens"] or (r["messages"] and
                                                  len(r["itl_s"]) != r["messages"] - 1):
            fail(f"{name}: row {r['index']}: {r['messages']} messages, {len(r['itl_s'])} gaps, "
                 f"{r['output_tokens']} tokens")
        if args.itl and not r["error"] and (r["ttft_s"] is None or r["messages"] < 1):
            fail(f"{name}: row {r['index']} has no TTFT")
        if args.min_input_tokens and not r["error"] and r["input_tokens"] < args.min_input_tokens:
            fail(f"{name}: row {r['index']}: {r['input_tokens']} input tokens")
        if args.error_code and r["error"] and not r["error"].startswith(args.error_code + ":"):
            fail(f"{name}: row {r['index']}: error {r['error']!r}, expected {args.error_code}")
    for key, want in (("sent", args.sent), ("errors", args.errors),
                      ("output_tokens", args.output_tokens)):
        if want is not None and s[key] != want:
            fail(f"{name}: {key} = {s[key]}, expected {want}")
    if args.min_errors is not None and s["errors"] < args.min_errors:
        fail(f"{name}: {s['errors']} errors, expected at least {args.min_errors}")
    if args.agree:
        counters = [c for c in run.get("server", {}).get("counters", [])
                    if c["quantity"] == "output_tokens" and c["metric"]]
        if not counters:
            fail(f"{name}: no server output-token counter: {run.get('server')}")
        c = counters[0]
        if not c["agree"] or c["server"] != s["output_tokens"]:
            fail(f"{name}: server counted {c['server']} output tokens ({c['metric']}), "
                 f"loadgen {s['output_tokens']}")
    print(f"ok: {name}: {s['sent']} sent, {s['finished']} finished, {s['errors']} errors, "
          f"{s['output_tokens']} output tokens")


if __name__ == "__main__":
    main()
