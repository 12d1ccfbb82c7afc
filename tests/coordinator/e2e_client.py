"""Drives a running coordinator over gRPC and HTTP; see e2e_test.sh. Exits non-zero on failure.

Phases: happy path (tokens equal `shardwise generate`), the OpenAI-compatibility features through
shardwise.v1 (n, seeds, logit_bias, prompt log-probabilities, embeddings), bad inputs (each gets
the right status), then failure handling (the TP=2 group is killed while requests stream)."""
import math
import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
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

TIMEOUT = 60  # seconds any single call may take

args = None
stub = None


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}")
        sys.exit(1)
    print(f"ok: {message}")


def http(method, path, body=None, key=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://{args.http}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key is not False:
        request.add_header("Authorization", f"Bearer {key or args.api_key}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metadata(key=None):
    return [("authorization", f"Bearer {key or args.api_key}")]


def grpc_choices(request):
    """Per choice index: (token_ids, text, finish_reason); and the prompt log-probabilities."""
    choices, prompt_logprobs = {}, []
    for message in stub.Generate(request, metadata=metadata(), timeout=TIMEOUT):
        prompt_logprobs += list(message.prompt_logprobs)
        ids, text, finish = choices.setdefault(message.index, ([], [], []))
        ids += list(message.token_ids)
        text.append(message.text)
        if message.finish_reason:
            finish.append(message.finish_reason)
    return {i: (ids, "".join(text), "".join(finish)) for i, (ids, text, finish) in
            choices.items()}, prompt_logprobs


def grpc_generate(request, key=None):
    """(token_ids, text, finish_reason, usage) of a whole stream."""
    ids, text, finish, usage = [], "", "", None
    for message in stub.Generate(request, metadata=metadata(key), timeout=TIMEOUT):
        ids += list(message.token_ids)
        text += message.text
        if message.finish_reason:
            finish, usage = message.finish_reason, message.usage
    return ids, text, finish, usage


def cli_generate(*flags):
    out = subprocess.run([args.cli, "generate", "--model", args.model_dir, "--temperature", "0",
                          "--log-level", "warn", *flags], check=True, capture_output=True,
                         text=True, timeout=TIMEOUT)
    return json.loads(out.stdout)


def live_replicas():
    status, body = http("GET", "/health")
    return status, [r for r in json.loads(body)["replicas"] if r["live"]]


def wait_ready():
    deadline = time.time() + 150
    while time.time() < deadline:
        try:
            status, live = live_replicas()
            if status == 200 and len(live) == args.replicas:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    check(False, f"{args.replicas} replicas registered within 150 s")


def happy_path():
    expected = cli_generate("--ids", "1,403,407", "--max-new-tokens", "16")
    request = pb.GenerateRequest(model="stories260K", token_ids=pb.TokenIds(ids=[1, 403, 407]),
                                 sampling=pb.SamplingParams(temperature=0, max_tokens=16))
    # Eight at once: least-outstanding routing spreads them over every replica.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: grpc_generate(request), range(8)))
    check(all(r[0] == expected["token_ids"] for r in results),
          f"gRPC token prompt x8 = shardwise generate {expected['token_ids']}")
    ids, text, finish, usage = results[0]
    check(usage.prompt_tokens == 3 and usage.completion_tokens == len(ids),
          f"gRPC usage {usage.prompt_tokens}+{usage.completion_tokens}, finish {finish}")

    prompt = "Once upon a time"
    expected = cli_generate("--prompt", prompt, "--max-new-tokens", "24")
    ids, text, finish, _ = grpc_generate(pb.GenerateRequest(
        model="stories260K", text=prompt, sampling=pb.SamplingParams(temperature=0, max_tokens=24)))
    check(ids == expected["token_ids"] and text == expected["text"],
          f"gRPC text prompt = shardwise generate: {text!r}")

    body = {"model": "stories260K", "prompt": prompt, "max_tokens": 24, "temperature": 0}
    status, response = http("POST", "/v1/completions", body)
    response = json.loads(response)
    check(status == 200 and response["choices"][0]["text"] == expected["text"] and
          response["usage"]["completion_tokens"] == len(expected["token_ids"]),
          "HTTP /v1/completions text and usage = shardwise generate")

    status, stream = http("POST", "/v1/completions", dict(body, stream=True))
    events = [line[len("data: "):] for line in stream.split("\n") if line.startswith("data: ")]
    chunks = [json.loads(e) for e in events[:-1]]
    check(status == 200 and events[-1] == "[DONE]" and
          "".join(c["choices"][0]["text"] for c in chunks) == expected["text"] and
          chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"),
          f"HTTP stream: {len(chunks)} chunks, text = shardwise generate, ends with [DONE]")

    stop = expected["text"][12:16]
    status, response = http("POST", "/v1/completions", dict(body, stop=[stop]))
    choice = json.loads(response)["choices"][0]
    check(choice["text"] == expected["text"][:expected["text"].find(stop)] and
          choice["finish_reason"] == "stop", f"stop string {stop!r} cuts the text")

    status, response = http("POST", "/v1/completions", dict(body, logprobs=2, max_tokens=5))
    logprobs = json.loads(response)["choices"][0]["logprobs"]
    check(status == 200 and len(logprobs["token_logprobs"]) == 5 and
          all(len(t) == 2 for t in logprobs["top_logprobs"]), "HTTP logprobs: 5 tokens, top 2")

    status, response = http("GET", "/v1/models")
    check(status == 200 and [m["id"] for m in json.loads(response)["data"]] == ["stories260K"],
          "GET /v1/models")
    models = stub.ListModels(pb.ListModelsRequest(), metadata=metadata(), timeout=TIMEOUT)
    check(models.models[0].live_replicas == args.replicas, "gRPC ListModels")
    check(stub.Health(pb.HealthRequest(), timeout=TIMEOUT).serving, "gRPC Health serving")


def openai_features():
    def sampled(seed=None, n=None, **kw):
        params = pb.SamplingParams(temperature=1, max_tokens=12, ignore_eos=True, **kw)
        if seed is not None:
            params.seed = seed
        if n is not None:
            params.n = n
        return pb.GenerateRequest(model="stories260K", text="Once upon a time", sampling=params)

    choices, _ = grpc_choices(sampled(seed=40, n=3))
    check(sorted(choices) == [0, 1, 2] and all(len(c[0]) == 12 for c in choices.values()),
          "gRPC n=3: three choices by index")
    for i in range(3):
        alone = grpc_generate(sampled(seed=40 + i))[0]
        check(alone == choices[i][0], f"gRPC n=3: choice {i} = the request with seed {40 + i}")
    check(len({tuple(c[0]) for c in choices.values()}) > 1, "gRPC n=3: the choices differ")
    unseeded = {tuple(grpc_generate(sampled())[0]) for _ in range(20)}
    seeded = {tuple(grpc_generate(sampled(seed=9))[0]) for _ in range(20)}
    check(len(unseeded) > 1 and len(seeded) == 1,
          f"gRPC seeds: 20 unseeded give {len(unseeded)} texts, 20 seeded give {len(seeded)}")

    greedy = pb.SamplingParams(temperature=0, max_tokens=8)
    plain = grpc_generate(pb.GenerateRequest(model="stories260K", text="Once upon a time",
                                             sampling=greedy))[0]
    biased = pb.SamplingParams(temperature=0, max_tokens=8)
    biased.logit_bias[plain[0]] = -100
    banned = grpc_generate(pb.GenerateRequest(model="stories260K", text="Once upon a time",
                                              sampling=biased))[0]
    check(banned[0] != plain[0] and plain[0] not in banned,
          f"gRPC logit_bias bans greedy's token {plain[0]}: {banned}")

    scored = pb.SamplingParams(temperature=0, max_tokens=2, prompt_logprobs=1)
    _, prompt_logprobs = grpc_choices(pb.GenerateRequest(
        model="stories260K", token_ids=pb.TokenIds(ids=[1, 403, 407, 261]), sampling=scored))
    check([t.token_id for t in prompt_logprobs] == [403, 407, 261] and
          all(t.logprob < 0 and len(t.top_logprobs) == 1 for t in prompt_logprobs),
          "gRPC prompt_logprobs: every prompt token after the first")

    texts = ["Once upon a time", "Once upon a time", "The dog ran away"]
    inputs = [pb.EmbedInput(text=t) for t in texts] + [
        pb.EmbedInput(token_ids=pb.TokenIds(ids=[1, 403, 407, 261, 378]))]
    response = stub.Embed(pb.EmbedRequest(model="stories260K", inputs=inputs),
                          metadata=metadata(), timeout=TIMEOUT)
    vectors = [list(e.values) for e in response.embeddings]

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b))
    with open(os.path.join(args.model_dir, "config.json")) as f:
        hidden = json.load(f)["hidden_size"]
    check(len(vectors) == 4 and all(len(v) == hidden for v in vectors),
          f"gRPC Embed: 4 vectors of the hidden size {hidden}")
    check(abs(cosine(vectors[0], vectors[1]) - 1) < 1e-6 and cosine(vectors[0], vectors[2]) < 0.999
          and abs(cosine(vectors[0], vectors[3]) - 1) < 1e-6,
          "gRPC Embed: a text and itself (or its token ids) have cosine 1, another text less")
    _, tokenized = http("POST", "/tokenize", {"model": "stories260K", "prompt": texts[2]})
    check(abs(math.sqrt(sum(x * x for x in vectors[0])) - 1) < 1e-5 and
          response.usage.prompt_tokens == 5 + 5 + json.loads(tokenized)["count"] + 5,
          f"gRPC Embed: unit vectors, usage {response.usage.prompt_tokens} tokens")
    models = stub.ListModels(pb.ListModelsRequest(), metadata=metadata(), timeout=TIMEOUT)
    check(models.models[0].created > 0 and models.models[0].owned_by == "shardwise",
          "gRPC ListModels: created, owned_by")

    chat = pb.ChatMessages(messages=[pb.ChatMessage(role="developer", content="Tell stories."),
                                     pb.ChatMessage(role="user", content="Hi", name="Lily")])
    ids, _, finish, _ = grpc_generate(pb.GenerateRequest(model="stories260K", chat=chat,
                                                         sampling=greedy))
    check(len(ids) > 0 and finish, "gRPC chat with developer and a name, through the template")


