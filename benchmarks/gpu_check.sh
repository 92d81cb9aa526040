#!/usr/bin/env bash
# Paper-size SFT steps on a GPU for one minute (random-init 1B-shaped Llama, no download):
# prints cases/s, peak GPU memory and report latency as a table. Under 5 minutes.
#   bash benchmarks/gpu_check.sh [--seconds 60] [--batch-size 1] [--dry-run]
# --dry-run: tiny sizes on the CPU (what the test suite runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec timeout 300 "$PY" benchmarks/gpu_check.py "$@"
