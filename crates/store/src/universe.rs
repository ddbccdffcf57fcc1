//! Universe leaves, heads, roots and the multiverse, in PostgreSQL. Every
//! write of a leaf, its index rows and the tree updates it causes happens in
//! one transaction.

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::time::Timestamp;
use crate::tree::{lock_root, PgTree};
use bitcoin::hashes::Hash as _;
use bitcoin::OutPoint;
// Dynamic SQL here is only ever built from constant fragments (column lists,
// one fixed condition per filter, ASC/DESC): AssertSqlSafe marks those.
use sqlx::AssertSqlSafe;
use sqlx::{FromRow, PgConnection, Postgres, Transaction};
use tapvault_codec::primitives::sha256;
use tapvault_codec::universe::{multiverse_leaf, universe_namespace};
use tapvault_codec::ProofType;
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
    /// When it was first received; `None` = now. Set only by imports,
    /// which keep the original times.
    pub received_at: Option<Timestamp>,
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

/// A tree failure, keeping a database error as one (so the caller can tell
/// an outage from corruption).
fn tree_err(e: tapvault_mssmt::TreeError<StoreError>) -> StoreError {
    match e {
        tapvault_mssmt::TreeError::Store(se) => se,
        other => StoreError::Tree(other.to_string()),
    }
}

/// Locks (creating if needed) the root row of a tree until the transaction ends.
/// Files `leaves` in one transaction; returns one result per leaf. On any
/// error nothing is written.
pub async fn insert_leaves(
    db: &Db,
    tenant: TenantId,
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
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<Vec<InsertResult>, StoreError> {
    // Lock order: every universe's issuance then transfer tree, universes in
    // byte order, and the multiverse trees last. Every writer follows it, so
    // writers never deadlock, even with many leaves in one transaction.
    let mut uids: Vec<[u8; 32]> = leaves.iter().map(|l| l.universe_id).collect();
    uids.sort();
    uids.dedup();
    for uid in &uids {
        lock_root(tx, tenant, &universe_namespace(uid, ProofType::Issuance)).await?;
        lock_root(tx, tenant, &universe_namespace(uid, ProofType::Transfer)).await?;
    }
    let (out, pending) = file_rows(tx, tenant, leaves).await?;
    apply_tree_work(tx, db, tenant, pending).await?;
    Ok(out)
}

/// (universe id, proof type code, leaf key): one universe leaf.
type HeadKey = ([u8; 32], i16, [u8; 32]);

/// The current head of a leaf key: complete?, proof hash, version.
#[derive(Clone, Copy)]
struct Head {
    complete: bool,
    proof_hash: [u8; 32],
    version: i32,
}

/// What the batch knows, kept current as leaves are decided and written.
struct BatchState {
    heads: std::collections::HashMap<HeadKey, Head>,
    /// (universe, leaf key) of complete heads among the batch's previous
    /// outputs and its own leaves.
    complete_keys: std::collections::HashSet<([u8; 32], [u8; 32])>,
    /// Whether a universe has leaves waiting for their ancestry.
    waiting: std::collections::HashMap<[u8; 32], bool>,
    /// Every stored version of the batch's leaf keys that could be pushed
    /// again: (key, proof hash) → version.
    known: std::collections::HashMap<(HeadKey, [u8; 32]), i32>,
}

/// One row of a batched write (a duplicate writes only its event).
struct PendingRow<'a> {
    leaf: &'a NewLeaf,
    proof_hash: [u8; 32],
    leaf_node: Node,
    version: i32,
    complete: bool,
    outcome: InsertOutcome,
}

