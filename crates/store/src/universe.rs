//! Universe leaves, heads, roots and the multiverse, in PostgreSQL. Every
//! write of a leaf, its index rows and the tree updates it causes happens in
//! one transaction.

use crate::db::{Db, StoreError};
use crate::tree::PgTree;
use bitcoin::hashes::Hash as _;
use bitcoin::OutPoint;
use sqlx::{PgConnection, Postgres, Row, Transaction};
use tapvault_codec::primitives::sha256;
use tapvault_codec::ProofType;
use tapvault_mssmt::universe::{multiverse_leaf, universe_namespace};
use tapvault_mssmt::{empty_root, CompressedProof, LeafUpdate, Node, Tree};

pub fn type_code(t: ProofType) -> i16 {
    match t {
        ProofType::Issuance => 1,
        ProofType::Transfer => 2,
    }
}

pub fn type_from_code(c: i16) -> Result<ProofType, StoreError> {
    match c {
        1 => Ok(ProofType::Issuance),
        2 => Ok(ProofType::Transfer),
        x => Err(StoreError::Corrupt(format!("proof type {x}"))),
    }
}

/// A verified proof, ready to be filed as a universe leaf.
#[derive(Clone, Debug)]
pub struct NewLeaf {
    pub universe_id: [u8; 32],
    pub proof_type: ProofType,
    pub leaf_key: [u8; 32],
    /// The proof exactly as received.
    pub raw: Vec<u8>,
    pub asset_id: [u8; 32],
    pub group_key: Option<[u8; 33]>,
    pub anchor: OutPoint,
    pub script_key: [u8; 33],
    pub amount: u64,
    pub leaf_sum: u64,
    pub block_height: u32,
    pub block_hash: [u8; 32],
    pub asset_name: String,
    /// Leaf key of the primary previous output (transfers only).
    pub prev_leaf_key: Option<[u8; 32]>,
    /// When it was first received (unix microseconds); `None` = now. Set
    /// only by imports, which keep the original times.
    pub received_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// First proof for this leaf key.
    New,
    /// A different proof for an existing leaf key, kept as a new version.
    NewVersion,
    /// The same proof again: nothing changed.
    Duplicate,
}

#[derive(Clone, Debug)]
pub struct InsertResult {
    pub outcome: InsertOutcome,
    pub version: i32,
    /// Whether the leaf's ancestry is stored (so it is in the universe tree).
    pub complete: bool,
    /// Leaves that became complete (and joined the tree) because of this one.
    pub completed_descendants: usize,
}

fn i64_of(v: u64) -> i64 {
    v as i64
}
fn u64_of(v: i64) -> u64 {
    v as u64
}

fn node_of(hash: Vec<u8>, sum: i64) -> Result<Node, StoreError> {
    Ok(Node {
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into()))?,
        sum: u64_of(sum),
    })
}

fn tree_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Tree(e.to_string())
}

