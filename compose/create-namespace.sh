#!/bin/sh
# One-shot job: waits for the Temporal frontend, then creates the namespace unless it exists.
# Every call shows the admin client certificate: the frontend takes no connection without one.
set -eu
temporal() {
  command temporal "$@" --address "$TEMPORAL_ADDRESS" --tls-ca-path "$TEMPORAL_TLS_CA" \
    --tls-cert-path "$TEMPORAL_TLS_CERT" --tls-key-path "$TEMPORAL_TLS_KEY" --tls-server-name temporal
}
until temporal operator cluster health; do
  echo 'waiting for temporal…'
  sleep 3
done
temporal operator namespace describe -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$TEMPORAL_NAMESPACE" --retention 30d
echo "namespace $TEMPORAL_NAMESPACE ready"
# The case search attributes (the worker also registers them when it can).
for attribute in CaseStatus=Keyword CaseStep=Keyword CounselorId=Keyword TransferId=Keyword CaseDueAt=Datetime; do
  temporal operator search-attribute create -n "$TEMPORAL_NAMESPACE" \
    --name "${attribute%%=*}" --type "${attribute#*=}" 2>/dev/null || true
done
echo 'search attributes ready'