/// Writes the rows of `leaves` (proofs, leaves, heads, events) with a few
/// statements per batch rather than several per leaf: heads and ancestry are
/// read up front, every decision is made here, in order, exactly as if the
/// leaves came one by one; then each run of distinct leaf keys is written
/// by one statement. Returns the results and the tree work.
async fn file_rows(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<(Vec<InsertResult>, Vec<TreeWork>), StoreError> {
    let heads = load_heads(tx, tenant, leaves).await?;
    let mut st = BatchState {
        known: load_older_versions(tx, tenant, leaves, &heads).await?,
        heads,
        complete_keys: load_complete_prevs(tx, tenant, leaves).await?,
        waiting: Default::default(),
    };
    let mut out: Vec<InsertResult> = Vec::with_capacity(leaves.len());
    let mut work: Vec<TreeWork> = Vec::new();
    let mut run: Vec<PendingRow> = Vec::new();
    let mut run_keys: std::collections::HashSet<HeadKey> = Default::default();
    for leaf in leaves {
        let ty = type_code(leaf.proof_type);
        let hk: HeadKey = (leaf.universe_id, ty, leaf.leaf_key);
        if !run_keys.insert(hk) {
            // A key twice in one statement would upsert its head twice.
            flush_run(tx, tenant, &mut run, &mut out, &mut work, &mut st).await?;
            run_keys.clear();
            run_keys.insert(hk);
        }
        let proof_hash = sha256(&[&leaf.raw]);
        let (outcome, version, complete) = match st.heads.get(&hk) {
            Some(h) if h.proof_hash == proof_hash => {
                (InsertOutcome::Duplicate, h.version, h.complete)
            }
            // A proof this leaf already had (A, B, A…): nothing is added and
            // the head stays on the newest distinct proof, so flapping
            // cannot grow the history.
            Some(h) if st.known.contains_key(&(hk, proof_hash)) => (
                InsertOutcome::Duplicate,
                st.known[&(hk, proof_hash)],
                h.complete,
            ),
            Some(h) => (InsertOutcome::NewVersion, h.version + 1, h.complete),
            None => {
                let complete = match (leaf.proof_type, &leaf.prev_leaf_key) {
                    (ProofType::Issuance, _) => true,
                    (ProofType::Transfer, None) => false,
                    (ProofType::Transfer, Some(prev)) => {
                        st.complete_keys.contains(&(leaf.universe_id, *prev))
                    }
                };
                (InsertOutcome::New, 1, complete)
            }
        };
        if outcome != InsertOutcome::Duplicate {
            st.known.insert((hk, proof_hash), version);
            st.heads.insert(
                hk,
                Head {
                    complete,
                    proof_hash,
                    version,
                },
            );
            if complete {
                st.complete_keys.insert((leaf.universe_id, leaf.leaf_key));
            } else {
                st.waiting.insert(leaf.universe_id, true);
            }
        }
        run.push(PendingRow {
            leaf,
            proof_hash,
            leaf_node: Node::leaf(&leaf.raw, leaf.leaf_sum),
            version,
            complete,
            outcome,
        });
    }
    flush_run(tx, tenant, &mut run, &mut out, &mut work, &mut st).await?;
    Ok((out, work))
}

/// Heads of the batch's leaf keys, in one query.
async fn load_heads(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<std::collections::HashMap<HeadKey, Head>, StoreError> {
    let uids: Vec<&[u8]> = leaves.iter().map(|l| &l.universe_id[..]).collect();
    let tys: Vec<i16> = leaves.iter().map(|l| type_code(l.proof_type)).collect();
    let keys: Vec<&[u8]> = leaves.iter().map(|l| &l.leaf_key[..]).collect();
    #[derive(FromRow)]
    struct HeadRow {
        universe_id: [u8; 32],
        proof_type: i16,
        leaf_key: [u8; 32],
        complete: bool,
        proof_hash: [u8; 32],
        version: i32,
    }
    let rows: Vec<HeadRow> = sqlx::query_as(
        "SELECT h.universe_id, h.proof_type, h.leaf_key, h.complete, l.proof_hash, l.version
         FROM (SELECT DISTINCT * FROM unnest($2::BYTEA[], $3::INT2[], $4::BYTEA[])) AS k(u, t, lk)
         JOIN universe_heads h ON h.tenant_id = $1 AND h.universe_id = k.u
              AND h.proof_type = k.t AND h.leaf_key = k.lk
         JOIN universe_leaves l ON l.id = h.leaf_id",
    )
    .bind(tenant)
    .bind(&uids)
    .bind(&tys)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                (r.universe_id, r.proof_type, r.leaf_key),
                Head {
                    complete: r.complete,
                    proof_hash: r.proof_hash,
                    version: r.version,
                },
            )
        })
        .collect())
}