def expect_http(status_wanted, text_wanted, method, path, body=None, **kw):
    status, response = http(method, path, body, **kw)
    check(status == status_wanted and text_wanted in response,
          f"{path} -> {status} {response[:100]!r}")


def expect_grpc(code, text_wanted, request, key=None):
    try:
        grpc_generate(request, key)
        check(False, f"gRPC {request} should fail")
    except grpc.RpcError as e:
        check(e.code() == code and text_wanted in e.details(), f"gRPC -> {e.code()} {e.details()!r}")


def bad_inputs():
    base = {"model": "stories260K", "prompt": "Hi"}
    expect_http(400, "not valid JSON", "POST", "/v1/completions", raw=b"{oops")
    expect_http(404, "not served here", "POST", "/v1/completions", dict(base, model="nope"))
    expect_http(400, "'prompt' is required", "POST", "/v1/completions", {"model": "stories260K"})
    expect_http(400, "temperature must be >= 0", "POST", "/v1/completions", dict(base, temperature=-1))
    expect_http(400, "top_p must be in", "POST", "/v1/completions", dict(base, top_p=2))
    expect_http(400, "exceeds the context length", "POST", "/v1/completions",
                dict(base, max_tokens=600))
    expect_http(400, "unsupported role 'robot'", "POST", "/v1/chat/completions",
                {"model": "stories260K", "messages": [{"role": "robot", "content": "Hi"}]})
    expect_http(400, "'tools' is not supported", "POST", "/v1/chat/completions",
                {"model": "stories260K", "messages": [{"role": "user", "content": "Hi"}],
                 "tools": [{"type": "function", "function": {"name": "f"}}]})
    expect_http(404, "does not exist", "GET", "/v1/models/nope")
    expect_http(401, "API key", "POST", "/v1/completions", base, key="wrong")
    expect_http(401, "API key", "GET", "/v1/models", key=False)
    expect_http(413, "larger than 4194304 bytes", "POST", "/v1/completions", raw=b"x" * (5 << 20))
    greedy = pb.SamplingParams(temperature=0)
    expect_grpc(grpc.StatusCode.NOT_FOUND, "not served here",
                pb.GenerateRequest(model="nope", text="Hi"))
    expect_grpc(grpc.StatusCode.INVALID_ARGUMENT, "token id 9999",
                pb.GenerateRequest(model="stories260K", token_ids=pb.TokenIds(ids=[1, 9999])))
    expect_grpc(grpc.StatusCode.INVALID_ARGUMENT, "top_k",
                pb.GenerateRequest(model="stories260K", text="Hi",
                                   sampling=pb.SamplingParams(top_k=-3)))
    expect_grpc(grpc.StatusCode.INVALID_ARGUMENT, "n must be in [1, 16]",
                pb.GenerateRequest(model="stories260K", text="Hi",
                                   sampling=pb.SamplingParams(n=17)))
    too_biased = pb.SamplingParams()
    too_biased.logit_bias[5] = 150
    expect_grpc(grpc.StatusCode.INVALID_ARGUMENT, "logit_bias of token 5 must be in [-100, 100]",
                pb.GenerateRequest(model="stories260K", text="Hi", sampling=too_biased))
    expect_grpc(grpc.StatusCode.INVALID_ARGUMENT, "a prompt is required",
                pb.GenerateRequest(model="stories260K", sampling=greedy))
    expect_grpc(grpc.StatusCode.UNAUTHENTICATED, "API key",
                pb.GenerateRequest(model="stories260K", text="Hi"), key="wrong")
    expect_grpc(grpc.StatusCode.DEADLINE_EXCEEDED, "",
                pb.GenerateRequest(model="stories260K", text="Hi", deadline_ms=50,
                                   sampling=pb.SamplingParams(max_tokens=500, ignore_eos=True)))
    status, live = live_replicas()
    check(status == 200 and len(live) == args.replicas,
          "the coordinator survived every bad input; a deadline takes no replica out of rotation")


