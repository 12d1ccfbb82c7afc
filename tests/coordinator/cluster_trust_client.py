"""The cluster's trust rules against real processes (see cluster_trust_test.sh); exits non-zero
on failure.

Phase "trust": a coordinator with a cluster token and the Registry on its own port, one shard
leader with the token, and a fake shard (here, in this process) that would record any prompt it
is sent. Strangers are refused everywhere; the fake shard never receives a prompt; nobody but
the holder can heartbeat or deregister a registration; bad cards are refused; a flood of
registrations is bounded in number and memory, and freed after the grace period.
Phase "restart": the coordinator was restarted while the shard is stopped (SIGSTOP): requests
get 503 + Retry-After / UNAVAILABLE, never 404, until the shard (SIGCONT) registers again."""
import argparse
import concurrent.futures
import gzip
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
from shardwise.v1 import inference_pb2 as pb
from shardwise.v1 import inference_pb2_grpc as pb_grpc
from shardwise.v1 import shard_pb2
from shardwise.v1 import shard_pb2_grpc

TIMEOUT = 30
args = None


def check(condition, message):
    print(("ok: " if condition else "FAIL: ") + message, flush=True)
    if not condition:
        sys.exit(1)


def http(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{args.http}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def token_metadata(token):
    return [("shardwise-cluster-token", token)] if token else []


def expect_code(code, call, what):
    try:
        call()
        check(False, f"{what}: succeeded, expected {code.name}")
    except grpc.RpcError as e:
        check(e.code() == code, f"{what} -> {e.code().name} {e.details()[:90]!r}")


def model_file(name):
    path = os.path.join(args.model_dir, name)
    return open(path).read() if os.path.exists(path) else ""


def card(address, name="stories260K", **fields):
    values = dict(name=name, address=address, device=shard_pb2.DEVICE_CPU, tp=1, capacity=8,
                  context_length=512, vocab_size=512, tokenizer_json=model_file("tokenizer.json"),
                  tokenizer_config_json=model_file("tokenizer_config.json"),
                  generation_config_json=model_file("generation_config.json"))
    values.update(fields)
    return shard_pb2.ModelCard(**values)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def complete(prompt="Once upon a time"):
    status, body, _ = http("POST", "/v1/completions", {"model": "stories260K", "prompt": prompt,
                                                       "max_tokens": 12, "temperature": 0})
    return status, json.loads(body)


class FakeShard(shard_pb2_grpc.ShardServicer):
    """What a thief would run: it records every prompt it is sent and answers with junk."""

    def __init__(self):
        self.prompts = []

    def Serve(self, request_iterator, context):
        for request in request_iterator:
            if request.HasField("start"):
                self.prompts.append(list(request.start.prompt_ids))
                yield shard_pb2.ShardServeResponse(updates=[shard_pb2.ShardRequestUpdate(
                    request_id=request.request_id, tokens=[shard_pb2.ShardToken(token_id=5)],
                    finish_reason="length")])

    def Identify(self, request, context):
        return shard_pb2.IdentifyResponse(instance_digest=hashlib.sha256(b"thief").hexdigest())


def wait_serving():
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            status, body, _ = http("GET", "/health")
            if status == 200 and any(r["live"] for r in json.loads(body)["replicas"]):
                return
        except OSError:
            pass
        time.sleep(0.2)
    check(False, "the shard registered within 60 s")


def strangers_are_refused(registry, public, shard):
    stranger_card = card(f"127.0.0.1:{args.fake_port}", device=shard_pb2.DEVICE_CUDA)
    expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: public.Register(stranger_card, timeout=TIMEOUT),
                "Register on the public gRPC port (--registry is elsewhere)")
    for token, who in (("", "no token"), ("wrong-token-wrong-token", "a wrong token")):
        md = token_metadata(token)
        expect_code(grpc.StatusCode.UNAUTHENTICATED,
                    lambda: registry.Register(stranger_card, metadata=md, timeout=TIMEOUT),
                    f"Register with {who}")
        expect_code(grpc.StatusCode.UNAUTHENTICATED,
                    lambda: registry.Heartbeat(shard_pb2.HeartbeatRequest(replica_id="x"),
                                               metadata=md, timeout=TIMEOUT),
                    f"Heartbeat with {who}")
        expect_code(grpc.StatusCode.UNAUTHENTICATED,
                    lambda: registry.Deregister(shard_pb2.DeregisterRequest(replica_id="x"),
                                                metadata=md, timeout=TIMEOUT),
                    f"Deregister with {who}")
        expect_code(grpc.StatusCode.UNAUTHENTICATED,
                    lambda: shard.Identify(shard_pb2.IdentifyRequest(), metadata=md,
                                           timeout=TIMEOUT), f"Shard.Identify with {who}")
        start = shard_pb2.ShardServeRequest(request_id=1, start=shard_pb2.ShardGenerateRequest(
            prompt_ids=[1, 2, 3], sampling=shard_pb2.ShardSamplingParams(max_tokens=4, top_p=1)))
        expect_code(grpc.StatusCode.UNAUTHENTICATED,
                    lambda: list(shard.Serve(iter([start]), metadata=md, timeout=TIMEOUT)),
                    f"Shard.Serve straight to the leader with {who}")


