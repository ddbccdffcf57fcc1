//! What tapd never pushes: wallet backup blobs and their per-asset entries,
//! TAP addresses, tapscript trees. Plus the lookups recovery needs: leaves by
//! script key / outpoint / txid / asset id / group key, and proof chains.

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::time::Timestamp;
use crate::universe::{file_locked, lock_trees, type_from_code, InsertResult, NewLeaf};
use bitcoin::hashes::Hash as _;
use bitcoin::OutPoint;
// Dynamic SQL here is only ever built from constant fragments (column lists,
// one fixed condition per filter, ASC/DESC): AssertSqlSafe marks those.
use sqlx::AssertSqlSafe;
use sqlx::{FromRow, PgConnection, Postgres, Transaction};
use tapvault_codec::ProofType;

/// One per-asset entry of a TAPBAK blob, as indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRow {
    pub asset_id: [u8; 32],
    pub group_key: Option<[u8; 33]>,
    pub amount: u64,
    pub script_key: [u8; 33],
    pub anchor: OutPoint,
    pub anchor_height: u32,
    pub script_key_family: Option<u32>,
    pub script_key_index: Option<u32>,
    pub script_raw_key: Option<[u8; 33]>,
    pub script_key_tweak: Option<Vec<u8>>,
    pub internal_key: Option<[u8; 33]>,
    pub internal_key_family: Option<u32>,
    pub internal_key_index: Option<u32>,
    /// "full", "stripped" or "none".
    pub proofs: &'static str,
}

#[derive(Clone, Debug)]
pub struct NewBackup {
    /// "tapbak" or "opaque".
    pub kind: &'static str,
    pub version: Option<u32>,
    pub sha256: [u8; 32],
    pub raw: Vec<u8>,
    pub source: String,
    /// `None` = now (set only by imports).
    pub received_at: Option<Timestamp>,
    pub entries: Vec<EntryRow>,
    /// Proofs the blob carries, verified, to file as universe leaves.
    pub leaves: Vec<NewLeaf>,
}

#[derive(Clone, Debug)]
pub struct BackupStored {
    pub id: i64,
    /// The same bytes were already stored (nothing new written).
    pub duplicate: bool,
    pub leaves: Vec<InsertResult>,
}

/// Stores a backup blob, its entries and its proofs in one transaction.
pub async fn insert_backup(
    db: &Db,
    tenant: TenantId,
    b: &NewBackup,
) -> Result<BackupStored, StoreError> {
    let mut tx = db.pool.begin().await?;
    let out = insert_backup_tx(&mut tx, db, tenant, b).await?;
    tx.commit().await?;
    Ok(out)
}

pub async fn insert_backup_tx(
    tx: &mut Transaction<'static, Postgres>,
    db: &Db,
    tenant: TenantId,
    b: &NewBackup,
) -> Result<BackupStored, StoreError> {
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM wallet_backups WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant)
            .bind(&b.sha256[..])
            .fetch_optional(&mut **tx)
            .await?;
    if let Some(id) = existing {
        return Ok(BackupStored {
            id,
            duplicate: true,
            leaves: Vec::new(),
        });
    }
    // Trees before the blob: the blob's insert takes the tenant's usage
    // lock, which every leaf writer takes after its tree locks.
    let locked = lock_trees(tx, tenant, &b.leaves).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO wallet_backups (tenant_id, kind, version, sha256, raw, asset_count, source,
            received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, tapvault_time($8))
         RETURNING id",
    )
    .bind(tenant)
    .bind(b.kind)
    .bind(b.version.map(|v| v as i32))
    .bind(&b.sha256[..])
    .bind(&b.raw)
    .bind(b.entries.len() as i32)
    .bind(&b.source)
    .bind(b.received_at)
    .fetch_one(&mut **tx)
    .await?;
    for (pos, e) in b.entries.iter().enumerate() {
        sqlx::query(
            "INSERT INTO backup_entries (tenant_id, backup_id, position, asset_id, group_key,
                amount, script_key, script_key_x, anchor_txid, anchor_vout, anchor_height,
                script_key_family, script_key_index, script_raw_key, script_key_tweak,
                internal_key, internal_key_family, internal_key_index, proofs)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)",
        )
        .bind(tenant)
        .bind(id)
        .bind(pos as i32)
        .bind(&e.asset_id[..])
        .bind(e.group_key.map(|g| g.to_vec()))
        .bind(e.amount as i64)
        .bind(&e.script_key[..])
        .bind(&e.script_key[1..])
        .bind(&e.anchor.txid.as_byte_array()[..])
        .bind(e.anchor.vout as i32)
        .bind(e.anchor_height as i32)
        .bind(e.script_key_family.map(|v| v as i32))
        .bind(e.script_key_index.map(|v| v as i32))
        .bind(e.script_raw_key.map(|k| k.to_vec()))
        .bind(e.script_key_tweak.clone())
        .bind(e.internal_key.map(|k| k.to_vec()))
        .bind(e.internal_key_family.map(|v| v as i32))
        .bind(e.internal_key_index.map(|v| v as i32))
        .bind(e.proofs)
        .execute(&mut **tx)
        .await?;
    }
    let leaves = file_locked(tx, db, tenant, &b.leaves, locked, false).await?;
    Ok(BackupStored {
        id,
        duplicate: false,
        leaves,
    })
}

