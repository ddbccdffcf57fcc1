#!/usr/bin/env bash
# Prepares a PostgreSQL primary for a streaming standby: a replication role,
# a replication slot, pg_hba, and the commit rule (deploy/REPLICATION.md).
# Run where psql reaches the primary as a superuser, as the user that owns
# its data directory (pg_hba.conf is edited in place).
#
#   PGHOST/PGPORT/PGUSER   the primary (libpq variables)
#   MODE           sync (default): a commit waits for the standby; async: it does not
#   COMMIT         with sync: on (default; the standby has the WAL on disk) or
#                  remote_apply (also replayed: reads on the standby see it at once)
#   STANDBY_NAME   the standby's application_name (default tapvault_standby)
#   STANDBY_ADDR   address/CIDR the standby connects from (default 127.0.0.1/32)
#   REPL_PASSWORD  password for the tapvault_repl role (empty: trust, test clusters only)
set -euo pipefail
MODE=${MODE:-sync}
COMMIT=${COMMIT:-on}
STANDBY_NAME=${STANDBY_NAME:-tapvault_standby}
STANDBY_ADDR=${STANDBY_ADDR:-127.0.0.1/32}
REPL_PASSWORD=${REPL_PASSWORD:-}
case "$MODE" in sync|async) ;; *) echo "MODE must be sync or async" >&2; exit 2 ;; esac
case "$COMMIT" in on|remote_apply) ;; *) echo "COMMIT must be on or remote_apply" >&2; exit 2 ;; esac
[[ "$STANDBY_NAME" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "STANDBY_NAME: lower-case letters, digits, _" >&2; exit 2; }

q() { psql -X -v ON_ERROR_STOP=1 -At -d postgres "$@"; }

if [ -n "$REPL_PASSWORD" ]; then
  q -v pw="$REPL_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE tapvault_repl WITH REPLICATION LOGIN PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tapvault_repl') \gexec
SELECT format('ALTER ROLE tapvault_repl WITH PASSWORD %L', :'pw') \gexec
SQL
  method=scram-sha-256
else
  q -c "SELECT 'CREATE ROLE tapvault_repl WITH REPLICATION LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tapvault_repl')" | q
  method=trust
fi

# A slot keeps the WAL the standby still needs, even while it is away.
q -c "SELECT pg_create_physical_replication_slot('$STANDBY_NAME') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '$STANDBY_NAME')" >/dev/null

hba=$(q -c 'SHOW hba_file')
line="host replication tapvault_repl $STANDBY_ADDR $method"
grep -qxF "$line" "$hba" || { echo "# tapvault standby" >> "$hba"; echo "$line" >> "$hba"; }

if [ "$MODE" = sync ]; then
  q -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ($STANDBY_NAME)'" >/dev/null
  q -c "ALTER SYSTEM SET synchronous_commit = '$COMMIT'" >/dev/null
else
  q -c "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
  q -c "ALTER SYSTEM SET synchronous_commit = 'on'" >/dev/null
fi
# wal_level = replica and max_wal_senders = 10 are PostgreSQL's defaults
# (since 10); a primary that lowered them needs a restart after raising them.
q -c "SELECT pg_reload_conf()" >/dev/null
echo "primary ready: mode $MODE, standby '$STANDBY_NAME' from $STANDBY_ADDR (slot $STANDBY_NAME)"
if [ "$(q -c 'SHOW wal_level')" = minimal ]; then
  echo "wal_level is minimal: set it to replica and restart the primary" >&2
  exit 1
fi