/// The stored versions a batch's proofs could repeat: every head, plus the
/// older versions of keys with several versions whose head differs from an
/// incoming proof (usually none, and then no query is made).
async fn load_older_versions(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    leaves: &[NewLeaf],
    heads: &std::collections::HashMap<HeadKey, Head>,
) -> Result<std::collections::HashMap<(HeadKey, [u8; 32]), i32>, StoreError> {
    let mut out: std::collections::HashMap<(HeadKey, [u8; 32]), i32> = heads
        .iter()
        .map(|(hk, h)| ((*hk, h.proof_hash), h.version))
        .collect();
    let mut uids: Vec<&[u8]> = Vec::new();
    let mut tys: Vec<i16> = Vec::new();
    let mut keys: Vec<&[u8]> = Vec::new();
    for l in leaves {
        let hk: HeadKey = (l.universe_id, type_code(l.proof_type), l.leaf_key);
        if let Some(h) = heads.get(&hk) {
            if h.version > 1 && h.proof_hash != sha256(&[&l.raw]) {
                uids.push(&l.universe_id[..]);
                tys.push(hk.1);
                keys.push(&l.leaf_key[..]);
            }
        }
    }
    if uids.is_empty() {
        return Ok(out);
    }
    #[derive(FromRow)]
    struct VersionRow {
        universe_id: [u8; 32],
        proof_type: i16,
        leaf_key: [u8; 32],
        proof_hash: [u8; 32],
        version: i32,
    }
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT l.universe_id, l.proof_type, l.leaf_key, l.proof_hash, l.version
         FROM (SELECT DISTINCT * FROM unnest($2::BYTEA[], $3::INT2[], $4::BYTEA[])) AS k(u, t, lk)
         JOIN universe_leaves l ON l.tenant_id = $1 AND l.universe_id = k.u
              AND l.proof_type = k.t AND l.leaf_key = k.lk",
    )
    .bind(tenant)
    .bind(&uids)
    .bind(&tys)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        out.insert(
            ((r.universe_id, r.proof_type, r.leaf_key), r.proof_hash),
            r.version,
        );
    }
    Ok(out)
}