#[derive(Clone, Debug)]
pub struct BackupInfo {
    pub id: i64,
    pub kind: String,
    pub version: Option<u32>,
    pub sha256: [u8; 32],
    pub size: u64,
    pub asset_count: u32,
    pub source: String,
    pub received_at: Timestamp,
}

#[derive(FromRow)]
struct BackupInfoRow {
    id: i64,
    kind: String,
    version: Option<i32>,
    sha256: [u8; 32],
    size: i64,
    asset_count: i32,
    source: String,
    received_at: Timestamp,
}

impl From<BackupInfoRow> for BackupInfo {
    fn from(r: BackupInfoRow) -> Self {
        BackupInfo {
            id: r.id,
            kind: r.kind,
            version: r.version.map(|v| v as u32),
            sha256: r.sha256,
            size: r.size as u64,
            asset_count: r.asset_count as u32,
            source: r.source,
            received_at: r.received_at,
        }
    }
}

const BACKUP_COLS: &str = "id, kind, version, sha256, octet_length(raw)::BIGINT AS size, \
     asset_count, source, tapvault_micros(received_at) AS received_at";

/// Backups newest first; `kind` filters when given.
pub async fn list_backups(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<BackupInfo>, StoreError> {
    let q = format!(
        "SELECT {BACKUP_COLS} FROM wallet_backups WHERE tenant_id = $1
         AND ($2::TEXT IS NULL OR kind = $2) ORDER BY id DESC OFFSET $3 LIMIT $4"
    );
    Ok(sqlx::query_as::<_, BackupInfoRow>(AssertSqlSafe(q))
        .bind(tenant)
        .bind(kind)
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(BackupInfo::from)
        .collect())
}

/// One backup with its bytes; `None` id = the newest of `kind`.
pub async fn get_backup(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Option<i64>,
    kind: &str,
) -> Result<Option<(BackupInfo, Vec<u8>)>, StoreError> {
    let q = format!(
        "SELECT {BACKUP_COLS}, raw FROM wallet_backups WHERE tenant_id = $1
         AND ($2::BIGINT IS NULL OR id = $2) AND ($2::BIGINT IS NOT NULL OR kind = $3)
         ORDER BY id DESC LIMIT 1"
    );
    #[derive(FromRow)]
    struct WithRaw {
        #[sqlx(flatten)]
        info: BackupInfoRow,
        raw: Vec<u8>,
    }
    let row: Option<WithRaw> = sqlx::query_as(AssertSqlSafe(q))
        .bind(tenant)
        .bind(id)
        .bind(kind)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| (r.info.into(), r.raw)))
}

