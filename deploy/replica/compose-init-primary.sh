#!/usr/bin/env bash
# Run once by the postgres image when the primary's volume is first
# initialised (docker-entrypoint-initdb.d): the replication role, the
# standby's slot and pg_hba line, and the synchronous commit rule, which
# takes effect when the image starts the real server (not during init,
# where nothing could answer for the standby yet).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v pw="${REPL_PASSWORD:?set REPL_PASSWORD}" <<'SQL'
SELECT format('CREATE ROLE tapvault_repl WITH REPLICATION LOGIN PASSWORD %L', :'pw') \gexec
SELECT pg_create_physical_replication_slot('tapvault_standby');
ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (tapvault_standby)';
ALTER SYSTEM SET synchronous_commit = 'on';
SQL
echo "host replication tapvault_repl all scram-sha-256" >> "$PGDATA/pg_hba.conf"