/// Which of the batch's previous-output leaf keys are complete heads.
async fn load_complete_prevs(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<std::collections::HashSet<([u8; 32], [u8; 32])>, StoreError> {
    let (uids, keys): (Vec<&[u8]>, Vec<&[u8]>) = leaves
        .iter()
        .filter_map(|l| {
            l.prev_leaf_key
                .as_ref()
                .map(|p| (&l.universe_id[..], &p[..]))
        })
        .unzip();
    if uids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<([u8; 32], [u8; 32])> = sqlx::query_as(
        "SELECT DISTINCT h.universe_id, h.leaf_key
         FROM unnest($2::BYTEA[], $3::BYTEA[]) AS k(u, lk)
         JOIN universe_heads h ON h.tenant_id = $1 AND h.universe_id = k.u
              AND h.leaf_key = k.lk AND h.complete",
    )
    .bind(tenant)
    .bind(&uids)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Writes one run (distinct leaf keys) with one statement, then completes
/// orphans that the run's new complete leaves were waiting for.
async fn flush_run(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    run: &mut Vec<PendingRow<'_>>,
    out: &mut Vec<InsertResult>,
    work: &mut Vec<TreeWork>,
    st: &mut BatchState,
) -> Result<(), StoreError> {
    if run.is_empty() {
        return Ok(());
    }
    let writes: Vec<&PendingRow> = run
        .iter()
        .filter(|r| r.outcome != InsertOutcome::Duplicate)
        .collect();
    let col =
        |f: &dyn Fn(&PendingRow) -> Vec<u8>| writes.iter().map(|r| f(r)).collect::<Vec<Vec<u8>>>();
    let uids = col(&|r| r.leaf.universe_id.to_vec());
    let keys = col(&|r| r.leaf.leaf_key.to_vec());
    let hashes = col(&|r| r.proof_hash.to_vec());
    let asset_ids = col(&|r| r.leaf.asset_id.to_vec());
    let txids = col(&|r| r.leaf.anchor.txid.to_byte_array().to_vec());
    let script_keys = col(&|r| r.leaf.script_key.to_vec());
    let script_keys_x = col(&|r| r.leaf.script_key[1..].to_vec());
    let node_hashes = col(&|r| r.leaf_node.hash.to_vec());
    let block_hashes = col(&|r| r.leaf.block_hash.to_vec());
    let raws: Vec<&[u8]> = writes.iter().map(|r| &r.leaf.raw[..]).collect();
    let tys: Vec<i16> = writes
        .iter()
        .map(|r| type_code(r.leaf.proof_type))
        .collect();
    let versions: Vec<i32> = writes.iter().map(|r| r.version).collect();
    let group_keys: Vec<Option<Vec<u8>>> = writes
        .iter()
        .map(|r| r.leaf.group_key.map(|g| g.to_vec()))
        .collect();
    let vouts: Vec<i32> = writes.iter().map(|r| r.leaf.anchor.vout as i32).collect();
    let amounts: Vec<i64> = writes.iter().map(|r| i64_of(r.leaf.amount)).collect();
    let sums: Vec<i64> = writes.iter().map(|r| i64_of(r.leaf.leaf_sum)).collect();
    let heights: Vec<i32> = writes.iter().map(|r| r.leaf.block_height as i32).collect();
    let names: Vec<&str> = writes.iter().map(|r| r.leaf.asset_name.as_str()).collect();
    let received: Vec<Option<i64>> = writes
        .iter()
        .map(|r| r.leaf.received_at.map(Timestamp::micros))
        .collect();
    let prevs: Vec<Option<Vec<u8>>> = writes
        .iter()
        .map(|r| r.leaf.prev_leaf_key.map(|k| k.to_vec()))
        .collect();
    let completes: Vec<bool> = writes.iter().map(|r| r.complete).collect();
    // Events for every row, duplicates included, in arrival order.
    let ev_kinds: Vec<&str> = run
        .iter()
        .map(|r| match r.outcome {
            InsertOutcome::New => "new_leaf",
            InsertOutcome::NewVersion => "new_version",
            InsertOutcome::Duplicate => "duplicate",
        })
        .collect();
    let ev_uids: Vec<&[u8]> = run.iter().map(|r| &r.leaf.universe_id[..]).collect();
    let ev_tys: Vec<i16> = run.iter().map(|r| type_code(r.leaf.proof_type)).collect();
    let ev_keys: Vec<&[u8]> = run.iter().map(|r| &r.leaf.leaf_key[..]).collect();
    let ev_hashes: Vec<&[u8]> = run.iter().map(|r| &r.proof_hash[..]).collect();
    sqlx::query(
        "WITH i AS (
            SELECT * FROM unnest($2::BYTEA[], $3::INT2[], $4::BYTEA[], $5::INT4[], $6::BYTEA[],
                $7::BYTEA[], $8::BYTEA[], $9::BYTEA[], $10::INT4[], $11::BYTEA[], $12::BYTEA[],
                $13::INT8[], $14::INT8[], $15::BYTEA[], $16::INT4[], $17::BYTEA[], $18::TEXT[],
                $19::BYTEA[], $20::INT8[], $21::BYTEA[], $22::BOOL[])
            WITH ORDINALITY AS t(universe_id, proof_type, leaf_key, version, proof_hash,
                asset_id, group_key, anchor_txid, anchor_vout, script_key, script_key_x,
                amount, leaf_sum, leaf_node_hash, block_height, block_hash, asset_name,
                raw, received_at, prev_leaf_key, complete, ord)
         ),
         p AS (
            INSERT INTO proofs (tenant_id, hash, raw)
            SELECT DISTINCT ON (proof_hash) $1, proof_hash, raw FROM i
            ON CONFLICT DO NOTHING
         ),
         l AS (
            INSERT INTO universe_leaves (tenant_id, universe_id, proof_type, leaf_key, version,
                proof_hash, asset_id, group_key, anchor_txid, anchor_vout, script_key,
                script_key_x, amount, leaf_sum, leaf_node_hash, block_height, block_hash,
                asset_name, inserted_at)
            SELECT $1, universe_id, proof_type, leaf_key, version, proof_hash, asset_id,
                group_key, anchor_txid, anchor_vout, script_key, script_key_x, amount, leaf_sum,
                leaf_node_hash, block_height, block_hash, asset_name,
                tapvault_time(received_at)
            FROM i ORDER BY ord
            RETURNING id, universe_id, proof_type, leaf_key
         ),
         h AS (
            INSERT INTO universe_heads (tenant_id, universe_id, proof_type, leaf_key, leaf_id,
                prev_leaf_key, complete)
            SELECT $1, i.universe_id, i.proof_type, i.leaf_key, l.id, i.prev_leaf_key, i.complete
            FROM i JOIN l ON l.universe_id = i.universe_id AND l.proof_type = i.proof_type
                AND l.leaf_key = i.leaf_key
            ON CONFLICT (tenant_id, universe_id, proof_type, leaf_key)
                DO UPDATE SET leaf_id = EXCLUDED.leaf_id
         )
         INSERT INTO ingest_events (tenant_id, kind, universe_id, proof_type, leaf_key, proof_hash)
         SELECT $1, kind, u, t, k, ph
         FROM unnest($23::TEXT[], $24::BYTEA[], $25::INT2[], $26::BYTEA[], $27::BYTEA[])
            WITH ORDINALITY AS e(kind, u, t, k, ph, ord)
         ORDER BY ord",
    )
    .bind(tenant)
    .bind(&uids)
    .bind(&tys)
    .bind(&keys)
    .bind(&versions)
    .bind(&hashes)
    .bind(&asset_ids)
    .bind(&group_keys)
    .bind(&txids)
    .bind(&vouts)
    .bind(&script_keys)
    .bind(&script_keys_x)
    .bind(&amounts)
    .bind(&sums)
    .bind(&node_hashes)
    .bind(&heights)
    .bind(&block_hashes)
    .bind(&names)
    .bind(&raws)
    .bind(&received)
    .bind(&prevs)
    .bind(&completes)
    .bind(&ev_kinds)
    .bind(&ev_uids)
    .bind(&ev_tys)
    .bind(&ev_keys)
    .bind(&ev_hashes)
    .execute(&mut **tx)
    .await?;

    for r in run.drain(..) {
        let mut completed = 0;
        if r.outcome != InsertOutcome::Duplicate && r.complete {
            work.push(TreeWork {
                universe_id: r.leaf.universe_id,
                proof_type: r.leaf.proof_type,
                leaf: r.leaf.clone(),
                updates: vec![LeafUpdate {
                    key: r.leaf.leaf_key,
                    leaf: r.leaf_node,
                }],
            });
            if r.outcome == InsertOutcome::New {
                let uid = r.leaf.universe_id;
                let w = match st.waiting.get(&uid) {
                    Some(w) => *w,
                    None => {
                        let w = has_waiting(tx, tenant, &uid).await?;
                        st.waiting.insert(uid, w);
                        w
                    }
                };
                if w {
                    let extra = complete_descendants(tx, tenant, &uid, r.leaf.leaf_key).await?;
                    completed = extra.len();
                    let transfer = type_code(ProofType::Transfer);
                    for u in &extra {
                        st.complete_keys.insert((uid, u.key));
                        if let Some(h) = st.heads.get_mut(&(uid, transfer, u.key)) {
                            h.complete = true;
                        }
                    }
                    if !extra.is_empty() {
                        work.push(TreeWork {
                            universe_id: uid,
                            proof_type: ProofType::Transfer,
                            leaf: r.leaf.clone(),
                            updates: extra,
                        });
                    }
                }
            }
        }
        out.push(InsertResult {
            outcome: r.outcome,
            version: r.version,
            complete: r.complete,
            completed_descendants: completed,
        });
    }
    Ok(())
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
    tenant: TenantId,
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
        // Locked up front by insert_leaves_tx, in lock order.
        let root = Tree::new(PgTree::locked_writer(tx, tenant, &ns, db.cache.clone()))
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
        lock_root(tx, tenant, mv_ns).await?;
        Tree::new(PgTree::locked_writer(tx, tenant, mv_ns, db.cache.clone()))
            .apply(ups)
            .await
            .map_err(tree_err)?;
    }
    Ok(())
}

