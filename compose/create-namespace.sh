#!/bin/sh
# One-shot job: waits for the Temporal frontend, then creates the namespace unless it exists.
set -eu
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
  echo 'waiting for temporal…'
  sleep 3
done
temporal operator namespace describe -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$TEMPORAL_NAMESPACE" --retention 30d --address "$TEMPORAL_ADDRESS"
echo "namespace $TEMPORAL_NAMESPACE ready"
# The case search attributes (the worker also registers them when it can).
for attribute in CaseStatus=Keyword CaseStep=Keyword CounselorId=Keyword TransferId=Keyword CaseDueAt=Datetime; do
  temporal operator search-attribute create -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" \
    --name "${attribute%%=*}" --type "${attribute#*=}" 2>/dev/null || true
done
echo 'search attributes ready'
