"""Runs a scaling study: starts each deployment of a study file, runs shardwise-loadgen at
every sweep point, tears the deployment down, and writes results.json, the raw loadgen JSON
of every point (raw/DEPLOYMENT/POINT.json.gz), the logs of each deployment (runs/), and the
report (report.md and PNG plots).

Usage: scripts/scaling-study.sh STUDY.yaml [--out DIR] [--build DIR] [--only TEXT]
       scripts/scaling-study.sh --report-only DIR
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployments  # noqa: E402
import report  # noqa: E402
from study_config import StudyError, load_study  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(message):
    print(f"[study {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def command_output(argv, cwd=None):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine_info():
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), None)
        with open("/proc/meminfo") as f:
            memory_kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        memory_kb = 0
    gpus = command_output(["nvidia-smi", "-L"]) if shutil.which("nvidia-smi") else None
    return {"hostname": platform.node(), "kernel": platform.release(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gib": round(memory_kb / 2**20, 1),
            "gpus": gpus.splitlines() if gpus else [], "load_average_start": os.getloadavg()}


def versions(study):
    mpirun = command_output([study.mpirun[0], "--version"])
    nvcc = command_output(["nvcc", "--version"]) if shutil.which("nvcc") else None
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT)
    return {"commit": command_output(["git", "rev-parse", "HEAD"], cwd=ROOT),
            "commit_dirty": bool(dirty),
            "branch": command_output(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=ROOT),
            "mpirun": mpirun.splitlines()[0] if mpirun else None,
            "grpc": command_output(["pkg-config", "--modversion", "grpc++"]),
            "cuda": nvcc.splitlines()[-1] if nvcc else None,
            "python": platform.python_version()}


def gpus_present():
    out = command_output(["nvidia-smi", "-L"]) if shutil.which("nvidia-smi") else None
    return len([line for line in (out or "").splitlines() if line.startswith("GPU")])


def skip_reason(deployment, study):
    if deployment.launcher == "mpirun":
        for binary in ("shardwise-coordinator", "shardwise-shard"):
            if not os.access(os.path.join(study.build, "bin", binary), os.X_OK):
                return f"{binary} is not built in {study.build}"
    if deployment.device == "cuda" and deployment.launcher == "mpirun":
        have = gpus_present()
        if have < deployment.ranks:
            return f"needs {deployment.ranks} GPUs, this machine has {have}"
    return None


def run_point(study, deployment, launcher, point, raw_dir):
    loadgen = os.path.join(study.build, "bin", "shardwise-loadgen")
    os.makedirs(raw_dir, exist_ok=True)
    raw = os.path.join(raw_dir, f"{point.name}.json")
    argv = [loadgen, "--model", deployment.model_name, "--grpc", launcher.grpc,
            "--http", launcher.http, "--out", raw, "--label", f"{deployment.name}/{point.name}",
            "--progress", "off", "--quiet", *point.loadgen_args]
    entry = {"deployment": deployment.name, "point": point.name, "load": point.load,
             "concurrency": point.concurrency, "rate": point.rate, "input_len": point.input_len,
             "output_len": point.output_len, "command": argv}
    try:
        done = subprocess.run(argv, capture_output=True, text=True,
                              timeout=study.point_timeout_s)
    except subprocess.TimeoutExpired:
        entry["error"] = f"shardwise-loadgen ran past {study.point_timeout_s:.0f} s"
        return entry
    if done.returncode != 0:
        entry["error"] = f"shardwise-loadgen exited {done.returncode}: {done.stderr.strip()}"
        return entry
    with open(raw) as f:
        result = json.load(f)
    # Compressed: the per-request rows (every inter-token gap) are most of a study's bytes.
    with open(raw, "rb") as f, gzip.open(raw + ".gz", "wb") as out:
        shutil.copyfileobj(f, out)
    os.remove(raw)
    entry["raw"] = os.path.relpath(raw + ".gz", os.path.dirname(os.path.dirname(raw_dir)))
    for key in ("summary", "server", "client", "warmup", "machine"):
        entry[key] = result.get(key)
    return entry


def run_deployment(study, deployment, out_dir, results):
    record = {"name": deployment.name, "model_name": deployment.model_name,
              "model_dir": deployment.model_dir, "launcher": deployment.launcher,
              "tp": deployment.tp, "replicas": deployment.replicas, "device": deployment.device,
              "threads": deployment.threads, "capacity": deployment.capacity}
    results["deployments"].append(record)
    reason = skip_reason(deployment, study)
    if reason:
        record["skipped"] = reason
        log(f"{deployment.name}: skipped ({reason})")
        return
    run_dir = os.path.join(out_dir, "runs", deployment.name)
    launcher = deployments.make_launcher(deployment, study, run_dir)
    started = time.monotonic()
    try:
        log(f"{deployment.name}: starting")
        launcher.start()
        record["grpc"], record["http"] = launcher.grpc, launcher.http
        record["ready_s"] = round(time.monotonic() - started, 2)
        for i, point in enumerate(study.points):
            entry = run_point(study, deployment, launcher, point, os.path.join(out_dir, "raw",
                                                                               deployment.name))
            results["points"].append(entry)
            summary = entry.get("summary")
            log(f"{deployment.name} [{i + 1}/{len(study.points)}] {point.name}: " +
                (f"{summary['output_throughput']:.0f} output tok/s, {summary['errors']} errors"
                 if summary else entry["error"]))
    except deployments.DeploymentError as e:
        record["error"] = str(e)
        log(f"{deployment.name}: {e}")
    finally:
        record["session_ids"] = launcher.session_ids()
        record["clean_teardown"] = launcher.stop()
        shutil.rmtree(os.path.join(run_dir, "models"), ignore_errors=True)  # staged copies
        if not record["clean_teardown"]:
            log(f"{deployment.name}: processes survived SIGKILL: {launcher.session_ids()}")


def run_study(args):
    study = load_study(args.study, ROOT)
    if args.build:
        study.build = os.path.abspath(args.build)
    if args.only:
        study.deployments = [d for d in study.deployments if args.only in d.name]
    out_dir = os.path.abspath(args.out or os.path.join("studies", study.name))
    os.makedirs(out_dir, exist_ok=True)
    results = {"study": study.name, "description": study.description,
               "study_file": os.path.relpath(os.path.abspath(study.path), ROOT),
               "command": " ".join(["scripts/scaling-study.sh", *sys.argv[1:]]),
               "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds"),
               "load_axis": study.load_axis, "machine": machine_info(),
               "versions": versions(study), "deployments": [], "points": []}
    with open(args.study) as f:
        results["study_yaml"] = f.read()
    log(f"{study.name}: {len(study.deployments)} deployments x {len(study.points)} points -> "
        f"{out_dir}")
    try:
        for deployment in study.deployments:
            run_deployment(study, deployment, out_dir, results)
    finally:
        results["machine"]["load_average_end"] = os.getloadavg()
        results["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    report.write_report(out_dir)
    log(f"report: {os.path.join(out_dir, 'report.md')}")
    failed = [d["name"] for d in results["deployments"]
              if d.get("error") or not d.get("clean_teardown", True)]
    failed += [f"{p['deployment']}/{p['point']}" for p in results["points"] if p.get("error")]
    if failed:
        log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", nargs="?", help="the study file (YAML)")
    parser.add_argument("--out", help="output folder (default: studies/NAME)")
    parser.add_argument("--build", help="build folder with bin/ (default: the study's, or build)")
    parser.add_argument("--only", help="run only the deployments whose name contains this")
    parser.add_argument("--report-only", metavar="DIR",
                        help="rewrite the report of a finished study from its results.json")
    args = parser.parse_args()
    if args.report_only:
        report.write_report(os.path.abspath(args.report_only))
        return 0
    if not args.study:
        parser.error("a study file is required")
    # SIGTERM (and SIGINT) unwind through the finally blocks, which stop every deployment.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        return run_study(args)
    except StudyError as e:
        print(f"scaling-study: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
