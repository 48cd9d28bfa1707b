#!/usr/bin/env bash
# Runs the process tests and adds the histories they recorded to the replay test's fixtures, under a label
# (the release or change they were recorded on). Histories already kept are never overwritten: every one of
# them is replayed in CI, so a change that would break cases started on an earlier release fails there.
set -euo pipefail
cd "$(dirname "$0")/.."
label="${1:?usage: npm run histories:record -- <label, e.g. the release>}"
[[ "$label" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "the label may hold letters, digits, . _ - only" >&2; exit 64; }
npx jest --maxWorkers=1 tests/case-process.test.ts tests/case-timers.test.ts tests/transfer.test.ts tests/record-facts.test.ts
for file in .data/test/histories/*.json; do
  target="tests/histories/$(basename "$file" .json)@$label.json"
  if [[ -e "$target" ]]; then echo "kept: $target already exists" >&2; continue; fi
  cp "$file" "$target"
  echo "added $target"
done
