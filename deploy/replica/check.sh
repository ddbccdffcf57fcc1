#!/usr/bin/env bash
# Shows replication from the primary's side (pg_stat_replication) and
# exits 0 only when a standby streams in the expected sync state.
#   PGHOST/PGPORT/PGUSER   the primary
#   WANT                   sync (default) or async
set -euo pipefail
WANT=${WANT:-sync}
psql -X -d postgres -c "SELECT application_name, client_addr, state, sync_state,
  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS replay_lag_bytes, replay_lag
  FROM pg_stat_replication"
n=$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = '$WANT'")
[ "$n" -ge 1 ] || { echo "no standby streaming in $WANT mode" >&2; exit 1; }