/// Locks (creating if needed) the root row of a tree until the transaction ends.
async fn lock_tree(conn: &mut PgConnection, tenant: i64, ns: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mssmt_roots (tenant_id, namespace, root_hash, root_sum)
         VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(ns)
    .bind(&empty_root().hash[..])
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT 1 FROM mssmt_roots WHERE tenant_id = $1 AND namespace = $2 FOR UPDATE")
        .bind(tenant)
        .bind(ns)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Files `leaves` in one transaction; returns one result per leaf. On any
/// error nothing is written.
pub async fn insert_leaves(
    db: &Db,
    tenant: i64,
    leaves: &[NewLeaf],
) -> Result<Vec<InsertResult>, StoreError> {
    let mut tx = db.pool.begin().await?;
    let out = insert_leaves_tx(&mut tx, db, tenant, leaves).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`insert_leaves`] inside a caller's transaction, so other rows (a backup
/// blob, say) commit or roll back together with the leaves.
pub async fn insert_leaves_tx(
    tx: &mut Transaction<'static, Postgres>,
    db: &Db,
    tenant: i64,
    leaves: &[NewLeaf],
) -> Result<Vec<InsertResult>, StoreError> {
    // Lock order: every universe's issuance then transfer tree, universes in
    // byte order, and the multiverse trees last. Every writer follows it, so
    // writers never deadlock, even with many leaves in one transaction.
    let mut uids: Vec<[u8; 32]> = leaves.iter().map(|l| l.universe_id).collect();
    uids.sort();
    uids.dedup();
    for uid in &uids {
        lock_tree(tx, tenant, &universe_namespace(uid, ProofType::Issuance)).await?;
        lock_tree(tx, tenant, &universe_namespace(uid, ProofType::Transfer)).await?;
    }
    let mut out = Vec::with_capacity(leaves.len());
    let mut pending: Vec<TreeWork> = Vec::new();
    for leaf in leaves {
        out.push(insert_one(tx, tenant, leaf, &mut pending).await?);
    }
    apply_tree_work(tx, db, tenant, pending).await?;
    Ok(out)
}

/// Leaf updates for one universe tree, applied once per transaction.
struct TreeWork {
    universe_id: [u8; 32],
    proof_type: ProofType,
    leaf: NewLeaf,
    updates: Vec<LeafUpdate>,
}

async fn apply_tree_work(
    tx: &mut Transaction<'static, Postgres>,
    db: &Db,
    tenant: i64,
    work: Vec<TreeWork>,
) -> Result<(), StoreError> {
    // Group by tree, keeping first-seen order of trees and write order of leaves.
    let mut trees: Vec<TreeWork> = Vec::new();
    for w in work {
        match trees
            .iter_mut()
            .find(|t| t.universe_id == w.universe_id && t.proof_type == w.proof_type)
        {
            Some(t) => t.updates.extend(w.updates),
            None => trees.push(w),
        }
    }
    let mut mv: Vec<(ProofType, LeafUpdate)> = Vec::new();
    for t in trees {
        let ns = universe_namespace(&t.universe_id, t.proof_type);
        let root = Tree::new(PgTree::writer(tx, tenant, &ns, db.cache.clone()))
            .apply(t.updates)
            .await
            .map_err(tree_err)?;
        ensure_universe(tx, tenant, &t.leaf, t.proof_type).await?;
        let (value, sum) = multiverse_leaf(t.proof_type, &root);
        mv.push((t.proof_type, LeafUpdate::new(t.universe_id, &value, sum)));
    }
    for ty in [ProofType::Issuance, ProofType::Transfer] {
        let ups: Vec<LeafUpdate> = mv
            .iter()
            .filter(|(t, _)| *t == ty)
            .map(|(_, u)| *u)
            .collect();
        if ups.is_empty() {
            continue;
        }
        let mv_ns = ty.multiverse_namespace();
        lock_tree(tx, tenant, mv_ns).await?;
        Tree::new(PgTree::writer(tx, tenant, mv_ns, db.cache.clone()))
            .apply(ups)
            .await
            .map_err(tree_err)?;
    }
    Ok(())
}

async fn insert_one(
    tx: &mut Transaction<'static, Postgres>,
    tenant: i64,
    leaf: &NewLeaf,
    work: &mut Vec<TreeWork>,
) -> Result<InsertResult, StoreError> {
    let ty = type_code(leaf.proof_type);

    let proof_hash = sha256(&[&leaf.raw]);

    let existing = sqlx::query(
        "SELECT h.id, h.complete, l.proof_hash, l.version FROM universe_heads h
         JOIN universe_leaves l ON l.id = h.leaf_id
         WHERE h.tenant_id = $1 AND h.universe_id = $2 AND h.proof_type = $3 AND h.leaf_key = $4",
    )
    .bind(tenant)
    .bind(&leaf.universe_id[..])
    .bind(ty)
    .bind(&leaf.leaf_key[..])
    .fetch_optional(&mut **tx)
    .await?;

    let (outcome, version, complete) = match &existing {
        Some(row) => {
            let complete: bool = row.get(1);
            let old_hash: Vec<u8> = row.get(2);
            let old_version: i32 = row.get(3);
            if old_hash == proof_hash {
                log_event(tx, tenant, "duplicate", leaf, &proof_hash).await?;
                return Ok(InsertResult {
                    outcome: InsertOutcome::Duplicate,
                    version: old_version,
                    complete,
                    completed_descendants: 0,
                });
            }
            (InsertOutcome::NewVersion, old_version + 1, complete)
        }
        None => {
            let complete = match (leaf.proof_type, &leaf.prev_leaf_key) {
                (ProofType::Issuance, _) => true,
                (ProofType::Transfer, None) => false,
                (ProofType::Transfer, Some(prev)) => {
                    is_complete(tx, tenant, &leaf.universe_id, prev).await?
                }
            };
            (InsertOutcome::New, 1, complete)
        }
    };

    let leaf_node = Node::leaf(&leaf.raw, leaf.leaf_sum);
    let leaf_id: i64 = sqlx::query_scalar(
        "WITH p AS (INSERT INTO proofs (tenant_id, hash, raw) VALUES ($1, $6, $19) ON CONFLICT DO NOTHING)
         INSERT INTO universe_leaves (tenant_id, universe_id, proof_type, leaf_key, version, proof_hash,
            asset_id, group_key, anchor_txid, anchor_vout, script_key, script_key_x, amount, leaf_sum,
            leaf_node_hash, block_height, block_hash, asset_name, inserted_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,
            COALESCE(to_timestamp($20::FLOAT8 / 1e6), now())) RETURNING id",
    )
    .bind(tenant)
    .bind(&leaf.universe_id[..])
    .bind(ty)
    .bind(&leaf.leaf_key[..])
    .bind(version)
    .bind(&proof_hash[..])
    .bind(&leaf.asset_id[..])
    .bind(leaf.group_key.as_ref().map(|g| g.to_vec()))
    .bind(&leaf.anchor.txid.to_byte_array()[..])
    .bind(leaf.anchor.vout as i32)
    .bind(&leaf.script_key[..])
    .bind(&leaf.script_key[1..])
    .bind(i64_of(leaf.amount))
    .bind(i64_of(leaf.leaf_sum))
    .bind(&leaf_node.hash[..])
    .bind(leaf.block_height as i32)
    .bind(&leaf.block_hash[..])
    .bind(&leaf.asset_name)
    .bind(&leaf.raw)
    .bind(leaf.received_at)
    .fetch_one(&mut **tx)
    .await?;

    match existing {
        Some(row) => {
            let head_id: i64 = row.get(0);
            sqlx::query("UPDATE universe_heads SET leaf_id = $1 WHERE id = $2")
                .bind(leaf_id)
                .bind(head_id)
                .execute(&mut **tx)
                .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO universe_heads (tenant_id, universe_id, proof_type, leaf_key, leaf_id, prev_leaf_key, complete)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant)
            .bind(&leaf.universe_id[..])
            .bind(ty)
            .bind(&leaf.leaf_key[..])
            .bind(leaf_id)
            .bind(leaf.prev_leaf_key.map(|k| k.to_vec()))
            .bind(complete)
            .execute(&mut **tx)
            .await?;
        }
    }
    log_event(
        tx,
        tenant,
        if outcome == InsertOutcome::New {
            "new_leaf"
        } else {
            "new_version"
        },
        leaf,
        &proof_hash,
    )
    .await?;

    let mut completed = 0;
    if complete {
        work.push(TreeWork {
            universe_id: leaf.universe_id,
            proof_type: leaf.proof_type,
            leaf: leaf.clone(),
            updates: vec![LeafUpdate {
                key: leaf.leaf_key,
                leaf: leaf_node,
            }],
        });
        if outcome == InsertOutcome::New && has_waiting(tx, tenant, &leaf.universe_id).await? {
            let extra = complete_descendants(tx, tenant, &leaf.universe_id, leaf.leaf_key).await?;
            completed = extra.len();
            if !extra.is_empty() {
                work.push(TreeWork {
                    universe_id: leaf.universe_id,
                    proof_type: ProofType::Transfer,
                    leaf: leaf.clone(),
                    updates: extra,
                });
            }
        }
    }
    Ok(InsertResult {
        outcome,
        version,
        complete,
        completed_descendants: completed,
    })
}