def retry_elsewhere():
    """A replica that refuses connections fails before any token: its requests are retried."""
    def read(name):
        path = os.path.join(args.model_dir, name)
        return open(path).read() if os.path.exists(path) else ""
    # The same card as the real replicas' (the registry refuses a model whose card differs).
    card = shard_pb2.ModelCard(name="stories260K", address="127.0.0.1:1", device=shard_pb2.DEVICE_CPU,
                               tp=1, capacity=8, context_length=512, vocab_size=512,
                               tokenizer_json=read("tokenizer.json"),
                               tokenizer_config_json=read("tokenizer_config.json"),
                               generation_config_json=read("generation_config.json"))
    registry = shard_pb2_grpc.RegistryStub(grpc.insecure_channel(args.grpc))
    registry.Register(card, timeout=TIMEOUT)
    # Idle replicas are picked round robin, so one of these goes to the dead one first.
    request = pb.GenerateRequest(model="stories260K", token_ids=pb.TokenIds(ids=[1, 403]),
                                 sampling=pb.SamplingParams(temperature=0, max_tokens=8))
    results = [grpc_generate(request) for _ in range(args.replicas + 1)]
    check(all(r[0] == results[0][0] and r[2] for r in results),
          "requests routed to a dead replica are retried elsewhere")
    _, body = http("GET", "/health")
    dead = [r for r in json.loads(body)["replicas"] if r["address"] == "127.0.0.1:1"]
    check(len(dead) == 1 and not dead[0]["live"], "/health: the dead replica is out of rotation")


