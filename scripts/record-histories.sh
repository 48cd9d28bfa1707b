#!/usr/bin/env bash
# Runs the process tests and adopts the histories they recorded as the replay test's fixtures.
# Do this when a workflow change is meant to be compatible, and commit the result with it.
set -euo pipefail
cd "$(dirname "$0")/.."
npx jest tests/case-process.test.ts tests/case-timers.test.ts tests/transfer.test.ts
cp .data/test/histories/*.json tests/histories/
ls tests/histories
