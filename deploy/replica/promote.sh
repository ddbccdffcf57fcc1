#!/usr/bin/env bash
# Promotes the standby to primary once the old primary is gone (fence it
# first: it must never take writes again), then decides what the new
# primary waits for.
#   PGHOST/PGPORT/PGUSER   the standby
#   KEEP_SYNC=1            keep synchronous_standby_names (copied from the old
#                          primary): commits then wait until a new standby
#                          attaches. Default: clear it, so writes go on
#                          without a standby until one is rebuilt.
set -euo pipefail
q() { psql -X -v ON_ERROR_STOP=1 -At -d postgres "$@"; }
[ "$(q -c 'SELECT pg_is_in_recovery()')" = t ] || { echo "not a standby (already promoted?)" >&2; exit 1; }
q -c "SELECT pg_promote(true, 60)" >/dev/null
if [ "${KEEP_SYNC:-0}" != 1 ]; then
  q -c "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
  q -c "SELECT pg_reload_conf()" >/dev/null
fi
echo "promoted: $(q -c 'SELECT NOT pg_is_in_recovery()') (synchronous_standby_names = '$(q -c 'SHOW synchronous_standby_names')')"
