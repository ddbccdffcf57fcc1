//! The receipt log (`migrations/0008`): entries are appended by triggers in
//! the same transaction as the items; this module reads them, records the
//! signed heads, checks an entry's item is still stored, and replays an
//! exported log on import.

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::time::Timestamp;
use sqlx::{FromRow, PgConnection, Postgres, Transaction};
use tapvault_codec::log::{Entry, Kind};

const ENTRY_COLS: &str =
    "seq, kind, content_hash, tapvault_micros(arrived_at) AS arrived_at, leaf_hash";

/// The committed size of the tenant's log.
pub async fn size(conn: &mut PgConnection, tenant: TenantId) -> Result<u64, StoreError> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT log_size FROM tenant_usage WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(n.unwrap_or(0) as u64)
}

/// Entries `from..from+limit` in index order, each checked against its
/// leaf hash (a changed one is an error: the signer must not sign over it).
pub async fn entries(
    conn: &mut PgConnection,
    tenant: TenantId,
    from: u64,
    limit: u64,
) -> Result<Vec<Entry>, StoreError> {
    stored_entries(conn, tenant, from, limit)
        .await?
        .into_iter()
        .map(StoredEntry::entry)
        .collect()
}

/// A log entry exactly as stored, checked against nothing: what
/// `ListLogEntries` serves, so that an auditor outside can find an entry
/// changed behind the server's back (its fields no longer hash to its
/// leaf) and name it, rather than get an error for every page holding it.
#[derive(FromRow, Clone, Debug)]
pub struct StoredEntry {
    pub seq: i64,
    pub kind: i16,
    pub content_hash: Vec<u8>,
    pub arrived_at: Timestamp,
    pub leaf_hash: Vec<u8>,
}

impl StoredEntry {
    /// The entry, refusing a row whose stored leaf hash disagrees with its
    /// fields (changed behind the server's back).
    pub fn entry(self) -> Result<Entry, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("log entry {} {what}", self.seq));
        let kind = u8::try_from(self.kind)
            .ok()
            .and_then(Kind::from_code)
            .ok_or_else(|| corrupt(&format!("kind {}", self.kind)))?;
        let content_hash: [u8; 32] = self.content_hash[..]
            .try_into()
            .map_err(|_| corrupt("has a content hash that is not 32 bytes"))?;
        let e = Entry {
            kind,
            content_hash,
            index: self.seq as u64,
            arrived_at: self.arrived_at.micros(),
        };
        if e.leaf_hash()[..] != self.leaf_hash[..] {
            return Err(corrupt("does not match its leaf hash"));
        }
        Ok(e)
    }
}

/// Entries `from..from+limit` in index order, as stored.
pub async fn stored_entries(
    conn: &mut PgConnection,
    tenant: TenantId,
    from: u64,
    limit: u64,
) -> Result<Vec<StoredEntry>, StoreError> {
    let q = format!(
        "SELECT {ENTRY_COLS} FROM log_entries WHERE tenant_id = $1 AND seq >= $2
         ORDER BY seq LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(tenant)
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?)
}

/// The first entry of each item, in one query.
pub async fn first_entries(
    conn: &mut PgConnection,
    tenant: TenantId,
    items: &[(Kind, [u8; 32])],
) -> Result<std::collections::HashMap<(Kind, [u8; 32]), Entry>, StoreError> {
    let kinds: Vec<i16> = items.iter().map(|(k, _)| k.code() as i16).collect();
    let hashes: Vec<&[u8]> = items.iter().map(|(_, h)| &h[..]).collect();
    let q = format!(
        "SELECT DISTINCT ON (e.kind, e.content_hash) {ENTRY_COLS}
         FROM unnest($2::INT2[], $3::BYTEA[]) AS i(k, h)
         JOIN log_entries e ON e.tenant_id = $1 AND e.kind = i.k AND e.content_hash = i.h
         ORDER BY e.kind, e.content_hash, e.seq"
    );
    let rows: Vec<StoredEntry> = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(tenant)
        .bind(&kinds)
        .bind(&hashes)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = std::collections::HashMap::with_capacity(rows.len());
    for r in rows {
        let e = r.entry()?;
        out.insert((e.kind, e.content_hash), e);
    }
    Ok(out)
}