/// Whether any leaf of this universe waits for its ancestry (an index-only
/// probe; orphans are rare, so this usually saves the cascade query).
async fn has_waiting(
    conn: &mut PgConnection,
    tenant: i64,
    uid: &[u8; 32],
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM universe_heads
         WHERE tenant_id = $1 AND universe_id = $2 AND NOT complete)",
    )
    .bind(tenant)
    .bind(&uid[..])
    .fetch_one(&mut *conn)
    .await?)
}

async fn is_complete(
    conn: &mut PgConnection,
    tenant: i64,
    uid: &[u8; 32],
    key: &[u8; 32],
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM universe_heads
         WHERE tenant_id = $1 AND universe_id = $2 AND leaf_key = $3 AND complete)",
    )
    .bind(tenant)
    .bind(&uid[..])
    .bind(&key[..])
    .fetch_one(&mut *conn)
    .await?)
}

/// Marks every waiting leaf whose ancestry `key` completes as complete, and
/// returns their tree updates (breadth-first, transitively).
async fn complete_descendants(
    conn: &mut PgConnection,
    tenant: i64,
    uid: &[u8; 32],
    key: [u8; 32],
) -> Result<Vec<LeafUpdate>, StoreError> {
    let mut frontier = vec![key.to_vec()];
    let mut out = Vec::new();
    while !frontier.is_empty() {
        let rows = sqlx::query(
            "UPDATE universe_heads h SET complete = TRUE
             FROM universe_leaves l, proofs p
             WHERE h.tenant_id = $1 AND h.universe_id = $2 AND NOT h.complete
               AND h.prev_leaf_key = ANY($3)
               AND l.id = h.leaf_id AND p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
             RETURNING h.leaf_key, p.raw, l.leaf_sum",
        )
        .bind(tenant)
        .bind(&uid[..])
        .bind(&frontier)
        .fetch_all(&mut *conn)
        .await?;
        frontier.clear();
        for r in rows {
            let k: Vec<u8> = r.get(0);
            let raw: Vec<u8> = r.get(1);
            let sum: i64 = r.get(2);
            let key: [u8; 32] = k
                .clone()
                .try_into()
                .map_err(|_| StoreError::Corrupt("leaf key".into()))?;
            out.push(LeafUpdate::new(key, &raw, u64_of(sum)));
            frontier.push(k);
        }
    }
    Ok(out)
}

