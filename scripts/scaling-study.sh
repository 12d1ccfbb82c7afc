#!/usr/bin/env bash
# A scaling study in one command: starts each deployment named in STUDY.yaml, runs
# shardwise-loadgen at every sweep point, tears everything down and writes the report
# (report.md, PNG plots, results.json and the raw loadgen JSON) to --out (default studies/NAME).
#   scripts/scaling-study.sh bench/study/cpu-tp.yaml [--out DIR] [--build DIR] [--only TEXT]
#   scripts/scaling-study.sh --report-only DIR      (redraw a finished study's report)
# Needs the build (scripts/build.sh build) and Debian's python3-yaml and python3-matplotlib
# (scripts/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3  # Debian's, which has python3-yaml and python3-matplotlib
[ -x "$python" ] || python=$(command -v python3)
exec "$python" "$root/bench/study/study.py" "$@"
