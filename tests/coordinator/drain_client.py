"""Keeps N streams (half gRPC, half HTTP server-sent events) running against one replica group,
sends SIGTERM to the group's mpirun, and checks that the group drained: no stream that had
started was lost (each ended with every token it asked for, and usage says so), streams were
in flight when the leader deregistered, and new requests were refused cleanly after it. See
group_drain_test.sh. Exits non-zero on failure."""
import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request

import grpc
from shardwise.v1 import inference_pb2 as pb
from shardwise.v1 import inference_pb2_grpc as pb_grpc

TIMEOUT = 120


def check(condition, message):
    print(("ok: " if condition else "FAIL: ") + message, flush=True)
    if not condition:
        sys.exit(1)


def health(http):
    try:
        with urllib.request.urlopen(f"http://{http}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def grpc_stream(stub, max_tokens, record):
    request = pb.GenerateRequest(model="stories260K", token_ids=pb.TokenIds(ids=[1]),
                                 sampling=pb.SamplingParams(temperature=0, max_tokens=max_tokens,
                                                            ignore_eos=True))
    try:
        for message in stub.Generate(request, timeout=TIMEOUT):
            record["tokens"] += len(message.token_ids)
            if message.HasField("usage"):
                record["usage"] = message.usage.completion_tokens
        record["status"] = "OK"
    except grpc.RpcError as e:
        record["status"], record["detail"] = e.code().name, e.details()


def http_stream(http, max_tokens, record):
    # logprobs: every token travels in a chunk of its own, so chunks count tokens.
    body = {"model": "stories260K", "prompt": [1], "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, "stream": True, "logprobs": 0,
            "stream_options": {"include_usage": True}}
    request = urllib.request.Request(f"http://{http}/v1/completions", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            for line in response:
                line = line.decode().strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[len("data: "):])
                if "error" in event:
                    record["status"] = event["error"]["code"]
                    record["detail"] = event["error"]["message"]
                    return
                for choice in event["choices"]:  # none in the last chunk, which has the usage
                    logprobs = choice["logprobs"]
                    record["tokens"] += len(logprobs["tokens"]) if logprobs else 0
                if event.get("usage"):
                    record["usage"] = event["usage"]["completion_tokens"]
        record["status"] = "OK"
    except urllib.error.HTTPError as e:
        record["status"], record["detail"] = f"HTTP {e.code}", e.read().decode()[:200]


def worker(kind, args, stop, records, lock):
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.grpc))
    while not stop.is_set():
        record = {"kind": kind, "start": time.time(), "tokens": 0, "usage": None, "status": None,
                  "detail": ""}
        if kind == "grpc":
            grpc_stream(stub, args.max_tokens, record)
        else:
            http_stream(args.http, args.max_tokens, record)
        record["end"] = time.time()
        with lock:
            records.append(record)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--mpirun-pid", type=int, required=True)
    parser.add_argument("--streams", type=int, default=8)
    # Streams long enough (~0.3 s each here) to outlast the /health probe that sees the
    # deregistration: with 96 tokens, a loaded machine once saw every stream end before it.
    parser.add_argument("--max-tokens", type=int, default=384)
    args = parser.parse_args()

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            status, body = health(args.http)
            if status == 200 and any(r["live"] for r in body["replicas"]):
                break
        except OSError:
            pass
        time.sleep(0.2)
    check(health(args.http)[0] == 200, "the TP=2 group is registered")

    stop, lock, records = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=worker, args=("grpc" if i % 2 == 0 else "http", args, stop,
                                                     records, lock))
               for i in range(args.streams)]
    for t in threads:
        t.start()
    time.sleep(2)  # streams come and go; `streams` of them always in flight
    t_term = time.time()
    os.kill(args.mpirun_pid, signal.SIGTERM)
    t_dereg = None
    while time.time() < t_term + 60:
        status, body = health(args.http)
        if not any(r["live"] for r in body["replicas"]):
            t_dereg = time.time()
            break
        time.sleep(0.05)
    stop.set()
    check(t_dereg is not None, f"the leader left rotation {t_dereg - t_term:.1f} s after SIGTERM "
          "to mpirun" if t_dereg else "the leader never left rotation")
    for t in threads:
        t.join(TIMEOUT)
    check(not any(t.is_alive() for t in threads), "no stream hangs")

    started = [r for r in records if r["tokens"] > 0]
    refused = [r for r in records if r["tokens"] == 0]
    in_flight = [r for r in started if r["start"] < t_dereg < r["end"]]
    lost = [r for r in started if r["status"] != "OK" or r["tokens"] != args.max_tokens or
            r["usage"] != args.max_tokens]
    print(f"streams: {len(started)} started, {len(in_flight)} in flight at deregistration, "
          f"{len(refused)} refused before any token", flush=True)
    for r in lost[:10]:
        print("lost:", r)
    check(len(in_flight) >= args.streams // 2,
          f"{len(in_flight)} streams were running when the group began to drain")
    check(not lost, f"no stream lost: every started stream got its {args.max_tokens} tokens")
    # Those refused came after the deregistration (no replica left) or reached the draining
    # leader first: a clean UNAVAILABLE / 503, never a half-written answer.
    check(all(r["status"] in ("UNAVAILABLE", "HTTP 503") for r in refused),
          f"refused requests say UNAVAILABLE: {sorted(set(r['status'] for r in refused))}")


if __name__ == "__main__":
    main()