async fn ensure_universe(
    conn: &mut PgConnection,
    tenant: i64,
    leaf: &NewLeaf,
    ty: ProofType,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO universes (tenant_id, universe_id, proof_type, asset_id, group_key, asset_name)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(&leaf.universe_id[..])
    .bind(type_code(ty))
    .bind(leaf.group_key.is_none().then(|| leaf.asset_id.to_vec()))
    .bind(leaf.group_key.as_ref().map(|g| g.to_vec()))
    .bind(&leaf.asset_name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn log_event(
    conn: &mut PgConnection,
    tenant: i64,
    kind: &str,
    leaf: &NewLeaf,
    proof_hash: &[u8; 32],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ingest_events (tenant_id, kind, universe_id, proof_type, leaf_key, proof_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(kind)
    .bind(&leaf.universe_id[..])
    .bind(type_code(leaf.proof_type))
    .bind(&leaf.leaf_key[..])
    .bind(&proof_hash[..])
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A universe as listed.
#[derive(Clone, Debug)]
pub struct UniverseInfo {
    pub universe_id: [u8; 32],
    pub proof_type: ProofType,
    pub asset_id: Option<[u8; 32]>,
    pub group_key: Option<[u8; 33]>,
    pub asset_name: String,
    pub root: Node,
}

fn arr<const N: usize>(v: Vec<u8>) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("expected {N} bytes")))
}

/// A consistent read snapshot: every query on it sees the same commit.
pub async fn snapshot(db: &Db) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

pub async fn tree_root(conn: &mut PgConnection, tenant: i64, ns: &str) -> Result<Node, StoreError> {
    let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
        "SELECT root_hash, root_sum FROM mssmt_roots WHERE tenant_id = $1 AND namespace = $2",
    )
    .bind(tenant)
    .bind(ns)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((h, s)) => node_of(h, s),
        None => Ok(empty_root()),
    }
}