/// Which of these items of one kind are stored with exactly those bytes
/// (one query).
pub async fn stored_many(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: Kind,
    hashes: &[[u8; 32]],
) -> Result<std::collections::HashSet<[u8; 32]>, StoreError> {
    let q = match kind {
        // The proof's bytes, still hashing to their key (its leaves cannot
        // outlive it: they reference it).
        Kind::Proof => {
            "SELECT p.hash FROM unnest($2::BYTEA[]) AS x(h)
             JOIN proofs p ON p.tenant_id = $1 AND p.hash = x.h WHERE sha256(p.raw) = p.hash"
        }
        Kind::WalletBackup => {
            "SELECT w.sha256 FROM unnest($2::BYTEA[]) AS x(h)
             JOIN wallet_backups w ON w.tenant_id = $1 AND w.sha256 = x.h
             WHERE sha256(w.raw) = w.sha256"
        }
        Kind::Address => {
            "SELECT tapvault_address_hash(a.encoded) FROM unnest($2::BYTEA[]) AS x(h)
             JOIN addresses a ON a.tenant_id = $1 AND tapvault_address_hash(a.encoded) = x.h"
        }
        Kind::Tapscript => {
            "SELECT t.content_hash FROM unnest($2::BYTEA[]) AS x(h)
             JOIN tapscripts t ON t.tenant_id = $1 AND t.content_hash = x.h
             WHERE sha256(t.root_hash || COALESCE(t.raw_key, ''::BYTEA) || t.leaves) = t.content_hash"
        }
    };
    let hs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
    let rows: Vec<[u8; 32]> = sqlx::query_scalar(q)
        .bind(tenant)
        .bind(&hs)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// A signed tree head as recorded.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct StoredHead {
    pub tree_size: i64,
    pub root_hash: [u8; 32],
    pub signed_at: Timestamp,
    pub public_key: [u8; 32],
    pub signature: Vec<u8>,
}

pub async fn record_head(db: &Db, tenant: TenantId, h: &StoredHead) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO log_heads (tenant_id, tree_size, root_hash, signed_at, public_key, signature)
         VALUES ($1, $2, $3, tapvault_time($4), $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(h.tree_size)
    .bind(&h.root_hash[..])
    .bind(h.signed_at)
    .bind(&h.public_key[..])
    .bind(&h.signature)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The newest head signed by `key` (`None`: by any key).
pub async fn newest_head(
    conn: &mut PgConnection,
    tenant: TenantId,
    key: Option<&[u8; 32]>,
) -> Result<Option<StoredHead>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tree_size, root_hash, tapvault_micros(signed_at) AS signed_at, public_key,
                signature
         FROM log_heads WHERE tenant_id = $1 AND ($2::BYTEA IS NULL OR public_key = $2)
         ORDER BY tree_size DESC, signed_at DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(key.map(|k| k.to_vec()))
    .fetch_optional(&mut *conn)
    .await?)
}

/// Tenants whose log grew past their newest head under `key`: (tenant,
/// name, log size).
pub async fn behind(db: &Db, key: &[u8; 32]) -> Result<Vec<(TenantId, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT u.tenant_id, t.name, u.log_size FROM tenant_usage u
         JOIN tenants t ON t.id = u.tenant_id
         WHERE u.log_size > COALESCE((SELECT max(tree_size) FROM log_heads h
                                      WHERE h.tenant_id = u.tenant_id AND h.public_key = $1), 0)",
    )
    .bind(&key[..])
    .fetch_all(&db.pool)
    .await?)
}

