#!/usr/bin/env bash
# Set up lrtune in .venv/ at the repository root (idempotent: a second run only checks).
# torch first, pinned: an unpinned torch may pull a multi-GB CUDA build where a CPU wheel serves.
# Override with LRTUNE_TORCH_SPEC (e.g. "torch==2.13.0" from a CUDA index on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q "${LRTUNE_TORCH_SPEC:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -c "import lrtune, torch, ray, optuna, mlflow, gymnasium" \
  || { echo "lrtune set-up failed: the imports above did not work" >&2; exit 1; }
# Debian chromium (+ chromium-driver) for the report's browser test: only when missing, only as
# root (elsewhere the test is skipped), quietly; a second run finds it and does nothing.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "lrtune set-up: could not install chromium; the report's browser test will be skipped" >&2
fi
# Debian PostgreSQL for the cluster e2e test's MLflow server backend (initdb/pg_ctl live in
# /usr/lib/postgresql/<v>/bin): only when missing, only as root (elsewhere the test falls back to
# a sqlite backend and says so), quietly; a second run finds it and does nothing.
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
    && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql; } >/dev/null 2>&1 \
    || echo "lrtune set-up: could not install postgresql; the cluster e2e test will use sqlite" >&2
fi