/// Entries of every backup of the tenant for a script key, newest first:
/// where recovery finds key locators for outputs a blob did not list.
pub async fn entries_for_script_key(
    conn: &mut PgConnection,
    tenant: TenantId,
    script_key_x: &[u8; 32],
) -> Result<Vec<EntryRow>, StoreError> {
    #[derive(FromRow)]
    struct Row {
        asset_id: [u8; 32],
        group_key: Option<[u8; 33]>,
        amount: i64,
        script_key: [u8; 33],
        anchor_txid: [u8; 32],
        anchor_vout: i32,
        anchor_height: i32,
        script_key_family: Option<i32>,
        script_key_index: Option<i32>,
        script_raw_key: Option<[u8; 33]>,
        script_key_tweak: Option<Vec<u8>>,
        internal_key: Option<[u8; 33]>,
        internal_key_family: Option<i32>,
        internal_key_index: Option<i32>,
        proofs: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT asset_id, group_key, amount, script_key, anchor_txid, anchor_vout,
            anchor_height, script_key_family, script_key_index, script_raw_key,
            script_key_tweak, internal_key, internal_key_family, internal_key_index, proofs
         FROM backup_entries WHERE tenant_id = $1 AND script_key_x = $2 ORDER BY id DESC",
    )
    .bind(tenant)
    .bind(&script_key_x[..])
    .fetch_all(&mut *conn)
    .await?;
    let u32_of = |v: Option<i32>| v.map(|v| v as u32);
    Ok(rows
        .into_iter()
        .map(|r| EntryRow {
            asset_id: r.asset_id,
            group_key: r.group_key,
            amount: r.amount as u64,
            script_key: r.script_key,
            anchor: OutPoint {
                txid: bitcoin::Txid::from_byte_array(r.anchor_txid),
                vout: r.anchor_vout as u32,
            },
            anchor_height: r.anchor_height as u32,
            script_key_family: u32_of(r.script_key_family),
            script_key_index: u32_of(r.script_key_index),
            script_raw_key: r.script_raw_key,
            script_key_tweak: r.script_key_tweak,
            internal_key: r.internal_key,
            internal_key_family: u32_of(r.internal_key_family),
            internal_key_index: u32_of(r.internal_key_index),
            proofs: match r.proofs.as_str() {
                "full" => "full",
                "stripped" => "stripped",
                _ => "none",
            },
        })
        .collect())
}

/// A decoded TAP address, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRow {
    pub encoded: String,
    pub network: String,
    pub version: u8,
    pub asset_version: u8,
    pub asset_id: Option<[u8; 32]>,
    pub group_key: Option<[u8; 33]>,
    pub script_key: [u8; 33],
    pub internal_key: [u8; 33],
    pub tapscript_sibling: Option<Vec<u8>>,
    pub amount: u64,
    pub proof_courier_addr: String,
    /// On insert `None` = now.
    pub received_at: Option<Timestamp>,
}

/// Stores addresses (all or none); returns, per address, whether it was new.
pub async fn insert_addresses(
    db: &Db,
    tenant: TenantId,
    rows: &[AddressRow],
) -> Result<Vec<bool>, StoreError> {
    let mut tx = db.pool.begin().await?;
    let out = insert_addresses_tx(&mut tx, tenant, rows).await?;
    tx.commit().await?;
    Ok(out)
}

pub async fn insert_addresses_tx(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    rows: &[AddressRow],
) -> Result<Vec<bool>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for a in rows {
        let n = sqlx::query(
            "INSERT INTO addresses (tenant_id, encoded, network, version, asset_version,
                asset_id, group_key, script_key, script_key_x, internal_key, internal_key_x,
                tapscript_sibling, amount, proof_courier_addr, received_at)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14, tapvault_time($15))
             ON CONFLICT (tenant_id, encoded) DO NOTHING",
        )
        .bind(tenant)
        .bind(&a.encoded)
        .bind(&a.network)
        .bind(a.version as i16)
        .bind(a.asset_version as i16)
        .bind(a.asset_id.map(|v| v.to_vec()))
        .bind(a.group_key.map(|v| v.to_vec()))
        .bind(&a.script_key[..])
        .bind(&a.script_key[1..])
        .bind(&a.internal_key[..])
        .bind(&a.internal_key[1..])
        .bind(a.tapscript_sibling.clone())
        .bind(a.amount as i64)
        .bind(&a.proof_courier_addr)
        .bind(a.received_at)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        out.push(n == 1);
    }
    Ok(out)
}

