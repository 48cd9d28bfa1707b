#!/bin/sh
# One-shot job: creates Temporal's two databases and brings their schemas up to date.
# Safe to run again: creation is skipped when the database exists; update-schema is idempotent.
set -eu
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p 5432 "$@"; }
for db in temporal temporal_visibility; do
  tool --db "$db" create 2>/dev/null || echo "database $db exists"
done
if ! tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned 2>/dev/null; then
  tool --db temporal setup-schema -v 0.0
  tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
fi
if ! tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned 2>/dev/null; then
  tool --db temporal_visibility setup-schema -v 0.0
  tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
fi
echo 'temporal schema ready'
