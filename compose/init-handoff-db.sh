#!/bin/sh
# Runs once, when the PostgreSQL volume is first created: the service's own role and database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
create role handoff login password '${HANDOFF_DB_PASSWORD}';
create database handoff owner handoff;
SQL
