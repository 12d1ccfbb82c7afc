"""Shared by the operations tests (issue 17): the binaries under test, real coordinator and
shard processes on loopback, HTTP on the standard library, and checks that end the test with
the failing condition. Every process is stopped on exit (SIGTERM, then SIGKILL); every wait is
bounded.

A test's command line: TEST.py --bin-dir DIR [--engine-bench FILE] -- MPIRUN..."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(SOURCE_DIR, "assets", "models", "stories260K")


def arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--engine-bench", default="", help="bench/engine's binary, when built")
    parser.add_argument("mpirun", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    args.mpirun = [a for a in args.mpirun if a != "--"]
    return args


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", flush=True)
        sys.exit(1)
    print(f"ok: {message}", flush=True)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(command, timeout=120, env=None):
    """(exit code, stdout, stderr) of a command that must end by itself."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    return done.returncode, done.stdout, done.stderr


def http(address, path, method="GET", body=None, timeout=30):
    """(status, body text); connection failures give (None, reason)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
        return None, str(e)


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    check(False, f"{message} (waited {timeout} s)")


class Processes:
    """Background processes with their logs in a scratch folder, stopped on exit."""

    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="shardwise-ops-")
        self.started = []  # (name, Popen)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        failed = kind is not None and not (kind is SystemExit and value.code in (0, None))
        self.stop_all()
        if failed:
            for name, _ in self.started:
                print(f"--- {name}.log (last lines)")
                print("".join(open(self.log_path(name), errors="replace").readlines()[-25:]))
        subprocess.run(["rm", "-rf", self.work])

    def binary(self, name):
        return os.path.join(self.args.bin_dir, name)

    def log_path(self, name):
        return os.path.join(self.work, f"{name}.log")

    def start(self, name, command):
        log = open(self.log_path(name), "w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((name, process))
        return process

    def log(self, name):
        return open(self.log_path(name), errors="replace").read()

    def coordinator(self, name, grpc_port, http_port, *extra):
        return self.start(name, [self.binary("shardwise-coordinator"),
                                 "--grpc", f"127.0.0.1:{grpc_port}",
                                 "--http", f"127.0.0.1:{http_port}",
                                 "--heartbeat-ms", "200", *extra])

    def shard_group(self, name, np, grpc_port, listen, *extra):
        """A deployment of `np` TP=1 replicas of stories260K under mpirun."""
        return self.start(name, [*self.args.mpirun, "-np", str(np), self.binary("shardwise-shard"),
                                 "--model", MODEL, "--tp", "1", "--threads", "1",
                                 "--coordinator", f"127.0.0.1:{grpc_port}", "--listen", listen,
                                 *extra])

    def wait_exit(self, process, timeout):
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, process, timeout=10):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            if self.wait_exit(process, timeout) is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def stop_all(self):
        for _, process in reversed(self.started):
            self.stop(process, timeout=5)


def replicas(http_address):
    """The coordinator's /health replica list ([] while it does not answer)."""
    status, body = http(http_address, "/health")
    if status is None:
        return []
    return json.loads(body)["replicas"]


def live_replicas(http_address):
    return [r for r in replicas(http_address) if r["live"]]


def complete(http_address, prompt="Once upon a time", max_tokens=8):
    return http(http_address, "/v1/completions", "POST",
                {"model": "stories260K", "prompt": prompt, "max_tokens": max_tokens,
                 "temperature": 0})