/// Whether any leaf of this universe waits for its ancestry (an index-only
/// probe; orphans are rare, so this usually saves the cascade query).
async fn has_waiting(
    conn: &mut PgConnection,
    tenant: TenantId,
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

/// Marks every waiting leaf whose ancestry `key` completes as complete, and
/// returns their tree updates (breadth-first, transitively).
async fn complete_descendants(
    conn: &mut PgConnection,
    tenant: TenantId,
    uid: &[u8; 32],
    key: [u8; 32],
) -> Result<Vec<LeafUpdate>, StoreError> {
    let mut frontier = vec![key.to_vec()];
    let mut out = Vec::new();
    while !frontier.is_empty() {
        let rows: Vec<([u8; 32], Vec<u8>, i64)> = sqlx::query_as(
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
        for (key, raw, sum) in rows {
            out.push(LeafUpdate::new(key, &raw, u64_of(sum)));
            frontier.push(key.to_vec());
        }
    }
    Ok(out)
}

async fn ensure_universe(
    conn: &mut PgConnection,
    tenant: TenantId,
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

/// A consistent read snapshot: every query on it sees the same commit.
pub async fn snapshot(db: &Db) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

pub async fn tree_root(
    conn: &mut PgConnection,
    tenant: TenantId,
    ns: &str,
) -> Result<Node, StoreError> {
    let row: Option<([u8; 32], i64)> = sqlx::query_as(
        "SELECT root_hash, root_sum FROM mssmt_roots WHERE tenant_id = $1 AND namespace = $2",
    )
    .bind(tenant)
    .bind(ns)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((hash, sum)) => Ok(Node {
            hash,
            sum: u64_of(sum),
        }),
        None => Ok(empty_root()),
    }
}

/// The universe's listing row and root, if it has any complete leaf.
pub async fn universe(
    conn: &mut PgConnection,
    tenant: TenantId,
    uid: &[u8; 32],
    ty: ProofType,
) -> Result<Option<UniverseInfo>, StoreError> {
    #[derive(FromRow)]
    struct UniverseRow {
        asset_id: Option<[u8; 32]>,
        group_key: Option<[u8; 33]>,
        asset_name: String,
    }
    let row: Option<UniverseRow> = sqlx::query_as(
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
        asset_id: row.asset_id,
        group_key: row.group_key,
        asset_name: row.asset_name,
        root,
    }))
}

