#!/bin/sh
# Runs once, when the PostgreSQL volume is first created: handoff's database and its two roles (README, "Database
# roles"). handoff_owner owns the schema and is used only by the migrate job; handoff_app is what the worker and the
# API log in as, and the migrate job grants it the service's privileges (only SELECT and INSERT on audit_events).
# Passwords travel as psql variables, quoted by psql, never pasted into the SQL text.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v owner_password="$HANDOFF_OWNER_PASSWORD" -v app_password="$HANDOFF_DB_PASSWORD" <<'SQL'
create role handoff_owner login nosuperuser nocreatedb nocreaterole password :'owner_password';
create role handoff_app login nosuperuser nocreatedb nocreaterole password :'app_password';
create database handoff owner handoff_owner;
\connect handoff
revoke create on schema public from public;
grant usage on schema public to handoff_app;
SQL
