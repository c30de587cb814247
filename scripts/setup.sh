#!/usr/bin/env bash
# Create .venv with coldbrew and everything its tests need, offline-friendly and CPU-only.
# torch is pinned to the CPU build first, so no dependency pulls the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[all]"
echo "coldbrew installed in .venv ($(.venv/bin/python -c 'import coldbrew; print(coldbrew.__version__)'))"
