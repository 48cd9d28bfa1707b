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
