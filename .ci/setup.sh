#!/usr/bin/env bash
# Set up lrtune in .venv/ at the repository root (idempotent: a second run only checks).
# torch first, pinned: an unpinned torch may pull a multi-GB CUDA build where a CPU wheel serves.
# Override with LRTUNE_TORCH_SPEC (e.g. "torch==2.13.0" from a CUDA index on a GPU machine).
# Usage: bash .ci/setup.sh [--system-deps]
set -euo pipefail
cd "$(dirname "$0")/.."
SYSTEM_DEPS=0
for arg in "$@"; do
  case "$arg" in
    --system-deps) SYSTEM_DEPS=1 ;;
    *) echo "usage: bash .ci/setup.sh [--system-deps]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# LRTUNE_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu): the index torch comes from,
# where pip's own would pull the CUDA build.
torch_args=("${LRTUNE_TORCH_SPEC:-torch==2.13.0}")
if [ -n "${LRTUNE_TORCH_INDEX:-}" ]; then torch_args+=(--index-url "$LRTUNE_TORCH_INDEX"); fi
.venv/bin/python -m pip install -q "${torch_args[@]}"
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -c "import lrtune, torch, ray, optuna, mlflow, gymnasium" \
  || { echo "lrtune set-up failed: the imports above did not work" >&2; exit 1; }
# System packages, only with --system-deps (CI passes it; a user opts in): Debian chromium
# (+ chromium-driver) for the report's browser test and PostgreSQL for the cluster e2e test's
# MLflow backend. Without them those two tests skip or fall back to sqlite and say so. Only as
# root, only what is missing; a second run finds them and does nothing.
if [ "$SYSTEM_DEPS" = "1" ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
  if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "lrtune set-up: apt-get install ${missing[*]}" >&2
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 \
        || echo "lrtune set-up: could not install ${missing[*]}; their tests will skip" >&2
    else
      echo "lrtune set-up: --system-deps needs root and apt-get to install ${missing[*]}" >&2
    fi
  fi
fi