/// A page of universes in first-seen order (or reverse).
pub async fn list_universes(
    conn: &mut PgConnection,
    tenant: TenantId,
    offset: i64,
    limit: i64,
    descending: bool,
) -> Result<Vec<UniverseInfo>, StoreError> {
    let q = format!(
        "SELECT universe_id, proof_type FROM universes WHERE tenant_id = $1 ORDER BY id {} OFFSET $2 LIMIT $3",
        if descending { "DESC" } else { "ASC" }
    );
    let rows: Vec<([u8; 32], i16)> = sqlx::query_as(AssertSqlSafe(q))
        .bind(tenant)
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (uid, ty) in rows {
        if let Some(u) = universe(conn, tenant, &uid, type_from_code(ty)?).await? {
            out.push(u);
        }
    }
    Ok(out)
}

/// One issuance universe's statistics (QueryAssetStats).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AssetStatRow {
    pub universe_id: Vec<u8>,
    pub asset_id: Option<Vec<u8>>,
    pub group_key: Option<Vec<u8>>,
    pub asset_name: String,
    pub root_sum: i64,
    /// The universe's first issuance proof, as stored (genesis facts).
    pub first_proof: Vec<u8>,
    /// Leaves (heads) of its issuance and transfer trees.
    pub proofs: i64,
}

