#!/usr/bin/env bash
# Time and size of a fresh `pip install coldbrew` and `coldbrew[all]`, each in a new venv.
# Usage: scripts/measure-install.sh dist/coldbrew-*.whl   (build it with: pip wheel --no-deps . -w dist)
# torch==2.13.0 is installed first, as the README says (the CPU build where pip is set up for it).
set -euo pipefail
WHEEL=$(realpath "$1")
WORK=$(mktemp -d)
for target in base all; do
  python3 -m venv "$WORK/$target"
  spec="$WHEEL"; [ "$target" = all ] && spec="coldbrew[all] @ file://$WHEEL"
  start=$(date +%s)
  "$WORK/$target/bin/pip" install -q "torch==2.13.0"
  "$WORK/$target/bin/pip" install -q "$spec"
  seconds=$(( $(date +%s) - start ))
  echo "$target: ${seconds} s, $(du -sm "$WORK/$target" | cut -f1) MB," \
    "$("$WORK/$target/bin/pip" list 2>/dev/null | tail -n +3 | wc -l) packages"
done
rm -rf "$WORK"
