"""Soak and fault test (issue 15): a coordinator, two TP=2 replica groups under mpirun and N
mixed streams (half gRPC, half OpenAI HTTP server-sent events) for a given duration, with four
faults on the way: kill -9 of a follower (20% of the run), of a leader (40%), a SIGTERM drain
of a group's mpirun (60%) and a coordinator restart (kill -9, 80%). Groups that exit are
started again, as a supervisor would. Reports requests sent / finished / errored (by reason) /
hung, tokens received against the usage the coordinator reported, and the processes' RSS.

Exits non-zero when a request hung, a finished request's tokens differ from its usage, an error
is not one the faults explain (UNAVAILABLE, or no connection while the coordinator restarts),
or the coordinator is not serving with both groups at the end. Usage: see soak.sh."""
import argparse
import asyncio
import collections
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

import grpc
import grpc.aio
from shardwise.v1 import inference_pb2 as pb
from shardwise.v1 import inference_pb2_grpc as pb_grpc

HUNG_S = 120  # a request with no end after this long counts as hung
MODEL = "stories260K"
PROMPTS = ["Once upon a time", "The little dog", "One day, Lily went to the park and",
           "Tom had a red ball.", "It was a sunny day"]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return None


def rank_pids(mpirun_pid):
    """{world rank: pid} of an mpirun's ranks (its children on this host)."""
    out = subprocess.run(["pgrep", "-P", str(mpirun_pid)], capture_output=True, text=True).stdout
    ranks = {}
    for pid in map(int, out.split()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
            ranks[int(env[b"OMPI_COMM_WORLD_RANK"])] = pid
        except (OSError, KeyError, ValueError):
            pass
    return ranks


class Cluster:
    """The processes: one coordinator and two supervised TP=2 groups."""

    def __init__(self, a):
        self.a = a
        self.grpc_port, self.http_port, self.registry_port, *self.group_ports = free_ports(5)
        self.token_file = os.path.join(a.work, "cluster.token")
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secrets.token_hex(24) + "\n")
        self.coordinator = None
        self.groups = [None, None]
        self.rss = collections.defaultdict(list)  # name -> [(when, MiB)]
        self.events = []
        self.phase = "before the faults"  # the last fault: errors are counted under it
        self.stopping = False

    def log(self, message):
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        self.events.append(line)
        print(line, flush=True)

    def start_coordinator(self):
        log = open(os.path.join(self.a.work, "coordinator.log"), "a")
        self.coordinator = subprocess.Popen(
            [self.a.coordinator, "--grpc", f"127.0.0.1:{self.grpc_port}", "--http",
             f"127.0.0.1:{self.http_port}", "--registry", f"127.0.0.1:{self.registry_port}",
             "--cluster-token-file", self.token_file, "--heartbeat-ms", "500",
             "--replica-grace", "10", "--max-queued", "1024", "--log-level", "warn"],
            stdout=log, stderr=log)

    def start_group(self, i):
        log = open(os.path.join(self.a.work, f"group{i}.log"), "a")
        self.groups[i] = subprocess.Popen(
            [*self.a.mpirun, "--mca", "odls_base_sigkill_timeout", "10", "-np", "2",
             self.a.shard, "--model", self.a.model, "--tp", "2", "--device", "cpu",
             "--threads", "1", "--capacity", str(self.a.streams // 2), "--drain-timeout", "8",
             "--collective-timeout", "10", "--coordinator", f"127.0.0.1:{self.registry_port}",
             "--listen", f"127.0.0.1:{self.group_ports[i]}", "--cluster-token-file",
             self.token_file, "--log-level", "warn"], stdout=log, stderr=log)

    async def supervise(self, i):
        """Starts group i and starts it again whenever it exits, until the soak ends."""
        while not self.stopping:
            self.start_group(i)
            while self.groups[i].poll() is None:
                await asyncio.sleep(0.2)
            if not self.stopping:
                self.log(f"group {i} exited ({self.groups[i].returncode}): starting it again")
                await asyncio.sleep(1)

    def sample_rss(self, when):
        self.rss["coordinator"].append((when, rss_mib(self.coordinator.pid)))
        for i, group in enumerate(self.groups):
            leader = rank_pids(group.pid).get(0) if group else None
            self.rss[f"group {i} leader"].append((when, rss_mib(leader) if leader else None))

    async def faults(self, duration):
        steps = [(0.2, self.kill_rank, (0, 1, "follower")), (0.4, self.kill_rank, (1, 0, "leader")),
                 (0.6, self.drain, (0,)), (0.8, self.restart_coordinator, ())]
        start = time.time()
        for at, action, action_args in steps:
            await asyncio.sleep(max(0, start + at * duration - time.time()))
            action(*action_args)

    def kill_rank(self, group, rank, what):
        self.phase = f"kill -9 of a {what}"
        pid = rank_pids(self.groups[group].pid).get(rank)
        self.log(f"fault: kill -9 of group {group}'s {what} (rank {rank}, pid {pid})")
        if pid:
            os.kill(pid, signal.SIGKILL)

    def drain(self, group):
        self.phase = "SIGTERM drain"
        self.log(f"fault: SIGTERM to group {group}'s mpirun (drain)")
        self.groups[group].send_signal(signal.SIGTERM)

    def restart_coordinator(self):
        self.sample_rss("before the coordinator restart")
        self.phase = "coordinator restart"
        self.log("fault: kill -9 of the coordinator, then a new one")
        self.coordinator.kill()
        self.coordinator.wait()
        self.start_coordinator()
        asyncio.get_event_loop().call_later(10, self.sample_rss, "10 s after the restart")

    def stop(self):
        self.stopping = True
        for group in self.groups:
            if group and group.poll() is None:
                group.send_signal(signal.SIGTERM)
        if self.coordinator.poll() is None:
            self.coordinator.send_signal(signal.SIGTERM)
        for p in [*self.groups, self.coordinator]:
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()


class Stats:
    def __init__(self):
        self.sent = self.finished = self.hung = 0
        self.errors = collections.Counter()
        self.tokens_received = self.tokens_usage = 0
        self.mismatched = []

    def error(self, phase, reason):
        # Ids, counts and addresses vary; the reason is what remains (and whether the faults
        # explain it), counted under the last fault before it.
        key = re.sub(r"[0-9a-f]{16}|(?<!HTTP )\b\d+\b", "N", reason)[:140]
        self.errors[(phase, key, expected(reason))] += 1


async def grpc_request(stub, request):
    tokens, usage = 0, None
    async for message in stub.Generate(request, timeout=HUNG_S):
        tokens += len(message.token_ids)
        if message.HasField("usage"):
            usage = message.usage.completion_tokens
    return tokens, usage


async def http_request(port, body):
    """POST /v1/completions with stream: true over a raw connection; (tokens, usage)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = json.dumps(body).encode()
        writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: soak\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(data)).encode() +
                     b"\r\nConnection: close\r\n\r\n" + data)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the connection closed before a response")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        raw = await reader.read()  # Connection: close; chunked framing removed below
        if headers.get("transfer-encoding") == "chunked":
            raw = dechunk(raw)
        if status != 200:
            message = json.loads(raw)["error"]["message"] if raw.startswith(b"{") else raw[:80]
            raise RuntimeError(f"HTTP {status}: {message}")
        tokens, usage = 0, None
        for line in raw.decode().split("\n"):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: "):])
            if "error" in event:
                raise RuntimeError(f"{event['error']['code']}: {event['error']['message']}")
            for choice in event["choices"]:  # none in the last chunk, which has the usage
                logprobs = choice["logprobs"]
                tokens += len(logprobs["tokens"]) if logprobs else 0
            if event.get("usage"):
                usage = event["usage"]["completion_tokens"]
        if usage is None:
            raise RuntimeError("the stream ended without a finish (no [DONE] or usage)")
        return tokens, usage
    finally:
        writer.close()


def dechunk(raw):
    out, i = b"", 0
    while i < len(raw):
        end = raw.find(b"\r\n", i)
        if end < 0:
            break
        size = int(raw[i:end].split(b";")[0], 16)
        if size == 0:
            break
        out += raw[end + 2:end + 2 + size]
        i = end + 4 + size
    return out


async def client(kind, cluster, stats, deadline, rng):
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{cluster.grpc_port}")
    stub = pb_grpc.InferenceStub(channel)
    while time.time() < deadline:
        max_tokens = rng.randint(8, 160)
        temperature = rng.choice([0.0, 0.8])
        prompt = rng.choice(PROMPTS)
        stats.sent += 1
        try:
            if kind == "grpc":
                request = pb.GenerateRequest(model=MODEL, text=prompt, sampling=pb.SamplingParams(
                    temperature=temperature, max_tokens=max_tokens, seed=rng.randint(1, 1 << 30)))
                call = grpc_request(stub, request)
            else:
                # logprobs: each token comes in a chunk of its own, so chunks count tokens.
                call = http_request(cluster.http_port, {
                    "model": MODEL, "prompt": prompt, "max_tokens": max_tokens,
                    "temperature": temperature, "stream": True, "logprobs": 0,
                    "stream_options": {"include_usage": True}})
            tokens, usage = await asyncio.wait_for(call, HUNG_S + 5)
            stats.finished += 1
            stats.tokens_received += tokens
            stats.tokens_usage += usage or 0
            if tokens != usage:
                stats.mismatched.append((kind, tokens, usage))
        except asyncio.TimeoutError:
            stats.hung += 1
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                stats.hung += 1
            else:
                stats.error(cluster.phase, f"gRPC {e.code().name}: {e.details()}")
        except (OSError, RuntimeError, ValueError, IndexError) as e:
            stats.error(cluster.phase, f"HTTP {type(e).__name__}: {e}"
                        if not str(e).startswith("HTTP") else str(e))
        if stats.sent % 7 == 0:
            await asyncio.sleep(0.05)  # errors at once (coordinator down) must not spin
    await channel.close()


def expected(reason):
    """Errors the faults explain."""
    return ("UNAVAILABLE" in reason or "HTTP 503" in reason or "ConnectionRefused" in reason or
            "ConnectionReset" in reason or "IncompleteRead" in reason or
            "the stream ended without a finish" in reason)


async def health(cluster):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", cluster.http_port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        raw = await reader.read()
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)
    except (OSError, ValueError, IndexError):
        return 0, {}


async def wait_for_groups(cluster, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = await health(cluster)
        live = [r for r in body.get("replicas", []) if r["live"]]
        if status == 200 and len(live) == 2:
            return True
        await asyncio.sleep(0.5)
    return False


async def soak(a):
    cluster = Cluster(a)
    cluster.start_coordinator()
    supervisors = [asyncio.ensure_future(cluster.supervise(i)) for i in range(2)]
    if not await wait_for_groups(cluster, 120):
        cluster.log("FAIL: the two groups did not register within 120 s")
        return cluster, None, False
    stats = Stats()
    rng = random.Random(a.seed)
    start = time.time()
    deadline = start + a.duration
    clients = [asyncio.ensure_future(client("grpc" if i % 2 == 0 else "http", cluster, stats,
                                            deadline, random.Random(rng.random())))
               for i in range(a.streams)]
    await asyncio.sleep(min(10, a.duration / 10))
    cluster.sample_rss("after warm-up")
    faults = asyncio.ensure_future(cluster.faults(a.duration))
    await asyncio.gather(*clients)
    await faults
    cluster.sample_rss("at the end")
    cluster.log(f"load ended after {time.time() - start:.0f} s")
    serving = await wait_for_groups(cluster, 60)
    status, body = await health(cluster)
    listed = len(body.get("replicas", []))
    cluster.stop()
    for s in supervisors:
        s.cancel()
    print_report(a, cluster, stats, serving, listed)
    unexplained = {r: n for (_, r, explained), n in stats.errors.items() if not explained}
    ok = stats.hung == 0 and not stats.mismatched and not unexplained and serving
    return cluster, stats, ok


def print_report(a, cluster, stats, serving, listed):
    print(f"\n== soak: {a.streams} streams ({a.streams // 2} gRPC, {a.streams // 2} HTTP SSE) "
          f"for {a.duration:.0f} s, two TP=2 groups of {MODEL}")
    print(f"requests sent {stats.sent}, finished {stats.finished}, errored "
          f"{sum(stats.errors.values())}, hung {stats.hung}")
    phases = list(dict.fromkeys(phase for phase, _, _ in stats.errors))
    for phase in phases:
        print(f"  after {phase}: {sum(n for k, n in stats.errors.items() if k[0] == phase)}")
        for (p, reason, explained), n in stats.errors.most_common():
            if p == phase:
                print(f"    {n:6d}  {reason}{'' if explained else '   <- unexplained'}")
    print(f"tokens received {stats.tokens_received}, usage reported {stats.tokens_usage}, "
          f"requests whose tokens differ from their usage: {len(stats.mismatched)}")
    for name, samples in cluster.rss.items():
        print(f"RSS {name}: " + ", ".join(
            f"{when} {mib:.0f} MiB" if mib else f"{when} -" for when, mib in samples))
    print(f"end: both groups serving again: {serving}; /health lists {listed} replicas")
    print("faults:\n  " + "\n  ".join(e for e in cluster.events if "fault" in e or "group" in e))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--shard", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--mpirun", required=True, help="the mpirun command line, one string")
    a = parser.parse_args()
    a.mpirun = a.mpirun.split()
    if a.duration < 100:
        parser.error("--duration: at least 100 s (the faults come a fifth of the run apart, and "
                     "a killed group takes about 20 s to come back)")
    _, _, ok = asyncio.run(soak(a))
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