/// The universe's listing row and root, if it has any complete leaf.
pub async fn universe(
    conn: &mut PgConnection,
    tenant: i64,
    uid: &[u8; 32],
    ty: ProofType,
) -> Result<Option<UniverseInfo>, StoreError> {
    let row = sqlx::query(
        "SELECT asset_id, group_key, asset_name FROM universes
         WHERE tenant_id = $1 AND universe_id = $2 AND proof_type = $3",
    )
    .bind(tenant)
    .bind(&uid[..])
    .bind(type_code(ty))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let root = tree_root(conn, tenant, &universe_namespace(uid, ty)).await?;
    Ok(Some(UniverseInfo {
        universe_id: *uid,
        proof_type: ty,
        asset_id: row.get::<Option<Vec<u8>>, _>(0).map(arr).transpose()?,
        group_key: row.get::<Option<Vec<u8>>, _>(1).map(arr).transpose()?,
        asset_name: row.get(2),
        root,
    }))
}

/// A page of universes in first-seen order (or reverse).
pub async fn list_universes(
    conn: &mut PgConnection,
    tenant: i64,
    offset: i64,
    limit: i64,
    descending: bool,
) -> Result<Vec<UniverseInfo>, StoreError> {
    let q = format!(
        "SELECT universe_id, proof_type FROM universes WHERE tenant_id = $1 ORDER BY id {} OFFSET $2 LIMIT $3",
        if descending { "DESC" } else { "ASC" }
    );
    let rows: Vec<(Vec<u8>, i16)> = sqlx::query_as(&q)
        .bind(tenant)
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (uid, ty) in rows {
        let uid = arr(uid)?;
        if let Some(u) = universe(conn, tenant, &uid, type_from_code(ty)?).await? {
            out.push(u);
        }
    }
    Ok(out)
}

/// A stored leaf (its newest version).
#[derive(Clone, Debug)]
pub struct StoredLeaf {
    pub proof_type: ProofType,
    pub leaf_key: [u8; 32],
    pub raw: Vec<u8>,
    pub anchor: OutPoint,
    pub script_key: [u8; 33],
    pub leaf_sum: u64,
    pub leaf_node_hash: [u8; 32],
    pub version: i32,
    pub complete: bool,
    pub asset_name: String,
}

const LEAF_COLUMNS: &str =
    "h.proof_type, h.leaf_key, p.raw, l.anchor_txid, l.anchor_vout, l.script_key,
    l.leaf_sum, l.leaf_node_hash, l.version, h.complete, l.asset_name";

fn leaf_of(r: &sqlx::postgres::PgRow) -> Result<StoredLeaf, StoreError> {
    Ok(StoredLeaf {
        proof_type: type_from_code(r.get(0))?,
        leaf_key: arr(r.get(1))?,
        raw: r.get(2),
        anchor: OutPoint {
            txid: bitcoin::Txid::from_byte_array(arr(r.get(3))?),
            vout: r.get::<i32, _>(4) as u32,
        },
        script_key: arr(r.get(5))?,
        leaf_sum: u64_of(r.get(6)),
        leaf_node_hash: arr(r.get(7))?,
        version: r.get(8),
        complete: r.get(9),
        asset_name: r.get(10),
    })
}