/// Addresses in the order they were first pushed, optionally for one key
/// (script or internal, x-only).
/// The network of the tenant's addresses (they are all of one), if any.
pub async fn address_network(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT network FROM addresses WHERE tenant_id = $1 LIMIT 1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub async fn list_addresses(
    conn: &mut PgConnection,
    tenant: TenantId,
    key_x: Option<&[u8; 32]>,
    offset: i64,
    limit: i64,
) -> Result<Vec<AddressRow>, StoreError> {
    #[derive(FromRow)]
    struct Row {
        encoded: String,
        network: String,
        version: i16,
        asset_version: i16,
        asset_id: Option<[u8; 32]>,
        group_key: Option<[u8; 33]>,
        script_key: [u8; 33],
        internal_key: [u8; 33],
        tapscript_sibling: Option<Vec<u8>>,
        amount: i64,
        proof_courier_addr: String,
        received_at: Timestamp,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT encoded, network, version, asset_version, asset_id, group_key, script_key,
            internal_key, tapscript_sibling, amount, proof_courier_addr,
            tapvault_micros(received_at) AS received_at
         FROM addresses WHERE tenant_id = $1
           AND ($2::BYTEA IS NULL OR script_key_x = $2 OR internal_key_x = $2)
         ORDER BY id OFFSET $3 LIMIT $4",
    )
    .bind(tenant)
    .bind(key_x.map(|k| k.to_vec()))
    .bind(offset)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AddressRow {
            encoded: r.encoded,
            network: r.network,
            version: r.version as u8,
            asset_version: r.asset_version as u8,
            asset_id: r.asset_id,
            group_key: r.group_key,
            script_key: r.script_key,
            internal_key: r.internal_key,
            tapscript_sibling: r.tapscript_sibling,
            amount: r.amount as u64,
            proof_courier_addr: r.proof_courier_addr,
            received_at: Some(r.received_at),
        })
        .collect())
}

/// A tapscript tree for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapscriptRow {
    pub key_x: [u8; 32],
    pub raw_key: Option<[u8; 33]>,
    pub root_hash: [u8; 32],
    /// `(u8 leaf version ‖ BigSize len ‖ script)*`, in assembly order.
    pub leaves: Vec<u8>,
    pub label: String,
    /// On insert `None` = now.
    pub received_at: Option<Timestamp>,
}

impl TapscriptRow {
    pub fn content_hash(&self) -> [u8; 32] {
        tapvault_codec::log::tapscript_content_hash(
            &self.root_hash,
            self.raw_key.as_ref(),
            &self.leaves,
        )
    }
}

/// Stores a tree; `false` if the same tree was already stored for the key.
pub async fn insert_tapscript(
    db: &Db,
    tenant: TenantId,
    t: &TapscriptRow,
) -> Result<bool, StoreError> {
    let mut conn = db.pool.acquire().await?;
    insert_tapscript_conn(&mut conn, tenant, t).await
}

pub async fn insert_tapscript_conn(
    conn: &mut PgConnection,
    tenant: TenantId,
    t: &TapscriptRow,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO tapscripts (tenant_id, key_x, raw_key, root_hash, leaves, content_hash, label,
            received_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7, tapvault_time($8)) ON CONFLICT (tenant_id, key_x, content_hash) DO NOTHING",
    )
    .bind(tenant)
    .bind(&t.key_x[..])
    .bind(t.raw_key.map(|k| k.to_vec()))
    .bind(&t.root_hash[..])
    .bind(&t.leaves)
    .bind(&t.content_hash()[..])
    .bind(&t.label)
    .bind(t.received_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn list_tapscripts(
    conn: &mut PgConnection,
    tenant: TenantId,
    key_x: Option<&[u8; 32]>,
    offset: i64,
    limit: i64,
) -> Result<Vec<TapscriptRow>, StoreError> {
    #[derive(FromRow)]
    struct Row {
        key_x: [u8; 32],
        raw_key: Option<[u8; 33]>,
        root_hash: [u8; 32],
        leaves: Vec<u8>,
        label: String,
        received_at: Timestamp,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT key_x, raw_key, root_hash, leaves, label,
            tapvault_micros(received_at) AS received_at FROM tapscripts
         WHERE tenant_id = $1 AND ($2::BYTEA IS NULL OR key_x = $2)
         ORDER BY id OFFSET $3 LIMIT $4",
    )
    .bind(tenant)
    .bind(key_x.map(|k| k.to_vec()))
    .bind(offset)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TapscriptRow {
            key_x: r.key_x,
            raw_key: r.raw_key,
            root_hash: r.root_hash,
            leaves: r.leaves,
            label: r.label,
            received_at: Some(r.received_at),
        })
        .collect())
}

