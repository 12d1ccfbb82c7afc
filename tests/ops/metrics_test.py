"""Metrics (docs/operations.md): /metrics passes `promtool check metrics` (Debian's prometheus
package) before and after a small load, and the load moves every counter it should: prompt and
generation tokens, the replica's queue and prefill time histograms, preemptions (the shard's KV
cache holds fewer requests than its capacity), the prefix cache (one long prompt, sent again and
again), and the process_* metrics."""
import concurrent.futures
import re
import subprocess
import time

from ops_support import Processes, arguments, check, complete, free_ports, http, wait_for

args = arguments()
# ~70 tokens: several full KV blocks of 16, which the prefix cache keys on.
PROMPT = ("Once upon a time, there was a little girl named Lily. She loved to play outside in "
          "the park with her friends. One day, she saw a big red ball under a tree and she "
          "wanted to play with it.")


def scrape(address):
    status, text = http(address, "/metrics")
    check(status == 200, "/metrics answers")
    return text


def promtool(text, when):
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    check(done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(),
          f"promtool check metrics is clean {when}: {done.stdout}{done.stderr}")


def samples(text):
    """{(name, labels text): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)", line)
        if match and not line.startswith("#"):
            out[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return out


def total(parsed, name, label=""):
    return sum(v for (n, labels), v in parsed.items() if n == name and label in labels)


grpc_port, http_port, shard_port = free_ports(3)
address = f"127.0.0.1:{http_port}"
with Processes(args) as p:
    p.coordinator("coordinator", grpc_port, http_port)
    wait_for(lambda: http(address, "/health/live")[0] == 200, 30, "the coordinator starts")
    promtool(scrape(address), "with no replica")
    # 16 blocks of 16 tokens for 8 concurrent requests of ~70 + 120 tokens: they preempt.
    p.shard_group("shard", 1, grpc_port, f"127.0.0.1:{shard_port}", "--capacity", "8",
                  "--num-kv-blocks", "16")
    wait_for(lambda: http(address, "/health/ready")[0] == 200, 120, "the shard registers")
    before = samples(scrape(address))
    check(total(before, "shardwise_replica_preemptions_total") == 0, "no preemption before load")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: complete(address, PROMPT, 120), range(16)))
    check(all(status == 200 for status, _ in results),
          f"16 completions, 8 at a time: {[s for s, _ in results]}")
    time.sleep(1)  # the shard's counters arrive with its next heartbeat (every 200 ms)
    text = scrape(address)
    promtool(text, "after the load")
    after = samples(text)
    model = 'model="stories260K"'
    for name, least in [("shardwise_prompt_tokens_total", 16 * 40),
                        ("shardwise_generation_tokens_total", 16 * 120),
                        ("shardwise_replica_queue_time_seconds_count", 16),
                        ("shardwise_replica_prefill_time_seconds_count", 16),
                        ("shardwise_replica_preemptions_total", 1),
                        ("shardwise_replica_prefix_cache_queried_tokens_total", 16 * 32),
                        ("shardwise_replica_prefix_cache_hit_tokens_total", 15 * 32),
                        ("shardwise_time_to_first_token_seconds_count", 16)]:
        value = total(after, name, model)
        check(value >= least, f"{name} moved: {total(before, name, model)} -> {value}")
    check(total(after, "shardwise_replica_queue_time_seconds_sum", model) > 0 and
          total(after, "shardwise_replica_prefill_time_seconds_sum", model) > 0,
          "queue and prefill time add up to more than nothing")
    for name in ("shardwise_replica_running_requests", "shardwise_replica_waiting_requests",
                 "shardwise_replica_kv_cache_usage_ratio"):
        check(any(n == name for n, _ in after), f"{name} is exported per replica")
    check(not any(n == "shardwise_replica_kv_cache_usage" for n, _ in after),
          "the old unitless kv_cache_usage name is gone")
    cpu = total(after, "process_cpu_seconds_total")
    check(cpu > 0 and cpu > total(before, "process_cpu_seconds_total"),
          f"process_cpu_seconds_total moves: {cpu}")
    check(total(after, "process_resident_memory_bytes") > 1e6, "process_resident_memory_bytes")
    check(total(after, "process_open_fds") > 3 and total(after, "process_max_fds") >=
          total(after, "process_open_fds"), "process_open_fds and process_max_fds")
    started = total(after, "process_start_time_seconds")
    check(time.time() - 600 < started <= time.time(),
          f"process_start_time_seconds is when the coordinator started: {started}")
print("PASS")