/// The newest version of a leaf.
pub async fn leaf(
    conn: &mut PgConnection,
    tenant: i64,
    uid: &[u8; 32],
    ty: ProofType,
    key: &[u8; 32],
) -> Result<Option<StoredLeaf>, StoreError> {
    let q = format!(
        "SELECT {LEAF_COLUMNS} FROM universe_heads h
         JOIN universe_leaves l ON l.id = h.leaf_id
         JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
         WHERE h.tenant_id = $1 AND h.universe_id = $2 AND h.proof_type = $3 AND h.leaf_key = $4"
    );
    sqlx::query(&q)
        .bind(tenant)
        .bind(&uid[..])
        .bind(type_code(ty))
        .bind(&key[..])
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(leaf_of)
        .transpose()
}

/// A page of complete leaves of one universe tree, in first-seen order.
pub async fn leaves_page(
    conn: &mut PgConnection,
    tenant: i64,
    uid: &[u8; 32],
    ty: ProofType,
    offset: i64,
    limit: i64,
    descending: bool,
) -> Result<Vec<StoredLeaf>, StoreError> {
    let q = format!(
        "SELECT {LEAF_COLUMNS} FROM universe_heads h
         JOIN universe_leaves l ON l.id = h.leaf_id
         JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
         WHERE h.tenant_id = $1 AND h.universe_id = $2 AND h.proof_type = $3 AND h.complete
         ORDER BY h.id {} OFFSET $4 LIMIT $5",
        if descending { "DESC" } else { "ASC" }
    );
    sqlx::query(&q)
        .bind(tenant)
        .bind(&uid[..])
        .bind(type_code(ty))
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(leaf_of)
        .collect()
}

/// Root and compressed proof of `key` in tree `ns`.
pub async fn tree_proof(
    conn: &mut PgConnection,
    db: &Db,
    tenant: i64,
    ns: &str,
    key: &[u8; 32],
) -> Result<(Node, CompressedProof), StoreError> {
    let mut t = Tree::new(PgTree::reader(conn, tenant, ns, db.cache.clone()));
    let root = t.root().await.map_err(tree_err)?;
    let p = t.proof(key).await.map_err(tree_err)?;
    Ok((root, p.compress()))
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub assets: i64,
    pub groups: i64,
    pub proofs: i64,
    pub leaves: i64,
}

pub async fn stats(conn: &mut PgConnection, tenant: i64) -> Result<Stats, StoreError> {
    let (assets, groups, proofs, leaves): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT
           (SELECT count(DISTINCT asset_id) FROM universe_leaves WHERE tenant_id = $1),
           (SELECT count(DISTINCT group_key) FROM universe_leaves WHERE tenant_id = $1 AND group_key IS NOT NULL),
           (SELECT count(*) FROM proofs WHERE tenant_id = $1),
           (SELECT count(*) FROM universe_heads WHERE tenant_id = $1)",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Stats {
        assets,
        groups,
        proofs,
        leaves,
    })
}

/// New-proof events per UTC day in `[start, end]` (unix seconds).
pub async fn events_by_day(
    conn: &mut PgConnection,
    tenant: i64,
    start: i64,
    end: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT to_char(date_trunc('day', at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS d, count(*)
         FROM ingest_events
         WHERE tenant_id = $1 AND kind IN ('new_leaf', 'new_version')
           AND at >= to_timestamp($2) AND at <= to_timestamp($3)
         GROUP BY d ORDER BY d",
    )
    .bind(tenant)
    .bind(start as f64)
    .bind(end as f64)
    .fetch_all(&mut *conn)
    .await?)
}