/// Which leaves a listing selects.
#[derive(Clone, Debug)]
pub enum LeafFilter {
    ScriptKey([u8; 32]),
    Outpoint(OutPoint),
    Txid(bitcoin::Txid),
    AssetId([u8; 32]),
    GroupKey([u8; 32]),
    All,
}

/// A stored proof version with its index fields.
#[derive(Clone, Debug)]
pub struct LeafRow {
    pub id: i64,
    pub proof_type: ProofType,
    pub universe_id: [u8; 32],
    pub leaf_key: [u8; 32],
    pub version: i32,
    pub asset_id: [u8; 32],
    pub group_key: Option<[u8; 33]>,
    pub anchor: OutPoint,
    pub script_key: [u8; 33],
    pub amount: u64,
    pub block_height: u32,
    pub asset_name: String,
    /// Whether this version is the leaf's newest one.
    pub is_head: bool,
    /// Whether the head's ancestry is stored (it is in the universe tree).
    pub complete: bool,
    pub raw: Option<Vec<u8>>,
    /// SHA-256(proof || sum): the leaf's node in its universe tree, so a
    /// listing without proofs still lets a client recompute the root.
    pub leaf_node_hash: [u8; 32],
    pub inserted_at: Timestamp,
}

#[derive(FromRow)]
struct LeafDbRow {
    id: i64,
    proof_type: i16,
    universe_id: [u8; 32],
    leaf_key: [u8; 32],
    version: i32,
    asset_id: [u8; 32],
    group_key: Option<[u8; 33]>,
    anchor_txid: [u8; 32],
    anchor_vout: i32,
    script_key: [u8; 33],
    amount: i64,
    block_height: i32,
    asset_name: String,
    is_head: Option<bool>,
    complete: bool,
    raw: Option<Vec<u8>>,
    leaf_node_hash: [u8; 32],
    inserted_at: Timestamp,
}

impl TryFrom<LeafDbRow> for LeafRow {
    type Error = StoreError;
    fn try_from(r: LeafDbRow) -> Result<Self, StoreError> {
        Ok(LeafRow {
            id: r.id,
            proof_type: type_from_code(r.proof_type)?,
            universe_id: r.universe_id,
            leaf_key: r.leaf_key,
            version: r.version,
            asset_id: r.asset_id,
            group_key: r.group_key,
            anchor: OutPoint {
                txid: bitcoin::Txid::from_byte_array(r.anchor_txid),
                vout: r.anchor_vout as u32,
            },
            script_key: r.script_key,
            amount: r.amount as u64,
            block_height: r.block_height as u32,
            asset_name: r.asset_name,
            is_head: r.is_head.unwrap_or(false),
            complete: r.complete,
            raw: r.raw,
            leaf_node_hash: r.leaf_node_hash,
            inserted_at: r.inserted_at,
        })
    }
}

