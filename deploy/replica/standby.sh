#!/usr/bin/env bash
# Makes an empty data directory a streaming standby of the primary
# (pg_basebackup -R with the primary's slot), and starts it with START=1.
# Run as the user that will own the standby's data directory.
#
#   PRIMARY_HOST, PRIMARY_PORT   the primary
#   STANDBY_PGDATA               the new (empty or missing) data directory
#   STANDBY_PORT                 the standby's port (default 5432)
#   STANDBY_NAME                 application_name = slot name (default tapvault_standby)
#   REPL_PASSWORD                the tapvault_repl password (empty: trust)
#   PGBIN                        PostgreSQL's bin dir (default: from PATH)
#   START=1                      start it (pg_ctl), listening on STANDBY_LISTEN
#                                (default 127.0.0.1) and SOCKET_DIR (default /tmp)
set -euo pipefail
: "${PRIMARY_HOST:?}" "${PRIMARY_PORT:?}" "${STANDBY_PGDATA:?}"
STANDBY_PORT=${STANDBY_PORT:-5432}
STANDBY_NAME=${STANDBY_NAME:-tapvault_standby}
bin() { if [ -n "${PGBIN:-}" ]; then echo "$PGBIN/$1"; else echo "$1"; fi; }

if [ -e "$STANDBY_PGDATA/PG_VERSION" ]; then
  echo "$STANDBY_PGDATA already holds a cluster; rebuild it into an empty directory" >&2
  exit 1
fi
export PGPASSWORD=${REPL_PASSWORD:-}
"$(bin pg_basebackup)" -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U tapvault_repl \
  -D "$STANDBY_PGDATA" -R -S "$STANDBY_NAME" -X stream -c fast
# -R wrote standby.signal and a primary_conninfo; name the standby so the
# primary's synchronous_standby_names finds it (the last setting wins).
conninfo="host=$PRIMARY_HOST port=$PRIMARY_PORT user=tapvault_repl application_name=$STANDBY_NAME"
[ -n "${REPL_PASSWORD:-}" ] && conninfo="$conninfo password=$REPL_PASSWORD"
{
  echo "primary_conninfo = '$conninfo'"
  echo "primary_slot_name = '$STANDBY_NAME'"
  echo "port = $STANDBY_PORT"
  echo "hot_standby = on"
} >> "$STANDBY_PGDATA/postgresql.auto.conf"
chmod 700 "$STANDBY_PGDATA"
if [ "${START:-0}" = 1 ]; then
  "$(bin pg_ctl)" -D "$STANDBY_PGDATA" -l "$STANDBY_PGDATA/server.log" -w \
    -o "-c listen_addresses=${STANDBY_LISTEN:-127.0.0.1} -c unix_socket_directories=${SOCKET_DIR:-/tmp}" start
fi
echo "standby ready in $STANDBY_PGDATA (port $STANDBY_PORT, name $STANDBY_NAME)"
