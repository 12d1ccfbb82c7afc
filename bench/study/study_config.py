"""A study file (YAML), read, checked and expanded into deployments x sweep points.

    name: cpu-tp
    launcher: mpirun                 # default launcher of the deployments: mpirun | existing | command
    mpirun: [mpirun, --oversubscribe, --bind-to, none]
    deployments:                     # list values expand to their cross product
      - model: assets/models/stories260K
        tp: [1, 2]
        replicas: [1, 2]
        threads: 1                   # CPU threads per rank
        capacity: 64                 # concurrent sequences per replica
    sweep:                           # the axes run at every deployment (cross product)
      concurrency: [1, 2, 4]         # closed loop; or rate: [2, 4, 8] (open loop, requests/s)
      input_len: [128]               # or context_len: [256] (input = context - output)
      output_len: [128]
    loadgen:                         # shardwise-loadgen flags at every point (key: --key)
      requests: 32
      requests_per_concurrency: 4    # at least this many requests per unit of concurrency
      warmup: 4

Paths are relative to the repository root. Each deployment's name is MODEL-tpT-rR unless given.
"""
import dataclasses
import itertools
import os

import yaml

TOP_KEYS = {"name", "description", "launcher", "mpirun", "build", "deployments", "sweep",
            "loadgen", "ready_timeout_s", "point_timeout_s", "tokenizer_from", "coordinator_args"}
DEPLOYMENT_KEYS = {"name", "model", "model_name", "launcher", "tp", "replicas", "device",
                   "threads", "capacity", "shard_args", "coordinator_args", "random_weights",
                   "tokenizer_from", "grpc", "http", "start", "stop", "num_kv_blocks"}
EXPANDED_KEYS = ("tp", "replicas", "threads", "capacity")
SWEEP_KEYS = {"concurrency", "rate", "input_len", "output_len", "context_len"}
LOADGEN_ONLY_KEYS = {"requests_per_concurrency"}
DRIVER_FLAGS = {"model", "grpc", "http", "out", "label", "csv", "progress", "quiet"}


class StudyError(Exception):
    """A study file that cannot be run, with the reason."""


@dataclasses.dataclass
class Deployment:
    name: str               # "stories260K-tp2-r1"
    launcher: str           # "mpirun", "existing" or "command"
    model_dir: str | None   # absolute; None for an existing coordinator
    model_name: str         # the name clients ask for
    tp: int = 1
    replicas: int = 1
    device: str = "cpu"
    threads: int = 1
    capacity: int = 64
    shard_args: list = dataclasses.field(default_factory=list)
    coordinator_args: list = dataclasses.field(default_factory=list)
    tokenizer_from: str | None = None  # stand-in tokenizer for checkpoints without one
    settings: dict = dataclasses.field(default_factory=dict)  # launcher-specific keys

    @property
    def ranks(self):
        return self.tp * self.replicas


@dataclasses.dataclass
class Point:
    name: str               # "c16-in128-out128"
    concurrency: int | None
    rate: float | None
    input_len: str
    output_len: str
    loadgen_args: list      # every shardwise-loadgen flag of this point but the endpoints

    @property
    def load(self):
        return self.rate if self.rate is not None else self.concurrency


@dataclasses.dataclass
class Study:
    name: str
    description: str
    path: str
    build: str
    mpirun: list
    deployments: list
    points: list
    ready_timeout_s: float
    point_timeout_s: float
    load_axis: str          # "concurrency" or "rate"


def as_list(value):
    return value if isinstance(value, list) else [value]


def check_keys(where, mapping, allowed):
    if not isinstance(mapping, dict):
        raise StudyError(f"{where}: expected a mapping, got {mapping!r}")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(allowed))})")