/// Leaves (every stored version) matching `f`, newest first.
/// The page is chosen from the leaves alone and only its rows are joined
/// to their proofs and heads: joining first made every page of a large
/// tenant hash the whole proofs table.
pub async fn list_leaves(
    conn: &mut PgConnection,
    tenant: TenantId,
    f: &LeafFilter,
    with_proofs: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<LeafRow>, StoreError> {
    let (cond, a, b): (&str, Option<Vec<u8>>, Option<i32>) = match f {
        LeafFilter::ScriptKey(x) => ("l.script_key_x = $2", Some(x.to_vec()), None),
        LeafFilter::Outpoint(op) => (
            "l.anchor_txid = $2 AND l.anchor_vout = $3",
            Some(op.txid.as_byte_array().to_vec()),
            Some(op.vout as i32),
        ),
        LeafFilter::Txid(t) => ("l.anchor_txid = $2", Some(t.as_byte_array().to_vec()), None),
        LeafFilter::AssetId(id) => ("l.asset_id = $2", Some(id.to_vec()), None),
        // Group keys are stored compressed; match either parity by x.
        LeafFilter::GroupKey(x) => (
            "l.group_key IS NOT NULL AND substring(l.group_key FROM 2) = $2",
            Some(x.to_vec()),
            None,
        ),
        LeafFilter::All => ("TRUE", None, None),
    };
    // Without proofs the proofs table is not read at all (a leaf's proof
    // row exists by foreign key).
    let (raw, proofs) = if with_proofs {
        (
            "p.raw",
            "JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash",
        )
    } else {
        ("NULL::BYTEA", "")
    };
    let q = format!(
        "SELECT l.id, l.proof_type, l.universe_id, l.leaf_key, l.version, l.asset_id,
            l.group_key, l.anchor_txid, l.anchor_vout, l.script_key, l.amount, l.block_height,
            l.asset_name, h.leaf_id = l.id AS is_head, COALESCE(h.complete, FALSE) AS complete,
            {raw} AS raw, l.leaf_node_hash, tapvault_micros(l.inserted_at) AS inserted_at
         FROM (SELECT * FROM universe_leaves l
               WHERE l.tenant_id = $1 AND ($2::BYTEA IS NULL OR TRUE)
                 AND ($3::INT IS NULL OR TRUE) AND {cond}
               ORDER BY l.id DESC OFFSET $4 LIMIT $5) l
         {proofs}
         LEFT JOIN universe_heads h ON h.tenant_id = l.tenant_id
           AND h.universe_id = l.universe_id AND h.proof_type = l.proof_type
           AND h.leaf_key = l.leaf_key
         ORDER BY l.id DESC"
    );
    sqlx::query_as::<_, LeafDbRow>(AssertSqlSafe(q))
        .bind(tenant)
        .bind(a)
        .bind(b)
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(LeafRow::try_from)
        .collect()
}

/// Asked for every proof of every chain served: an index lookup on the
/// whole output key (a test checks its plan).
pub const PROOF_AT: &str = "SELECT p.raw FROM universe_leaves l
     JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
     WHERE l.tenant_id = $1 AND l.anchor_txid = $2 AND l.anchor_vout = $3
       AND l.script_key_x = $4
     ORDER BY l.id DESC LIMIT 1";

/// The newest stored proof for the output `(anchor, script key)`: the head
/// of the leaf keyed by them, in whichever universe holds it.
pub async fn proof_at(
    conn: &mut PgConnection,
    tenant: TenantId,
    anchor: &OutPoint,
    script_key_x: &[u8; 32],
) -> Result<Option<Vec<u8>>, StoreError> {
    let raw: Option<Vec<u8>> = sqlx::query_scalar(PROOF_AT)
        .bind(tenant)
        .bind(&anchor.txid.as_byte_array()[..])
        .bind(anchor.vout as i32)
        .bind(&script_key_x[..])
        .fetch_optional(&mut *conn)
        .await?;
    Ok(raw)
}

/// Asked once per output by GetProofFile and so by recovery: it must stay
/// an index lookup (a test checks its plan).
pub const SPENDERS_OF: &str = "SELECT DISTINCT l.anchor_txid, l.anchor_vout, l.script_key
     FROM universe_heads h JOIN universe_leaves l ON l.id = h.leaf_id
     WHERE h.tenant_id = $1 AND h.prev_leaf_key = $2";

/// Outputs whose stored proof spends `(anchor, script key)`: the leaves
/// that name it as their primary previous output.
pub async fn spenders_of(
    conn: &mut PgConnection,
    tenant: TenantId,
    prev_leaf_key: &[u8; 32],
) -> Result<Vec<(OutPoint, [u8; 33])>, StoreError> {
    let rows: Vec<([u8; 32], i32, [u8; 33])> = sqlx::query_as(SPENDERS_OF)
        .bind(tenant)
        .bind(&prev_leaf_key[..])
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(txid, vout, sk)| {
            (
                OutPoint {
                    txid: bitcoin::Txid::from_byte_array(txid),
                    vout: vout as u32,
                },
                sk,
            )
        })
        .collect())
}