/// Turns the log triggers off for the rest of `tx`: an import writes the
/// exported entries itself ([`replay`]).
pub async fn begin_replay(tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('tapvault.log_replay', 'on', true)")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes an exported log verbatim (indices 0..n, in order) into an empty
/// log, after checking that it names exactly the items the import stored:
/// every entry's item is stored and every stored item has an entry.
pub async fn replay(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    entries: &[Entry],
) -> Result<(), StoreError> {
    for (i, e) in entries.iter().enumerate() {
        if e.index != i as u64 {
            return Err(StoreError::Corrupt(format!(
                "exported log entry {i} carries index {}",
                e.index
            )));
        }
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e.index as i64).collect();
    let kinds: Vec<i16> = entries.iter().map(|e| e.kind.code() as i16).collect();
    let hashes: Vec<Vec<u8>> = entries.iter().map(|e| e.content_hash.to_vec()).collect();
    let ats: Vec<i64> = entries.iter().map(|e| e.arrived_at).collect();
    let leaves: Vec<Vec<u8>> = entries.iter().map(|e| e.leaf_hash().to_vec()).collect();
    sqlx::query(
        "INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
         SELECT $1, s, k, h, tapvault_time(a), l
         FROM unnest($2::INT8[], $3::INT2[], $4::BYTEA[], $5::INT8[], $6::BYTEA[]) AS x(s, k, h, a, l)",
    )
    .bind(tenant)
    .bind(&seqs)
    .bind(&kinds)
    .bind(&hashes)
    .bind(&ats)
    .bind(&leaves)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO tenant_usage AS x (tenant_id, log_size) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET log_size = $2",
    )
    .bind(tenant)
    .bind(entries.len() as i64)
    .execute(&mut **tx)
    .await?;
    let problems = mismatches(tx, Some(tenant)).await?;
    if let Some((_, p)) = problems.first() {
        return Err(StoreError::Corrupt(format!(
            "the exported log does not match the exported items: {p}"
        )));
    }
    Ok(())
}

/// Items without a log entry and entries without their item (for one
/// tenant or all): (tenant, description).
pub async fn mismatches(
    conn: &mut PgConnection,
    tenant: Option<TenantId>,
) -> Result<Vec<(TenantId, String)>, StoreError> {
    #[derive(FromRow)]
    struct Row {
        tenant_id: TenantId,
        what: String,
        kind: i16,
        h: Vec<u8>,
        seq: Option<i64>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH items AS (
            SELECT DISTINCT tenant_id, 1::SMALLINT AS kind, proof_hash AS h FROM universe_leaves
            UNION SELECT tenant_id, 2, sha256 FROM wallet_backups
            UNION SELECT tenant_id, 3, tapvault_address_hash(encoded) FROM addresses
            UNION SELECT tenant_id, 4, content_hash FROM tapscripts
         ), logged AS (
            SELECT tenant_id, kind, content_hash AS h, min(seq) AS seq FROM log_entries
            GROUP BY 1, 2, 3
         )
         SELECT COALESCE(i.tenant_id, g.tenant_id) AS tenant_id,
                CASE WHEN g.seq IS NULL THEN 'unlogged' ELSE 'lost' END AS what,
                COALESCE(i.kind, g.kind)::SMALLINT AS kind, COALESCE(i.h, g.h) AS h, g.seq
         FROM items i FULL JOIN logged g
           ON g.tenant_id = i.tenant_id AND g.kind = i.kind AND g.h = i.h
         WHERE (i.h IS NULL OR g.h IS NULL)
           AND ($1::BIGINT IS NULL OR COALESCE(i.tenant_id, g.tenant_id) = $1)
         ORDER BY 1, 5 NULLS LAST",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |Row {
                 tenant_id: t,
                 what,
                 kind,
                 h,
                 seq,
             }| {
                let name = u8::try_from(kind)
                    .ok()
                    .and_then(Kind::from_code)
                    .map(Kind::name)
                    .unwrap_or("item");
                let d = if what == "lost" {
                    format!(
                        "{name} {} is in the log at index {} but not stored",
                        hex::encode(h),
                        seq.unwrap_or(-1)
                    )
                } else {
                    format!("{name} {} is stored but not in the log", hex::encode(h))
                };
                (t, d)
            },
        )
        .collect())
}
