"""A real client of a deployed coordinator (gRPC stubs generated from the project's protos, and
HTTP), for the deployment tests (slurm_cluster_test.sh, netns_hosts_test.sh). Each subcommand
checks one thing, prints what it saw, and exits non-zero on failure.

  wait-live N [--at-least]  /health is 200 with N live replicas (or more); prints the seconds
  wait-replica ADDR live|gone   the replica registered at ADDR is live / out of rotation
  matches-cli               completions over gRPC (concurrent) and HTTP equal `shardwise generate`
  streams                   long streams; once each has a token, runs --then; checks how they end
  no-replica                a request while no replica is live fails UNAVAILABLE, saying so
"""
import argparse
import concurrent.futures
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
from shardwise.v1 import inference_pb2 as pb
from shardwise.v1 import inference_pb2_grpc as pb_grpc

TIMEOUT = 60  # seconds any one call may take
MODEL = "stories260K"
args = None


def check(condition, message):
    print(("ok: " if condition else "FAIL: ") + message, flush=True)
    if not condition:
        sys.exit(1)


def http(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{args.http}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def replicas():
    """(status, [replica]) of /health; (0, []) while the coordinator does not answer."""
    try:
        status, body = http("GET", "/health")
        return status, json.loads(body).get("replicas", [])
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return 0, []


def wait_for(predicate, what):
    start = time.time()
    while time.time() - start < args.timeout:
        if predicate():
            elapsed = time.time() - start
            print(f"ok: {what} after {elapsed:.2f} s", flush=True)
            return elapsed
        time.sleep(0.1)
    status, seen = replicas()
    check(False, f"{what} within {args.timeout} s (last /health {status}: {seen})")


def wait_live():
    def ready():
        status, seen = replicas()
        live = sum(r["live"] for r in seen)
        return status == 200 and (live >= args.count if args.at_least else live == args.count)
    wait_for(ready, f"/health 200 with {'at least ' if args.at_least else ''}{args.count} live "
             "replicas")


def wait_replica():
    def reached():
        _, seen = replicas()
        live = any(r["address"] == args.address and r["live"] for r in seen)
        return live == (args.state == "live")
    return wait_for(reached, f"replica {args.address} {args.state}")


def cli_generate(ids, max_tokens):
    out = subprocess.run([args.cli, "generate", "--model", args.model_dir, "--temperature", "0",
                          "--ids", ",".join(map(str, ids)), "--max-new-tokens", str(max_tokens),
                          "--log-level", "warn"],
                         check=True, capture_output=True, text=True, timeout=TIMEOUT)
    return json.loads(out.stdout)


def grpc_stream(stub, request):
    """(token_ids, finish_reason) of a whole stream."""
    ids, finish = [], ""
    for message in stub.Generate(request, timeout=TIMEOUT):
        ids += list(message.token_ids)
        finish = message.finish_reason or finish
    return ids, finish


def matches_cli():
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.grpc))
    prompts = [[1, 403, 407], [1, 300, 45, 263, 91], [1, 365]]
    for ids in prompts[:args.prompts]:
        expected = cli_generate(ids, 24)
        request = pb.GenerateRequest(model=MODEL, token_ids=pb.TokenIds(ids=ids),
                                     sampling=pb.SamplingParams(temperature=0, max_tokens=24))
        # Concurrent, so the router spreads them over every live replica.
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: grpc_stream(stub, request), range(6)))
        check(all(r[0] == expected["token_ids"] for r in results),
              f"gRPC prompt {ids} x6 = shardwise generate {expected['token_ids'][:8]}...")
        status, body = http("POST", "/v1/completions",
                            {"model": MODEL, "prompt": ids, "max_tokens": 24, "temperature": 0})
        text = json.loads(body)["choices"][0]["text"] if status == 200 else body
        check(status == 200 and text == expected["text"],
              f"HTTP /v1/completions prompt {ids} = shardwise generate {expected['text'][:30]!r}")