/// What a tenant holds.
#[derive(Clone, Debug, Default, FromRow)]
pub struct Holdings {
    pub proofs: i64,
    pub leaves: i64,
    pub complete_leaves: i64,
    pub backups: i64,
    pub opaque_backups: i64,
    pub addresses: i64,
    pub tapscripts: i64,
    /// The newest push of any kind.
    pub last_push_at: Option<Timestamp>,
}

pub async fn holdings(conn: &mut PgConnection, tenant: TenantId) -> Result<Holdings, StoreError> {
    Ok(sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM proofs WHERE tenant_id = $1) AS proofs,
           (SELECT count(*) FROM universe_heads WHERE tenant_id = $1) AS leaves,
           (SELECT count(*) FROM universe_heads WHERE tenant_id = $1 AND complete)
             AS complete_leaves,
           (SELECT count(*) FROM wallet_backups WHERE tenant_id = $1 AND kind = 'tapbak')
             AS backups,
           (SELECT count(*) FROM wallet_backups WHERE tenant_id = $1 AND kind = 'opaque')
             AS opaque_backups,
           (SELECT count(*) FROM addresses WHERE tenant_id = $1) AS addresses,
           (SELECT count(*) FROM tapscripts WHERE tenant_id = $1) AS tapscripts,
           tapvault_micros(GREATEST(
             (SELECT max(inserted_at) FROM universe_leaves WHERE tenant_id = $1),
             (SELECT max(received_at) FROM wallet_backups WHERE tenant_id = $1),
             (SELECT max(received_at) FROM addresses WHERE tenant_id = $1),
             (SELECT max(received_at) FROM tapscripts WHERE tenant_id = $1))) AS last_push_at",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?)
}

/// Every stored proof version of the tenant in insertion order, with when
/// it was received, for export.
pub async fn all_proofs(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Vec<(Vec<u8>, Timestamp)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT p.raw, tapvault_micros(l.inserted_at) FROM universe_leaves l
         JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
         WHERE l.tenant_id = $1 ORDER BY l.id",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?)
}

/// Every backup blob of the tenant, oldest first: kind, source, bytes,
/// when it was received.
pub async fn all_backups(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Vec<(String, String, Vec<u8>, Timestamp)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kind, source, raw, tapvault_micros(received_at)
         FROM wallet_backups WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?)
}

/// A proof chain rebuilt from stored leaves.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    /// Raw proofs, genesis first; only meaningful when `missing` is `None`.
    pub proofs: Vec<Vec<u8>>,
    /// The first ancestor not stored: (outpoint, script key, txid of the
    /// proof that needs it).
    pub missing: Option<(OutPoint, [u8; 33], Option<bitcoin::Txid>)>,
}

/// The chain below an output as the heads link it (each head's previous
/// leaf key, in its universe), every step answered as [`PROOF_AT`] answers
/// it: one statement instead of one round trip per proof. Only a prefetch:
/// [`proof_chain`] still follows the links the proofs themselves state.
pub const CHAIN_AT: &str = "WITH RECURSIVE c(depth, txid, vout, kx, prev, uid) AS (
     SELECT 0, l.anchor_txid, l.anchor_vout, l.script_key_x, h.prev_leaf_key, l.universe_id
     FROM (SELECT l.universe_id, l.proof_type, l.leaf_key, l.anchor_txid, l.anchor_vout,
                  l.script_key_x
           FROM universe_leaves l
           WHERE l.tenant_id = $1 AND l.anchor_txid = $2 AND l.anchor_vout = $3
             AND l.script_key_x = $4
           ORDER BY l.id DESC LIMIT 1) l
     LEFT JOIN universe_heads h ON h.tenant_id = $1 AND h.universe_id = l.universe_id
          AND h.proof_type = l.proof_type AND h.leaf_key = l.leaf_key
   UNION ALL
     SELECT c.depth + 1, p.anchor_txid, p.anchor_vout, p.script_key_x, p.prev_leaf_key,
            p.universe_id
     FROM c CROSS JOIN LATERAL (
         SELECT l.anchor_txid, l.anchor_vout, l.script_key_x, h.prev_leaf_key, l.universe_id
         FROM universe_heads h
         JOIN universe_leaves l ON l.tenant_id = h.tenant_id AND l.id = h.leaf_id
         WHERE h.tenant_id = $1 AND h.universe_id = c.uid AND h.leaf_key = c.prev
         LIMIT 1) p
     WHERE c.prev IS NOT NULL AND c.depth < $5)
 SELECT c.txid, c.vout, c.kx, r.raw FROM c CROSS JOIN LATERAL (
     SELECT p.raw FROM universe_leaves l
     JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
     WHERE l.tenant_id = $1 AND l.anchor_txid = c.txid AND l.anchor_vout = c.vout
       AND l.script_key_x = c.kx
     ORDER BY l.id DESC LIMIT 1) r";

