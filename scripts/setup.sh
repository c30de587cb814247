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
# the browser test drives Debian's chromium; install it where apt is available (CI runs as root)
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = "0" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq chromium chromium-driver >/dev/null; } \
    || echo "could not install chromium: the browser test will be skipped"
fi
echo "coldbrew installed in .venv ($(.venv/bin/python -c 'import coldbrew; print(coldbrew.__version__)'))"