/// A page of issuance universes with their statistics, filtered and paged
/// in SQL (first-seen order, or reverse).
#[allow(clippy::too_many_arguments)]
pub async fn asset_stats(
    conn: &mut PgConnection,
    tenant: TenantId,
    name_filter: &str,
    asset_id_filter: Option<&[u8]>,
    offset: i64,
    limit: i64,
    descending: bool,
) -> Result<Vec<AssetStatRow>, StoreError> {
    let q = format!(
        "SELECT u.universe_id, u.asset_id, u.group_key, u.asset_name,
                COALESCE(r.root_sum, 0) AS root_sum,
                (SELECT p.raw FROM universe_leaves l JOIN proofs p
                   ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
                 WHERE l.tenant_id = u.tenant_id AND l.universe_id = u.universe_id
                   AND l.proof_type = 1 ORDER BY l.id LIMIT 1) AS first_proof,
                (SELECT count(*) FROM universe_heads h
                 WHERE h.tenant_id = u.tenant_id AND h.universe_id = u.universe_id) AS proofs
         FROM universes u
         LEFT JOIN mssmt_roots r ON r.tenant_id = u.tenant_id
              AND r.namespace = 'issuance-' || encode(u.universe_id, 'hex')
         WHERE u.tenant_id = $1 AND u.proof_type = 1
           AND ($2 = '' OR strpos(u.asset_name, $2) > 0)
           AND ($3::BYTEA IS NULL OR u.asset_id = $3)
         ORDER BY u.id {} OFFSET $4 LIMIT $5",
        if descending { "DESC" } else { "ASC" }
    );
    Ok(sqlx::query_as(AssertSqlSafe(q))
        .bind(tenant)
        .bind(name_filter)
        .bind(asset_id_filter)
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?)
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

#[derive(FromRow)]
struct LeafRow {
    proof_type: i16,
    leaf_key: [u8; 32],
    raw: Vec<u8>,
    anchor_txid: [u8; 32],
    anchor_vout: i32,
    script_key: [u8; 33],
    leaf_sum: i64,
    leaf_node_hash: [u8; 32],
    version: i32,
    complete: bool,
    asset_name: String,
}

impl TryFrom<LeafRow> for StoredLeaf {
    type Error = StoreError;
    fn try_from(r: LeafRow) -> Result<Self, StoreError> {
        Ok(StoredLeaf {
            proof_type: type_from_code(r.proof_type)?,
            leaf_key: r.leaf_key,
            raw: r.raw,
            anchor: OutPoint {
                txid: bitcoin::Txid::from_byte_array(r.anchor_txid),
                vout: r.anchor_vout as u32,
            },
            script_key: r.script_key,
            leaf_sum: u64_of(r.leaf_sum),
            leaf_node_hash: r.leaf_node_hash,
            version: r.version,
            complete: r.complete,
            asset_name: r.asset_name,
        })
    }
}

/// The newest version of a leaf.
pub async fn leaf(
    conn: &mut PgConnection,
    tenant: TenantId,
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
    sqlx::query_as::<_, LeafRow>(AssertSqlSafe(q))
        .bind(tenant)
        .bind(&uid[..])
        .bind(type_code(ty))
        .bind(&key[..])
        .fetch_optional(&mut *conn)
        .await?
        .map(StoredLeaf::try_from)
        .transpose()
}

/// A page of complete leaves of one universe tree, in first-seen order.
pub async fn leaves_page(
    conn: &mut PgConnection,
    tenant: TenantId,
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
    sqlx::query_as::<_, LeafRow>(AssertSqlSafe(q))
        .bind(tenant)
        .bind(&uid[..])
        .bind(type_code(ty))
        .bind(offset)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(StoredLeaf::try_from)
        .collect()
}

/// Root and compressed proof of `key` in tree `ns`.
pub async fn tree_proof(
    conn: &mut PgConnection,
    db: &Db,
    tenant: TenantId,
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

pub async fn stats(conn: &mut PgConnection, tenant: TenantId) -> Result<Stats, StoreError> {
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
    tenant: TenantId,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT to_char(date_trunc('day', at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS d, count(*)
         FROM ingest_events
         WHERE tenant_id = $1 AND kind IN ('new_leaf', 'new_version')
           AND at >= tapvault_time($2) AND at <= tapvault_time($3)
         GROUP BY d ORDER BY d",
    )
    .bind(tenant)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?)
}