def theft_is_impossible(registry, fake):
    token = token_metadata(args.token)
    status, expected = complete()
    check(status == 200, f"a completion: {expected['choices'][0]['text']!r}")
    expect_code(grpc.StatusCode.ALREADY_EXISTS,
                lambda: registry.Register(card(args.shard_address, instance_secret="thief"),
                                          metadata=token, timeout=TIMEOUT),
                "Register at the live leader's address, not being its process")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: complete(), range(10)))
    text = expected["choices"][0]["text"]
    check(all(a[0] == 200 and a[1]["choices"][0]["text"] == text for a in answers),
          "10 users' completions all come from the real replica")
    check(fake.prompts == [], f"the fake shard received {len(fake.prompts)} prompts")


def registrations_have_one_holder(registry):
    _, metrics, _ = http("GET", "/metrics")
    replica_id = re.search(r'shardwise_replica_live\{[^}]*replica="([^"]+)"', metrics).group(1)
    token = token_metadata(args.token)
    expect_code(grpc.StatusCode.PERMISSION_DENIED,
                lambda: registry.Deregister(shard_pb2.DeregisterRequest(replica_id=replica_id),
                                            metadata=token, timeout=TIMEOUT),
                f"Deregister {replica_id} (its id is public) without its registration secret")
    expect_code(grpc.StatusCode.PERMISSION_DENIED,
                lambda: registry.Heartbeat(shard_pb2.HeartbeatRequest(replica_id=replica_id,
                                                                      registration_secret="0" * 64),
                                           metadata=token, timeout=TIMEOUT),
                "Heartbeat with a guessed registration secret")
    check(http("GET", "/health")[0] == 200, "the replica is still in rotation")


def bad_cards_are_refused(registry):
    token = token_metadata(args.token)
    expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                lambda: registry.Register(card("127.0.0.1:9", context_length=64), metadata=token,
                                          timeout=TIMEOUT),
                "a card whose context_length differs from the live replica's")
    expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                lambda: registry.Register(card("127.0.0.1:9", name="tiny", context_length=1),
                                          metadata=token, timeout=TIMEOUT),
                "context_length 1")
    status, answer = complete()
    check(status == 200 and answer["usage"]["completion_tokens"] == 12,
          "requests still succeed with the model's real context length")


def floods_are_bounded_and_freed(registry):
    with gzip.open(args.flood_tokenizer, "rt") as f:
        big = f.read()
    before = rss_mib(args.coordinator_pid)
    token = token_metadata(args.token)
    outcomes = {}
    for i in range(300):
        flood = card(f"127.0.0.1:{30000 + i}", name=f"flood-{i % 10}", tokenizer_json=big,
                     tokenizer_config_json="", generation_config_json="", vocab_size=32000)
        try:
            registry.Register(flood, metadata=token, timeout=TIMEOUT)
            outcomes["OK"] = outcomes.get("OK", 0) + 1
        except grpc.RpcError as e:
            outcomes[e.code().name] = outcomes.get(e.code().name, 0) + 1
    after = rss_mib(args.coordinator_pid)
    print(f"300 registrations of a {len(big) / 2**20:.1f} MiB tokenizer: {outcomes}; "
          f"coordinator RSS {before:.0f} -> {after:.0f} MiB", flush=True)
    _, body, _ = http("GET", "/health")
    held = len(json.loads(body)["replicas"])
    # Replicas out of rotation (these never heartbeat) give way to new ones, so the flood is
    # mostly accepted; what the registry holds stays within --max-replicas.
    check(held <= 256, f"the registry holds {held} replicas (at most 256)")
    # Each payload held (or kept as the capacity of a cleared string) would be 480 MiB.
    check(after - before < 200, f"memory grew {after - before:.0f} MiB (one shared tokenizer)")
    # They never heartbeat: out of rotation after 3 intervals, freed after the grace period.
    deadline = time.time() + 30
    while time.time() < deadline:
        _, models, _ = http("GET", "/v1/models")
        if [m["id"] for m in json.loads(models)["data"]] == ["stories260K"]:
            break
        time.sleep(0.2)
    _, models, _ = http("GET", "/v1/models")
    check([m["id"] for m in json.loads(models)["data"]] == ["stories260K"],
          "after the grace period the flood's models left /v1/models")
    status, body, _ = http("GET", "/health")
    check(status == 200 and len(json.loads(body)["replicas"]) == 1,
          "/health is 200 again and lists only the real replica")
    _, metrics, _ = http("GET", "/metrics")
    check("flood-" not in metrics, "/metrics no longer names the flood")
    print(f"coordinator RSS after the flood was freed: {rss_mib(args.coordinator_pid):.0f} MiB")


