"""Probes a running coordinator as issue 15's hostile operator did; see hardening_test.sh.
Exits non-zero on the first failed check. No shard runs: every request here fails before routing
(the registered replica's address is never dialled), or is about the front ends themselves."""
import argparse
import json
import socket
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

args = None


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}")
        sys.exit(1)
    print(f"ok: {message}")


def http(method, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{args.http}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw_http(payload, timeout=20):
    """Sends raw bytes on a fresh connection; returns the status line's code (0 if none)."""
    with socket.create_connection(("127.0.0.1", args.http_port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except OSError:
            pass  # the server may close while we still send: its answer may be readable
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    fields = answer.split(b" ")
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


def card(name, address, chat_template):
    c = shard_pb2.ModelCard(name=name, address=address, context_length=512, tp=1, capacity=1,
                            dtype="f32", device=shard_pb2.DEVICE_CPU)
    with open(f"{args.model_dir}/tokenizer.json") as f:
        c.tokenizer_json = f.read()
    c.tokenizer_config_json = json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "chat_template": chat_template})
    return c


def health_answers(timeout):
    start = time.monotonic()
    try:
        status, _ = http("GET", "/health", timeout=timeout)
    except OSError:  # no answer within the timeout
        status = 0
    return status in (200, 503), time.monotonic() - start


def registration(channel):
    registry = shard_pb2_grpc.RegistryStub(channel)
    for what, template in [
            ("5,000 nested '('", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"),
            ("20,000 nested if", "{% if x %}" * 20000 + "{% endif %}" * 20000),
            ("100,000 '['", "{{ " + "[" * 100000 + " }}"),
            ("100,000 not", "{{ " + "not " * 100000 + "x }}"),
            ("5,000 nested for", "{% for a in b %}" * 5000 + "{% endfor %}" * 5000),
            ("a 100,000 '+' chain", "{{ 1" + " + 1" * 100000 + " }}"),
            ("a 50,000 filter chain", "{{ 'a'" + " | trim" * 50000 + " }}")]:
        try:
            registry.Register(card("evil", "127.0.0.1:9", template), timeout=30)
            check(False, f"a template of {what} is refused at registration")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "nested" in e.details(),
                  f"a template of {what} is refused: {e.code()} {e.details()[:60]}")
    alive, _ = health_answers(10)
    check(alive, "the coordinator lives on after the hostile registrations")

    registry.Register(card("stories", "127.0.0.1:9", "{{ messages[0].content }}"), timeout=30)
    registry.Register(card("slow", "127.0.0.1:8", "{{ 'a' * 100000000 }}"), timeout=30)
    start = time.monotonic()
    status, body = http("POST", "/v1/chat/completions",
                        {"model": "slow", "messages": [{"role": "user", "content": "hi"}]})
    elapsed = time.monotonic() - start
    check(status == 400 and "limit of" in body and elapsed < 5,
          f"'a' * 10**8 in a template fails the chat request at once ({elapsed:.2f} s): {body[:80]}")


def undecodable(channel):
    garbage = b"\xff\xff\xff\xff\x0f\x01"  # a truncated varint field: no protobuf parses it
    calls = [
        (channel.unary_stream("/shardwise.v1.Inference/Generate"), True),
        (channel.unary_unary("/shardwise.v1.Inference/ListModels"), False),
        (channel.unary_unary("/shardwise.v1.Inference/Health"), False),
        (channel.unary_unary("/shardwise.v1.Registry/Register"), False),
        (channel.unary_unary("/shardwise.v1.Registry/Heartbeat"), False),
    ]
    for call, streaming in calls:
        try:
            result = call(garbage, timeout=10)
            if streaming:
                list(result)
            check(False, "an undecodable request is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT,
                  f"an undecodable request gets INVALID_ARGUMENT: {e.code()} {e.details()}")


def expect_invalid_argument(call, needle, message):
    try:
        list(call())
        check(False, message)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in e.details(),
              f"{message}: {e.details()}")


