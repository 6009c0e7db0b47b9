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
