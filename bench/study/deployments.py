"""Deployment launchers: each starts a coordinator and its shards (or finds them), says where
they listen once /health says every replica is live, and stops every process it started.

    mpirun    a coordinator and one mpirun job of TP x replicas shardwise-shard ranks, here
    existing  a coordinator already running: settings grpc (HOST:PORT) and http (URL)
    command   any start command, e.g. a Slurm script: settings start (and optional stop) are
              shell commands, formatted with {grpc_port} {http_port} {grpc} {http}
              {shard_port} (the first of `replicas` free consecutive ports)
              {coordinator} {model_dir} {model_name} {tp} {replicas} {ranks} {build} {run_dir};
              grpc and http say where the coordinator will listen (formatted the same way)

Every process runs in a session of its own; stopping sends SIGTERM to the session's leader,
then to every process left in the session (mpirun's ranks included), then SIGKILL.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


class DeploymentError(Exception):
    """A deployment that did not come up, with the reason and the tail of its logs."""


def session_members(sid):
    """Pids of the live processes whose session id is `sid`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "pid (comm)": state ppid pgrp session ...; zombies have exited already.
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry))
    return members


class Session:
    """A command started in a new session, its output in `log_path`."""

    def __init__(self, argv, log_path, must_stay=True, env=None):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.must_stay = must_stay  # False: a launcher command that may exit 0 (e.g. sbatch)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True)
        self.sid = self.process.pid

    def alive(self):
        return self.process.poll() is None

    def stop(self, grace_s=10.0):
        """SIGTERM to the leader (mpirun passes it to its ranks and reaps them), then to every
        process left in the session, then SIGKILL; True when none is left."""
        steps = ((signal.SIGTERM, [self.sid], grace_s), (signal.SIGTERM, None, 5.0),
                 (signal.SIGKILL, None, 5.0))
        for sig, targets, wait_s in steps:
            for pid in targets or session_members(self.sid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                self.process.poll()
                if not session_members(self.sid):
                    break
                time.sleep(0.05)
            if not session_members(self.sid):
                break
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return not session_members(self.sid)


def free_ports(n, consecutive=1):
    """n free loopback ports; the last one starts a run of `consecutive` free ports."""
    ports = []
    while len(ports) < n:
        want = consecutive if len(ports) == n - 1 else 1
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + want > 65535 or base in ports:
            continue
        if all(port_free(base + i) for i in range(want)):
            ports.append(base)
    return ports


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def health(http_url, timeout_s=2.0):
    """(status code, parsed body) of GET /health, or (None, reason)."""
    try:
        with urllib.request.urlopen(http_url + "/health", timeout=timeout_s) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (OSError, ValueError) as e:
        return None, str(e)


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def servable_model(deployment, stage_root):
    """The deployment's model folder, or, for a checkpoint without tokenizer.json (the
    hf-tiny test models, random-weight configs), a staged copy: its files linked, plus a
    stand-in tokenizer (tokenizer_from's, its vocabulary padded to the model's size)."""
    model_dir = deployment.model_dir
    if os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        return model_dir
    if not deployment.tokenizer_from:
        raise DeploymentError(f"{model_dir} has no tokenizer.json and no tokenizer_from is set")
    try:
        with open(os.path.join(model_dir, "config.json")) as f:
            vocab_size = int(json.load(f)["vocab_size"])
        with open(os.path.join(deployment.tokenizer_from, "tokenizer.json")) as f:
            tokenizer = json.load(f)
    except (OSError, ValueError, KeyError) as e:
        raise DeploymentError(f"cannot stage {model_dir}: {e}") from e
    vocab = tokenizer["model"]["vocab"]
    if len(vocab) > vocab_size:
        raise DeploymentError(f"{model_dir}: vocabulary {vocab_size} is smaller than the "
                              f"stand-in tokenizer's {len(vocab)}")
    for i in range(len(vocab), vocab_size):
        vocab[f"\u2581w{i}"] = i
    stage = os.path.join(stage_root, deployment.model_name)
    if os.path.exists(stage):
        shutil.rmtree(stage)
    os.makedirs(stage)
    for name in os.listdir(model_dir):
        os.symlink(os.path.join(model_dir, name), os.path.join(stage, name))
    with open(os.path.join(stage, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f)
    config = os.path.join(deployment.tokenizer_from, "tokenizer_config.json")
    if os.path.exists(config) and not os.path.exists(os.path.join(stage, "tokenizer_config.json")):
        shutil.copy(config, stage)
    return stage


class Launcher:
    """Base: start() returns once every replica is live; stop() ends what start() began."""

    def __init__(self, deployment, study, run_dir):
        self.deployment, self.study, self.run_dir = deployment, study, run_dir
        self.sessions = []
        self.grpc = self.http = None

    def start(self):
        raise NotImplementedError

    def stop(self):
        """True when no process of this deployment is left."""
        clean = True
        for session in reversed(self.sessions):
            clean = session.stop() and clean
        return clean

    def session_ids(self):
        return [s.sid for s in self.sessions]

    def spawn(self, argv, log_name, must_stay=True, env=None):
        session = Session(argv, os.path.join(self.run_dir, log_name), must_stay, env)
        self.sessions.append(session)
        return session

    def wait_ready(self):
        """Polls /health until it is 200 with every replica live."""
        want = self.deployment.replicas
        deadline = time.monotonic() + self.study.ready_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            for session in self.sessions:
                if not session.alive() and (session.must_stay or session.process.returncode):
                    raise DeploymentError(
                        f"{os.path.basename(session.log_path)} exited with "
                        f"{session.process.returncode} before the deployment was ready:\n"
                        + tail(session.log_path))
            code, body = health(self.http)
            if code == 200:
                live = [r for r in body.get("replicas", []) if r.get("live")
                        and r.get("model") == self.deployment.model_name]
                if len(live) >= want:
                    return
                last = f"{len(live)} of {want} replicas live"
            else:
                last = f"/health: {code} {body}"
            time.sleep(0.2)
        logs = "".join(f"--- {os.path.basename(s.log_path)}\n{tail(s.log_path)}"
                       for s in self.sessions)
        raise DeploymentError(f"not ready after {self.study.ready_timeout_s:.0f} s ({last})\n"
                              + logs)


class MpirunLauncher(Launcher):
    def start(self):
        d = self.deployment
        model_dir = servable_model(d, os.path.join(self.run_dir, "models"))
        grpc_port, http_port, listen_port = free_ports(3, consecutive=d.replicas)
        self.grpc, self.http = f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}"
        bin_dir = os.path.join(self.study.build, "bin")
        self.spawn([os.path.join(bin_dir, "shardwise-coordinator"), "--grpc", self.grpc,
                    "--http", f"127.0.0.1:{http_port}", "--models", d.model_name,
                    "--log-level", "warn", *d.coordinator_args], "coordinator.log")
        # OMP_NUM_THREADS as well as --threads: the shard applies --threads on its main thread,
        # and OpenMP threads started elsewhere (the engine's) would take every core and spin
        # on an oversubscribed host.
        env = dict(os.environ, OMP_NUM_THREADS=str(d.threads))
        self.spawn([*self.study.mpirun, "-x", "OMP_NUM_THREADS", "-np", d.ranks,
                    os.path.join(bin_dir, "shardwise-shard"), "--model", model_dir,
                    "--model-name", d.model_name, "--tp", d.tp, "--device", d.device,
                    "--threads", d.threads, "--capacity", d.capacity, "--coordinator", self.grpc,
                    "--listen", f"127.0.0.1:{listen_port}", "--log-level", "warn", *d.shard_args],
                   "shards.log", env=env)
        self.wait_ready()


class ExistingLauncher(Launcher):
    def start(self):
        settings = self.deployment.settings
        if "grpc" not in settings or "http" not in settings:
            raise DeploymentError("an existing coordinator needs 'grpc' and 'http' addresses")
        self.grpc, self.http = settings["grpc"], settings["http"].rstrip("/")
        self.wait_ready()


class CommandLauncher(Launcher):
    fields = None  # the format fields of start, for stop

    def start(self):
        d, settings = self.deployment, self.deployment.settings
        if "start" not in settings:
            raise DeploymentError("the command launcher needs a 'start' command")
        grpc_port, http_port, shard_port = free_ports(3, consecutive=d.replicas)
        fields = {"grpc_port": grpc_port, "http_port": http_port, "shard_port": shard_port,
                  "model_dir": d.model_dir,
                  "model_name": d.model_name, "tp": d.tp, "replicas": d.replicas,
                  "ranks": d.ranks, "build": self.study.build, "run_dir": self.run_dir}
        fields["grpc"] = settings.get("grpc", "127.0.0.1:{grpc_port}").format(**fields)
        fields["http"] = settings.get("http", "http://127.0.0.1:{http_port}").format(**fields)
        fields["coordinator"] = fields["grpc"]
        self.grpc, self.http = fields["grpc"], fields["http"].rstrip("/")
        self.fields = fields
        self.spawn(["bash", "-c", settings["start"].format(**fields)], "start.log",
                   must_stay=False)
        self.wait_ready()

    def stop(self):
        stop = self.deployment.settings.get("stop")
        if stop and self.fields:
            subprocess.run(["bash", "-c", stop.format(**self.fields)], timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return super().stop()


LAUNCHERS = {"mpirun": MpirunLauncher, "existing": ExistingLauncher, "command": CommandLauncher}


def make_launcher(deployment, study, run_dir):
    os.makedirs(run_dir, exist_ok=True)
    return LAUNCHERS[deployment.launcher](deployment, study, run_dir)