def positive_int(where, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StudyError(f"{where}: expected a positive integer, got {value!r}")
    return value


def mpirun_command(configured):
    command = [str(a) for a in configured] if configured else ["mpirun", "--oversubscribe"]
    if os.geteuid() == 0 and "--allow-run-as-root" not in command:
        command.append("--allow-run-as-root")  # Open MPI refuses root without it
    return command


def expand_deployments(raw, root, defaults):
    if not isinstance(raw, list) or not raw:
        raise StudyError("deployments: expected a non-empty list")
    out = []
    for i, entry in enumerate(raw):
        where = f"deployments[{i}]"
        check_keys(where, entry, DEPLOYMENT_KEYS)
        launcher = entry.get("launcher", defaults["launcher"])
        if launcher not in ("mpirun", "existing", "command"):
            raise StudyError(f"{where}: unknown launcher {launcher!r} (mpirun, existing, command)")
        if launcher != "existing" and "model" not in entry:
            raise StudyError(f"{where}: 'model' is required")
        values = {key: as_list(entry.get(key, 1 if key in ("tp", "replicas", "threads") else 64))
                  for key in EXPANDED_KEYS}
        for combo in itertools.product(*(values[k] for k in EXPANDED_KEYS)):
            out.append(make_deployment(where, entry, launcher, dict(zip(EXPANDED_KEYS, combo)),
                                       root, defaults))
    names = [d.name for d in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StudyError(f"deployments: duplicate names {', '.join(duplicates)}; set 'name'")
    return out


def make_deployment(where, entry, launcher, sizes, root, defaults):
    for key, value in sizes.items():
        positive_int(f"{where}.{key}", value)
    model = entry.get("model")
    model_dir = os.path.normpath(os.path.join(root, model)) if model else None
    model_name = entry.get("model_name") or (os.path.basename(model_dir) if model_dir else None)
    if not model_name:
        raise StudyError(f"{where}: 'model_name' is required for an existing coordinator")
    shard_args = [str(a) for a in as_list(entry.get("shard_args", []))]
    if entry.get("random_weights"):
        shard_args.append("--random-weights")
    if "num_kv_blocks" in entry:
        shard_args += ["--num-kv-blocks", str(positive_int(f"{where}.num_kv_blocks",
                                                           entry["num_kv_blocks"]))]
    name = entry.get("name") or f"{model_name}-tp{sizes['tp']}-r{sizes['replicas']}"
    if entry.get("name") and any(len(as_list(entry.get(k, 1))) > 1 for k in EXPANDED_KEYS):
        name = f"{entry['name']}-tp{sizes['tp']}-r{sizes['replicas']}"
    tokenizer_from = entry.get("tokenizer_from", defaults["tokenizer_from"])
    return Deployment(
        name=name, launcher=launcher, model_dir=model_dir, model_name=model_name,
        tp=sizes["tp"], replicas=sizes["replicas"], device=entry.get("device", "cpu"),
        threads=sizes["threads"], capacity=sizes["capacity"], shard_args=shard_args,
        coordinator_args=[str(a) for a in as_list(entry.get("coordinator_args",
                                                            defaults["coordinator_args"]))],
        tokenizer_from=os.path.join(root, tokenizer_from) if tokenizer_from else None,
        settings={k: entry[k] for k in ("grpc", "http", "start", "stop") if k in entry})


def flag_args(settings):
    """{"requests": 32, "ignore_eos": False} -> ["--requests", "32", "--no-ignore-eos"]."""
    args = []
    for key, value in settings.items():
        if key in LOADGEN_ONLY_KEYS:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False:
            args.append("--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


def expand_points(sweep, loadgen):
    check_keys("sweep", sweep, SWEEP_KEYS)
    if not isinstance(loadgen, dict):
        raise StudyError(f"loadgen: expected a mapping, got {loadgen!r}")
    reserved = sorted(set(loadgen) & (SWEEP_KEYS | DRIVER_FLAGS))
    if reserved:
        raise StudyError(f"loadgen: {', '.join(reserved)} are set by the sweep and the driver")
    if ("concurrency" in sweep) == ("rate" in sweep):
        raise StudyError("sweep: give exactly one of 'concurrency' (closed loop) or 'rate'")
    if "context_len" in sweep and "input_len" in sweep:
        raise StudyError("sweep: give 'input_len' or 'context_len', not both")
    axis = "concurrency" if "concurrency" in sweep else "rate"
    loads = as_list(sweep[axis])
    outputs = [str(v) for v in as_list(sweep.get("output_len", 128))]
    per_concurrency = loadgen.get("requests_per_concurrency", 0)
    points = []
    for load, output in itertools.product(loads, outputs):
        if "context_len" in sweep:
            inputs = []
            for context in as_list(sweep["context_len"]):
                if int(context) <= int(output.split("-")[-1]):
                    raise StudyError(f"sweep: context_len {context} leaves no room for "
                                     f"output_len {output}")
                inputs.append(str(int(context) - int(output.split("-")[-1])))
        else:
            inputs = [str(v) for v in as_list(sweep.get("input_len", 128))]
        for input_len in inputs:
            points.append(make_point(axis, load, input_len, output, loadgen, per_concurrency))
    return axis, points


def make_point(axis, load, input_len, output_len, loadgen, per_concurrency):
    settings = dict(loadgen)
    if axis == "concurrency":
        concurrency, rate = positive_int("sweep.concurrency", load), None
        name = f"c{concurrency}"
        settings["concurrency"] = concurrency
        if per_concurrency and "requests" in settings:
            settings["requests"] = max(int(settings["requests"]), per_concurrency * concurrency)
    else:
        if not isinstance(load, (int, float)) or load <= 0:
            raise StudyError(f"sweep.rate: expected a positive number, got {load!r}")
        concurrency, rate = None, float(load)
        name = f"rate{load:g}"
        settings["rate"] = rate
        settings.setdefault("concurrency", 0)
    settings["input_len"] = input_len
    settings["output_len"] = output_len
    return Point(name=f"{name}-in{input_len}-out{output_len}", concurrency=concurrency, rate=rate,
                 input_len=input_len, output_len=output_len, loadgen_args=flag_args(settings))


def load_study(path, root):
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise StudyError(f"cannot read {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise StudyError(f"{path}: not valid YAML: {e}") from e
    check_keys(path, raw, TOP_KEYS)
    for key in ("deployments", "sweep"):
        if key not in raw:
            raise StudyError(f"{path}: '{key}' is required")
    defaults = {"launcher": raw.get("launcher", "mpirun"),
                "tokenizer_from": raw.get("tokenizer_from", "assets/models/stories260K"),
                "coordinator_args": raw.get("coordinator_args", [])}
    axis, points = expand_points(raw["sweep"], raw.get("loadgen", {}) or {})
    return Study(
        name=str(raw.get("name") or os.path.splitext(os.path.basename(path))[0]),
        description=str(raw.get("description", "")).strip(), path=path,
        build=os.path.join(root, raw.get("build", "build")),
        mpirun=mpirun_command(raw.get("mpirun")),
        deployments=expand_deployments(raw["deployments"], root, defaults), points=points,
        ready_timeout_s=float(raw.get("ready_timeout_s", 180)),
        point_timeout_s=float(raw.get("point_timeout_s", 900)), load_axis=axis)
