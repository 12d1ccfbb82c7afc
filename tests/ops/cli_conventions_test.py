"""The command-line conventions of every binary (docs/operations.md): --version, exit codes
(0 ok, 1 runtime failure, 2 usage error), a mistyped subcommand listing the real ones, the
shard's YAML --config / --print-config, --log-format json lines that parse, and errors that say
what is wrong (a missing model folder; engine_bench lengths past the context window)."""
import json
import os
import re

from ops_support import MODEL, arguments, check, free_ports, run

args = arguments()
BINARIES = ["shardwise", "shardwise-shard", "shardwise-coordinator"]


def binary(name):
    return os.path.join(args.bin_dir, name)


def versions():
    for name in BINARIES:
        code, out, _ = run([binary(name), "--version"])
        check(code == 0 and re.fullmatch(
            rf"{name} \d+\.\d+\.\d+ \(commit ([0-9a-f]{{12}}(-dirty)?|unknown), \w+, CUDA (on|off)"
            r"(, sanitizers [\w,]+)?\)\n", out), f"{name} --version: {out.strip()}")


def exit_codes():
    for name in BINARIES:
        code, _, err = run([binary(name), "--no-such-flag"])
        check(code == 2 and "--no-such-flag" in err, f"{name}: an unknown flag exits 2 ({code})")
        code, out, _ = run([binary(name), "--help"])
        check(code == 0 and "Usage" in out, f"{name} --help exits 0")
    code, _, err = run([binary("shardwise"), "genrate", "--ids", "1"])
    check(code == 2 and "unknown command 'genrate'" in err and "generate" in err and
          "tokenize" in err, f"a mistyped subcommand lists the commands: {err.strip()}")
    code, _, err = run([binary("shardwise")])
    check(code == 2 and "a command is required" in err, "no subcommand: exit 2 with the list")
    code, _, err = run([binary("shardwise"), "generate", "--model", "/nonexistent", "--prompt",
                        "hi"])
    check(code == 2 and "model folder /nonexistent does not exist" in err,
          f"--model /nonexistent says the folder does not exist: {err.strip()}")
    code, _, err = run([binary("shardwise-shard"), "--model", "/nonexistent", "--ids", "1"])
    check(code == 2 and "model folder /nonexistent does not exist" in err,
          "shardwise-shard --model /nonexistent: the same message")
    # A runtime failure exits 1: a token id the model does not have (ports: ports_test.py).
    code, _, err = run([binary("shardwise"), "generate", "--ids", "1,99999", "--log-level",
                        "error"])
    check(code == 1 and "99999" in err, f"an out-of-vocabulary id exits 1 ({code})")
    code, _, err = run([binary("shardwise-shard"), "--log-level", "error"])
    check(code == 2 and "--ids" in err, "shardwise-shard with neither mode exits 2")


def shard_config():
    work = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ops-config-{os.getpid()}")
    os.makedirs(work, exist_ok=True)
    config = os.path.join(work, "shard.yaml")
    with open(config, "w") as f:
        f.write(f"model: {MODEL}\nmax_new_tokens: 5\ntemperature: 0\nlog-level: warn\n")
    shard = binary("shardwise-shard")
    code, printed, err = run([shard, "--config", config, "--print-config"])
    check(code == 0 and "max-new-tokens: 5" in printed and f"model: {MODEL}" in printed,
          f"--print-config shows the file's options ({err.strip()})")
    reprinted_path = os.path.join(work, "printed.yaml")
    with open(reprinted_path, "w") as f:
        f.write(printed)
    _, reprinted, _ = run([shard, "--config", reprinted_path, "--print-config"])
    check(reprinted == printed, "--print-config round-trips through --config")
    _, overridden, _ = run([shard, "--config", config, "--max-new-tokens", "3", "--print-config"])
    check("max-new-tokens: 3" in overridden, "the command line overrides the file")
    code, out, err = run([shard, "--config", config, "--ids", "1"])
    check(code == 0 and len(json.loads(out)["token_ids"]) == 5, "a one-shot run from the file")
    bad = os.path.join(work, "bad.yaml")
    with open(bad, "w") as f:
        f.write("max_new_tokens: 5\nhttp_port: 8000\n")
    code, _, err = run([shard, "--config", bad, "--ids", "1"])
    check(code == 2 and f"unknown key http-port in {bad}" in err,
          f"an unknown key is named with its file: {err.strip()}")
    with open(bad, "w") as f:
        f.write("[not: a map\n")
    code, _, err = run([shard, "--config", bad, "--ids", "1"])
    check(code == 2 and "not valid YAML" in err, "a broken file exits 2")
    coordinator_bad = os.path.join(work, "coordinator.yaml")
    with open(coordinator_bad, "w") as f:
        f.write("grpc: 127.0.0.1:1\nhttp_port: 8000\n")
    code, _, err = run([binary("shardwise-coordinator"), "--config", coordinator_bad])
    check(code == 2 and f"unknown key http-port in {coordinator_bad}" in err,
          "the coordinator's YAML says the same")
    run(["rm", "-rf", work])


def json_lines(text, what):
    lines = [line for line in text.splitlines() if line.strip()]
    check(lines, f"{what}: some log lines")
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            check(False, f"{what}: a log line is not JSON: {line!r}")
        check(list(record) == ["time", "level", "rank", "replica", "message"] and
              re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]),
              f"{what}: {line}")
    return [json.loads(line) for line in lines]


def json_logs():
    code, out, err = run([binary("shardwise-shard"), "--ids", "1", "--max-new-tokens", "2",
                          "--log-format", "json"])
    check(code == 0 and "token_ids" in json.loads(out), "the shard's result stays on stdout")
    records = json_lines(err, "shardwise-shard --log-format json")
    check(records[0]["rank"] == 0 and records[0]["replica"] == 0, "the shard names rank and replica")
    code, _, err = run([binary("shardwise"), "--log-format", "json", "generate", "--ids", "1",
                        "--max-new-tokens", "2"])
    check(code == 0, "shardwise --log-format json generate")
    records = json_lines(err, "shardwise --log-format json")
    check(records[0]["rank"] is None, "the CLI has no rank: null")
    # The coordinator exits on its own here: its HTTP port is the gRPC one, which is taken. gRPC's
    # own complaint about it is a JSON line too.
    [grpc_port] = free_ports(1)
    code, _, err = run([binary("shardwise-coordinator"), "--grpc", f"127.0.0.1:{grpc_port}",
                        "--http", f"127.0.0.1:{grpc_port}", "--log-format", "json"])
    records = json_lines(err, "shardwise-coordinator --log-format json")
    check(code == 1 and any("address already in use" in r["message"] for r in records),
          "the coordinator's failure is a JSON line")
    code, _, err = run([binary("shardwise"), "--log-format", "yaml", "tokenize", "--text", "a"])
    check(code == 2, "an unknown --log-format is a usage error")


def engine_bench():
    if not args.engine_bench:
        print("engine_bench not built (SHARDWISE_BENCHMARKS=OFF): its check is left out")
        return
    code, _, err = run([args.engine_bench, "--input-len", "400", "--output-len", "200",
                        "--concurrency", "1", "--repeats", "1"])
    check(code == 1 and "exceeds the context window" in err,
          f"engine_bench past the context window exits 1 with a message ({code}): {err.strip()}")
    code, _, _ = run([args.engine_bench, "--input-len", "0"])
    check(code == 2, "engine_bench --input-len 0 is a usage error")


versions()
exit_codes()
shard_config()
json_logs()
engine_bench()
print("PASS")