def trust_phase():
    wait_serving()
    fake = FakeShard()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    shard_pb2_grpc.add_ShardServicer_to_server(fake, server)
    server.add_insecure_port(f"127.0.0.1:{args.fake_port}")
    server.start()
    registry = shard_pb2_grpc.RegistryStub(grpc.insecure_channel(args.registry))
    public = shard_pb2_grpc.RegistryStub(grpc.insecure_channel(args.grpc))
    shard = shard_pb2_grpc.ShardStub(grpc.insecure_channel(args.shard_address))
    strangers_are_refused(registry, public, shard)
    theft_is_impossible(registry, fake)
    registrations_have_one_holder(registry)
    bad_cards_are_refused(registry)
    floods_are_bounded_and_freed(registry)
    server.stop(0)


def restart_phase():
    """The coordinator has just restarted; the shard is stopped, so it cannot re-register."""
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            http("GET", "/health")
            break
        except OSError:
            time.sleep(0.05)
    status, body, headers = http("POST", "/v1/completions",
                                 {"model": "stories260K", "prompt": "Hi", "max_tokens": 4})
    check(status == 503 and int(headers.get("Retry-After", "0")) >= 1 and
          "registering again" in body, f"HTTP in the registration window: {status}, Retry-After "
          f"{headers.get('Retry-After')}: {body[:80]!r}")
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.grpc))
    request = pb.GenerateRequest(model="stories260K", text="Hi",
                                 sampling=pb.SamplingParams(max_tokens=4))
    try:
        list(stub.Generate(request, timeout=TIMEOUT))
        check(False, "gRPC in the registration window succeeded")
    except grpc.RpcError as e:
        pushback = dict(e.trailing_metadata() or ()).get("grpc-retry-pushback-ms")
        check(e.code() == grpc.StatusCode.UNAVAILABLE and pushback,
              f"gRPC in the registration window: {e.code().name}, pushback {pushback} ms")
    os.kill(args.shard_pid, signal.SIGCONT)
    seen = set()
    start = time.time()
    while time.time() - start < 20:
        status, body, _ = http("POST", "/v1/completions",
                               {"model": "stories260K", "prompt": "Hi", "max_tokens": 4})
        seen.add(status)
        if status == 200:
            break
        time.sleep(0.02)
    check(seen <= {503, 200} and 200 in seen,
          f"until the shard registered again ({time.time() - start:.2f} s after SIGCONT): "
          f"statuses {sorted(seen)}, never 404")
    status, body, _ = http("POST", "/v1/completions", {"model": "nope", "prompt": "Hi"})
    check(status == 503, f"an unknown model inside the window: {status}")
    time.sleep(args.window_s)
    status, body, _ = http("POST", "/v1/completions", {"model": "nope", "prompt": "Hi"})
    check(status == 404 and "not served here" in body, "after the window, unknown is 404")


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=["trust", "restart"], required=True)
    for flag in ("--grpc", "--http", "--registry", "--shard-address", "--token", "--model-dir",
                 "--flood-tokenizer"):
        parser.add_argument(flag)
    parser.add_argument("--fake-port", type=int)
    parser.add_argument("--coordinator-pid", type=int)
    parser.add_argument("--shard-pid", type=int)
    parser.add_argument("--window-s", type=float, default=5)
    args = parser.parse_args()
    trust_phase() if args.phase == "trust" else restart_phase()


if __name__ == "__main__":
    main()