def kill_group():
    children = subprocess.run(["pgrep", "-P", str(args.group_pid)], capture_output=True,
                              text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    print(f"killed the TP=2 group's ranks {children}")


def failure_handling():
    request = pb.GenerateRequest(model="stories260K", token_ids=pb.TokenIds(ids=[1]),
                                 sampling=pb.SamplingParams(temperature=0, max_tokens=500,
                                                            ignore_eos=True))
    n = 6
    started = threading.Barrier(n + 1, timeout=TIMEOUT)
    outcomes = [None] * n

    def stream(i):
        tokens, first = 0, True
        try:
            for message in stub.Generate(request, metadata=metadata(), timeout=TIMEOUT):
                tokens += len(message.token_ids)
                if first:
                    first = False
                    started.wait()
            outcomes[i] = ("OK", tokens, "")
        except grpc.RpcError as e:
            outcomes[i] = (e.code().name, tokens, e.details())
            if first:
                started.wait()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    started.wait()  # every stream has its first token
    kill_group()
    for t in threads:
        t.join(TIMEOUT)
    check(not any(t.is_alive() for t in threads), "no stream hangs after the kill")
    print("outcomes:", outcomes)
    failed = [o for o in outcomes if o[0] != "OK"]
    check(all(o[1] == 500 for o in outcomes if o[0] == "OK"), "the other streams completed")
    check(len(failed) > 0 and all(o[0] == "UNAVAILABLE" and "failed after" in o[2] for o in failed),
          f"{len(failed)} streams on the killed group ended UNAVAILABLE with a clear message")
    deadline = time.time() + 10
    while time.time() < deadline and len(live_replicas()[1]) != args.replicas - 1:
        time.sleep(0.2)
    status, live = live_replicas()
    check(status == 200 and len(live) == args.replicas - 1,
          "/health: the group is out of rotation, the pool still serves")
    _, metrics = http("GET", "/metrics")
    check(any(line.startswith("shardwise_replica_live{") and line.endswith(" 0")
              for line in metrics.splitlines()), "/metrics: shardwise_replica_live 0 for the group")
    check('code="UNAVAILABLE"' in metrics and 'code="OK"' in metrics, "/metrics: request counts")
    ids, _, finish, _ = grpc_generate(pb.GenerateRequest(
        model="stories260K", token_ids=pb.TokenIds(ids=[1]),
        sampling=pb.SamplingParams(temperature=0, max_tokens=8)))
    check(len(ids) > 0 and finish, "new requests go to the surviving replicas")


def main():
    global args, stub
    parser = argparse.ArgumentParser()
    for flag in ("--grpc", "--http", "--api-key", "--cli", "--model-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--group-pid", type=int, required=True)
    parser.add_argument("--replicas", type=int, required=True)
    args = parser.parse_args()
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.grpc))
    wait_ready()
    happy_path()
    openai_features()
    bad_inputs()
    retry_elsewhere()
    failure_handling()


if __name__ == "__main__":
    main()