/// Proofs read ahead per statement: a chain of 100 is one statement, and
/// stored links that loop cost at most this many rows.
const CHAIN_AHEAD: i32 = 256;

/// (anchor, x-only script key) → what [`proof_at`] returns for it.
type Prefetched = std::collections::HashMap<(OutPoint, [u8; 32]), Vec<u8>>;

async fn chain_at(
    conn: &mut PgConnection,
    tenant: TenantId,
    anchor: &OutPoint,
    script_key_x: &[u8; 32],
) -> Result<Prefetched, StoreError> {
    /// Anchor txid, vout, x-only script key, raw proof.
    type Step = ([u8; 32], i32, [u8; 32], Vec<u8>);
    let rows: Vec<Step> = sqlx::query_as(CHAIN_AT)
        .bind(tenant)
        .bind(&anchor.txid.as_byte_array()[..])
        .bind(anchor.vout as i32)
        .bind(&script_key_x[..])
        .bind(CHAIN_AHEAD)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(txid, vout, kx, raw)| {
            let op = OutPoint {
                txid: bitcoin::Txid::from_byte_array(txid),
                vout: vout as u32,
            };
            ((op, kx), raw)
        })
        .collect())
}

/// Follows each proof's primary previous output back to an issuance proof.
/// The stored links are read ahead ([`CHAIN_AT`], [`CHAIN_AHEAD`] proofs a
/// statement, again when a read-ahead is used up); a step they do not
/// cover (a proof whose stated input is not its head's) is looked up on its
/// own, so the result is what a walk of lookups gives.
pub async fn proof_chain(
    conn: &mut PgConnection,
    tenant: TenantId,
    anchor: OutPoint,
    script_key: [u8; 33],
) -> Result<Chain, StoreError> {
    let mut chain = Chain::default();
    let (mut op, mut sk, mut needed_by) = (anchor, script_key, None);
    let mut seen = std::collections::HashSet::new();
    let mut ahead = Prefetched::new();
    loop {
        let mut x = [0u8; 32];
        x.copy_from_slice(&sk[1..]);
        if !seen.insert((op, x))
            || chain.proofs.len() as u64 >= tapvault_codec::file::MAX_PROOFS_PER_FILE
        {
            return Err(StoreError::Corrupt(format!(
                "proof chain of {anchor} loops or exceeds the file limit"
            )));
        }
        let raw = match ahead.remove(&(op, x)) {
            Some(r) => Some(r),
            None if ahead.is_empty() => {
                ahead = chain_at(conn, tenant, &op, &x).await?;
                ahead.remove(&(op, x))
            }
            None => proof_at(conn, tenant, &op, &x).await?,
        };
        let Some(raw) = raw else {
            chain.missing = Some((op, sk, needed_by));
            break;
        };
        let p = tapvault_codec::Proof::decode(&raw)
            .map_err(|e| StoreError::Corrupt(format!("stored proof at {op}: {e}")))?;
        let prev = if p.asset.is_genesis() {
            None
        } else {
            p.asset.primary_prev_id()
        };
        needed_by = Some(p.anchor_tx.txid());
        chain.proofs.push(raw);
        match prev {
            Some(pid) => {
                op = pid.out_point;
                sk = pid.script_key.0;
            }
            None => break,
        }
    }
    chain.proofs.reverse();
    Ok(chain)
}