def integers_and_prompts(channel):
    stub = pb_grpc.InferenceStub(channel)
    wraps = 2**32 + 1
    ids = pb.GenerateRequest(model="stories", token_ids=pb.TokenIds(ids=[1, wraps]))
    expect_invalid_argument(lambda: stub.Generate(ids, timeout=10), "4294967297",
                            "gRPC token id 2^32+1 is refused, not read as 1")
    logprobs = pb.GenerateRequest(model="stories", text="Once",
                                  sampling=pb.SamplingParams(logprobs=wraps))
    expect_invalid_argument(lambda: stub.Generate(logprobs, timeout=10), "4294967297",
                            "gRPC logprobs 2^32+1 is refused")
    for body, needle in [
            ({"model": "stories", "prompt": [1, wraps]}, "4294967297"),
            ({"model": "stories", "prompt": "x", "logprobs": wraps}, "4294967297"),
            ({"model": "stories", "prompt": "x", "top_k": wraps}, "top_k"),
            ({"model": "stories", "prompt": "x", "max_tokens": wraps}, "max_tokens"),
            ({"model": "stories", "prompt": ""}, "the prompt is empty")]:
        status, text = http("POST", "/v1/completions", body)
        check(status == 400 and needle in text, f"HTTP {json.dumps(body)[:60]} -> {status} {text[:70]}")


def body_limits():
    chunk = b"x" * (1 << 20)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
    for path in (b"/v1/completions", b"/v1/chat/completions", b"/v1/embeddings", b"/tokenize",
                 b"/detokenize"):
        head = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        check(raw_http(head + chunked) == 413, f"a 6 MiB chunked body to {path.decode()} gets 413")
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    check(raw_http(head % (6 << 20) + b"x" * (6 << 20)) == 413,
          "a 6 MiB body with its Content-Length gets 413, read to its end (no reset)")
    check(raw_http(head % (1 << 30)) == 413, "a 1 GiB Content-Length gets 413 before its body is sent")
    many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n"
    check(raw_http(many) == 431, "200 headers get 431")
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * (100 << 10) + b"\r\n\r\n"
    check(raw_http(huge) in (431, 0), "a 100 KiB header is refused (431, or the connection cut)")


def slowloris():
    """70 connections send a header line every 1-3 s; /health must keep answering, and the
    server cuts them once their head is late."""
    stop = threading.Event()
    cut = []
    lock = threading.Lock()

    def dribble(i):
        s = socket.create_connection(("127.0.0.1", args.http_port), timeout=30)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        n = 0
        try:
            while not stop.is_set():
                time.sleep(1 + (i % 3))
                s.sendall(b"X-Slow-%d: %d\r\n" % (n, i))
                n += 1
        except OSError:
            with lock:
                cut.append(i)
        finally:
            s.close()

    threads = [threading.Thread(target=dribble, args=(i,), daemon=True) for i in range(70)]
    for t in threads:
        t.start()
    time.sleep(2)
    worst = 0.0
    for _ in range(5):
        alive, elapsed = health_answers(5)
        check(alive, f"/health answers while 70 slowloris connections dribble ({elapsed:.2f} s)")
        worst = max(worst, elapsed)
        time.sleep(0.5)
    check(worst < 2, f"/health stays quick under slowloris: worst {worst:.2f} s")
    deadline = time.monotonic() + args.header_timeout + 10
    while time.monotonic() < deadline and len(cut) < 70:
        time.sleep(0.5)
    stop.set()
    check(len(cut) == 70, f"the server cut {len(cut)} of the 70 slowloris connections")


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--header-timeout", type=float, required=True)
    args = parser.parse_args()
    args.http_port = int(args.http.rsplit(":", 1)[1])
    channel = grpc.insecure_channel(args.grpc, options=[
        ("grpc.max_send_message_length", 64 << 20)])
    registration(channel)
    undecodable(channel)
    integers_and_prompts(channel)
    body_limits()
    slowloris()
    alive, _ = health_answers(10)
    check(alive, "the coordinator lives on")


if __name__ == "__main__":
    main()