def streams():
    """Starts --count streams of --max-tokens tokens; when every stream has its first token,
    runs --then (a shell command). --expect ok: every stream completes in full (a drain);
    --expect cut: no stream hangs, at least one ends UNAVAILABLE with a message saying which
    replica failed, the others complete in full."""
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.grpc))
    request = pb.GenerateRequest(model=MODEL, token_ids=pb.TokenIds(ids=[1]),
                                 sampling=pb.SamplingParams(temperature=0, ignore_eos=True,
                                                            max_tokens=args.max_tokens))
    started = threading.Barrier(args.count + 1, timeout=TIMEOUT)
    outcomes = [None] * args.count

    def stream(i):
        tokens, first = 0, True
        try:
            for message in stub.Generate(request, timeout=TIMEOUT):
                tokens += len(message.token_ids)
                if first and tokens:
                    first = False
                    started.wait()
            outcomes[i] = ("OK", tokens, "")
        except grpc.RpcError as e:
            outcomes[i] = (e.code().name, tokens, e.details())
        except threading.BrokenBarrierError:
            outcomes[i] = ("NO_FIRST_TOKEN", tokens, "")
        if first:
            started.abort()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(args.count)]
    for t in threads:
        t.start()
    try:
        started.wait()
    except threading.BrokenBarrierError:
        for t in threads:
            t.join(TIMEOUT)
        check(False, f"every stream got a first token before the command: {outcomes}")
    start = time.time()
    subprocess.run(args.then, shell=True, check=True, timeout=TIMEOUT)
    print(f"ran {args.then!r} with {args.count} streams in flight", flush=True)
    if args.gone:
        args.address, args.state = args.gone, "gone"
        elapsed = wait_replica()
        check(elapsed <= args.gone_within,
              f"out of rotation within {args.gone_within} s (the heartbeat window and a sweep)")
    for t in threads:
        t.join(TIMEOUT)
    check(not any(t.is_alive() for t in threads),
          f"every stream ended, {time.time() - start:.2f} s after the command")
    print("outcomes (status, tokens, message):", outcomes, flush=True)
    full = [o for o in outcomes if o[0] == "OK" and o[1] == args.max_tokens]
    if args.expect == "ok":
        check(len(full) == args.count, f"all {args.count} streams completed in full")
        return
    failed = [o for o in outcomes if o not in full]
    check(len(failed) > 0 and all(o[0] == "UNAVAILABLE" and "replica" in o[2] for o in failed),
          f"{len(failed)} streams on the cut replica ended UNAVAILABLE naming it, "
          f"{len(full)} completed")


def no_replica():
    """With no live replica, a request fails at once with a status that says so."""
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.grpc))
    request = pb.GenerateRequest(model=MODEL, token_ids=pb.TokenIds(ids=[1, 403]),
                                 sampling=pb.SamplingParams(temperature=0, max_tokens=8))
    start = time.time()
    try:
        grpc_stream(stub, request)
        check(False, "a request with no live replica fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNAVAILABLE and "no live replica" in e.details(),
              f"no live replica: {e.code().name} {e.details()!r} in {time.time() - start:.2f} s")


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("wait-live")
    p.add_argument("count", type=int)
    p.add_argument("--at-least", action="store_true")
    p = sub.add_parser("wait-replica")
    p.add_argument("address")
    p.add_argument("state", choices=["live", "gone"])
    p = sub.add_parser("matches-cli")
    p.add_argument("--cli", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--prompts", type=int, default=3, help="how many of the prompts (1 to 3)")
    p = sub.add_parser("streams")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--max-tokens", type=int, default=400)
    p.add_argument("--then", required=True)
    p.add_argument("--expect", choices=["ok", "cut"], required=True)
    p.add_argument("--gone", metavar="ADDR", help="then time until the replica at ADDR is out "
                   "of rotation")
    p.add_argument("--gone-within", type=float, default=60, help="seconds --gone may take")
    sub.add_parser("no-replica")
    args = parser.parse_args()
    {"wait-live": wait_live, "wait-replica": wait_replica, "matches-cli": matches_cli,
     "streams": streams, "no-replica": no_replica}[args.command]()


if __name__ == "__main__":
    main()
