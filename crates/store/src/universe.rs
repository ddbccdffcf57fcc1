//! Universe leaves, heads, roots and the multiverse, in PostgreSQL. Every
//! write of a leaf, its index rows and the tree updates it causes happens in
//! one transaction.

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::time::Timestamp;
use crate::tree::{lock_roots, RootedReader, TreeRows, TxTrees};
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
    /// The leaf's proofs as of its commit, when asked for
    /// ([`insert_leaves_answered`]) and when the leaf's head is this proof.
    pub proofs: Option<LeafProofs>,
}

/// A leaf's universe proof (inclusion, or exclusion while it waits for its
/// ancestry) and its universe's multiverse proof, against the roots its
/// transaction committed.
#[derive(Clone, Debug)]
pub struct LeafProofs {
    pub root: Node,
    pub proof: CompressedProof,
    pub multiverse_root: Node,
    pub multiverse_proof: CompressedProof,
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

/// Files `leaves` in one transaction; returns one result per leaf. On any
/// error nothing is written.
pub async fn insert_leaves(
    db: &Db,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<Vec<InsertResult>, StoreError> {
    insert_in_own_tx(db, tenant, leaves, false).await
}

/// [`insert_leaves`], with each leaf's [`LeafProofs`] computed in the same
/// transaction (from the trees it just updated): the caller can answer
/// without reading anything back.
pub async fn insert_leaves_answered(
    db: &Db,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<Vec<InsertResult>, StoreError> {
    insert_in_own_tx(db, tenant, leaves, true).await
}

async fn insert_in_own_tx(
    db: &Db,
    tenant: TenantId,
    leaves: &[NewLeaf],
    answers: bool,
) -> Result<Vec<InsertResult>, StoreError> {
    let namespaces = tree_namespaces(leaves);
    let lock = lock_statement(tenant, &namespaces)?;
    let mut tx = HandTx {
        conn: db.pool.acquire().await?,
        open: false,
    };
    let filed = async {
        // BEGIN and the tree locks in one round trip; the roots are read by
        // the batch's lookup, the next statement (so after the locks are
        // held).
        tx.open = true;
        sqlx::raw_sql(sqlx::AssertSqlSafe(lock))
            .execute(&mut *tx.conn)
            .await?;
        let out = file_locked(
            &mut tx.conn,
            db,
            tenant,
            leaves,
            LockedTrees::Held(namespaces),
            answers,
        )
        .await?;
        sqlx::raw_sql("COMMIT").execute(&mut *tx.conn).await?;
        tx.open = false;
        Ok::<_, StoreError>(out)
    }
    .await;
    if filed.is_err()
        && sqlx::raw_sql("ROLLBACK")
            .execute(&mut *tx.conn)
            .await
            .is_ok()
    {
        tx.open = false;
    }
    filed
}

/// A pooled connection in a transaction begun by hand (sqlx's own
/// `begin_with` leaves a connection whose custom `BEGIN` statement failed
/// inside the aborted transaction, and returns it to the pool so). Dropped
/// while the transaction is open (an error whose rollback failed too, or a
/// cancelled future), the connection is closed, never pooled.
struct HandTx {
    conn: sqlx::pool::PoolConnection<Postgres>,
    open: bool,
}

impl Drop for HandTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// `BEGIN`, then the lock of every tree in `namespaces`, in their order
/// (see [`lock_trees`]), as one simple-protocol string: the values are a
/// tenant id and namespaces, which are ours (a proof type and hex), and are
/// checked to be nothing else before they are spliced in.
fn lock_statement(tenant: TenantId, namespaces: &[String]) -> Result<String, StoreError> {
    let empty = hex::encode(tapvault_mssmt::empty_root().hash);
    let mut sql = String::from(
        "BEGIN; INSERT INTO mssmt_roots (tenant_id, namespace, root_hash, root_sum) VALUES ",
    );
    for (i, ns) in namespaces.iter().enumerate() {
        if ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StoreError::Tree(format!("not a tree namespace: {ns:?}")));
        }
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("({}, '{ns}', '\\x{empty}', 0)", tenant.0));
    }
    sql.push_str(
        " ON CONFLICT (tenant_id, namespace) DO UPDATE SET root_sum = mssmt_roots.root_sum",
    );
    Ok(sql)
}

/// [`insert_leaves`] inside a caller's transaction, so other rows (a backup
/// blob, say) commit or roll back together with the leaves.
pub async fn insert_leaves_tx(
    tx: &mut Transaction<'static, Postgres>,
    db: &Db,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<Vec<InsertResult>, StoreError> {
    let locked = lock_trees(tx, tenant, leaves).await?;
    file_locked(tx, db, tenant, leaves, locked, false).await
}

/// The trees a batch of leaves may change, locked: with their roots as the
/// lock read them, or only held (the batch's lookup reads the roots).
pub enum LockedTrees {
    Read(std::collections::HashMap<String, Node>),
    Held(Vec<String>),
}

/// Every tree `leaves` may change, in the one lock order every writer
/// follows: each universe's issuance then transfer tree, universes in byte
/// order, then the two multiverse trees. Writers therefore never deadlock
/// on trees, whatever their batches hold.
fn tree_namespaces(leaves: &[NewLeaf]) -> Vec<String> {
    let mut uids: Vec<[u8; 32]> = leaves.iter().map(|l| l.universe_id).collect();
    uids.sort();
    uids.dedup();
    let mut namespaces = Vec::with_capacity(2 * uids.len() + 2);
    for uid in &uids {
        namespaces.push(universe_namespace(uid, ProofType::Issuance));
        namespaces.push(universe_namespace(uid, ProofType::Transfer));
    }
    for ty in [ProofType::Issuance, ProofType::Transfer] {
        namespaces.push(ty.multiverse_namespace().to_string());
    }
    namespaces
}

/// Locks the trees `leaves` may change ([`tree_namespaces`]) and reads
/// their roots. A caller that writes other rows in the same transaction
/// locks first (rows that take the tenant's usage lock come after the tree
/// locks in every writer).
pub async fn lock_trees(
    conn: &mut PgConnection,
    tenant: TenantId,
    leaves: &[NewLeaf],
) -> Result<LockedTrees, StoreError> {
    Ok(LockedTrees::Read(
        lock_roots(conn, tenant, &tree_namespaces(leaves)).await?,
    ))
}

/// Files `leaves` into trees locked by [`lock_trees`] (or by the lock
/// statement that began the transaction): the rows, then every tree update
/// computed in memory, then the last rows with the new nodes, roots and
/// universes, written by one statement.
pub async fn file_locked(
    tx: &mut PgConnection,
    db: &Db,
    tenant: TenantId,
    leaves: &[NewLeaf],
    locked: LockedTrees,
    answers: bool,
) -> Result<Vec<InsertResult>, StoreError> {
    let (roots, to_read) = match locked {
        LockedTrees::Read(r) => (Some(r), Vec::new()),
        LockedTrees::Held(ns) => (None, ns),
    };
    let mut filed = file_rows(tx, tenant, leaves, &to_read).await?;
    let roots = roots.unwrap_or(std::mem::take(&mut filed.roots));
    let mut trees = TxTrees::new(tx, tenant, db.cache.clone(), roots);
    let touched = apply_tree_work(&mut trees, filed.work).await?;
    if answers {
        for ((r, leaf), answerable) in filed.out.iter_mut().zip(leaves).zip(filed.head_is_this) {
            if answerable {
                r.proofs = Some(leaf_proofs(&mut trees, leaf).await?);
            }
        }
    }
    let tree_rows = trees.into_rows();
    write_batch(
        tx,
        tenant,
        &filed.last.unwrap_or_default(),
        &tree_rows,
        &touched,
    )
    .await?;
    Ok(filed.out)
}

/// `leaf`'s proofs from the batch's trees.
async fn leaf_proofs(trees: &mut TxTrees<'_>, leaf: &NewLeaf) -> Result<LeafProofs, StoreError> {
    let ns = universe_namespace(&leaf.universe_id, leaf.proof_type);
    let mut t = trees.tree(&ns);
    let root = t.root().await.map_err(tree_err)?;
    let proof = t.proof(&leaf.leaf_key).await.map_err(tree_err)?.compress();
    let mut m = trees.tree(leaf.proof_type.multiverse_namespace());
    let multiverse_root = m.root().await.map_err(tree_err)?;
    let multiverse_proof = m
        .proof(&leaf.universe_id)
        .await
        .map_err(tree_err)?
        .compress();
    Ok(LeafProofs {
        root,
        proof,
        multiverse_root,
        multiverse_proof,
    })
}

/// A run of rows: the columns of one [`write_batch`].
#[derive(Default)]
struct RunCols<'a> {
    uids: Vec<&'a [u8]>,
    tys: Vec<i16>,
    keys: Vec<&'a [u8]>,
    versions: Vec<i32>,
    hashes: Vec<Vec<u8>>,
    asset_ids: Vec<&'a [u8]>,
    group_keys: Vec<Option<&'a [u8]>>,
    txids: Vec<Vec<u8>>,
    vouts: Vec<i32>,
    script_keys: Vec<&'a [u8]>,
    script_keys_x: Vec<&'a [u8]>,
    amounts: Vec<i64>,
    sums: Vec<i64>,
    node_hashes: Vec<Vec<u8>>,
    heights: Vec<i32>,
    block_hashes: Vec<&'a [u8]>,
    names: Vec<&'a str>,
    raws: Vec<&'a [u8]>,
    received: Vec<Option<i64>>,
    prevs: Vec<Option<&'a [u8]>>,
    completes: Vec<bool>,
    ev_kinds: Vec<&'static str>,
    ev_uids: Vec<&'a [u8]>,
    ev_tys: Vec<i16>,
    ev_keys: Vec<&'a [u8]>,
    ev_hashes: Vec<Vec<u8>>,
    /// A duplicate's proof bytes, written again if their row is missing:
    /// the leaf names them, so a push of them restores what was lost.
    dup_hashes: Vec<Vec<u8>>,
    dup_raws: Vec<&'a [u8]>,
}

impl<'a> RunCols<'a> {
    /// The written rows (duplicates write only their event), and an event
    /// for every row, in arrival order.
    fn of(run: &[PendingRow<'a>]) -> Self {
        let mut c = RunCols::default();
        for r in run {
            let l = r.leaf;
            c.ev_kinds.push(match r.outcome {
                InsertOutcome::New => "new_leaf",
                InsertOutcome::NewVersion => "new_version",
                InsertOutcome::Duplicate => "duplicate",
            });
            c.ev_uids.push(&l.universe_id);
            c.ev_tys.push(type_code(l.proof_type));
            c.ev_keys.push(&l.leaf_key);
            c.ev_hashes.push(r.proof_hash.to_vec());
            if r.outcome == InsertOutcome::Duplicate {
                c.dup_hashes.push(r.proof_hash.to_vec());
                c.dup_raws.push(&l.raw);
                continue;
            }
            c.uids.push(&l.universe_id);
            c.tys.push(type_code(l.proof_type));
            c.keys.push(&l.leaf_key);
            c.versions.push(r.version);
            c.hashes.push(r.proof_hash.to_vec());
            c.asset_ids.push(&l.asset_id);
            c.group_keys.push(l.group_key.as_ref().map(|g| &g[..]));
            c.txids.push(l.anchor.txid.to_byte_array().to_vec());
            c.vouts.push(l.anchor.vout as i32);
            c.script_keys.push(&l.script_key);
            c.script_keys_x.push(&l.script_key[1..]);
            c.amounts.push(i64_of(l.amount));
            c.sums.push(i64_of(l.leaf_sum));
            c.node_hashes.push(r.leaf_node.hash.to_vec());
            c.heights.push(l.block_height as i32);
            c.block_hashes.push(&l.block_hash);
            c.names.push(&l.asset_name);
            c.raws.push(&l.raw);
            c.received.push(l.received_at.map(Timestamp::micros));
            c.prevs.push(l.prev_leaf_key.as_ref().map(|k| &k[..]));
            c.completes.push(r.complete);
        }
        c
    }
}

/// A run of rows (proofs, leaves, heads, events) and the batch's new
/// nodes, changed roots and new universes, in one statement: the batch's
/// last run is written with its trees, earlier runs (rare) with none.
async fn write_batch(
    conn: &mut PgConnection,
    tenant: TenantId,
    c: &RunCols<'_>,
    rows: &TreeRows,
    universes: &[(NewLeaf, ProofType)],
) -> Result<(), StoreError> {
    if c.ev_kinds.is_empty()
        && rows.node_hashes.is_empty()
        && rows.root_namespaces.is_empty()
        && universes.is_empty()
    {
        return Ok(());
    }
    let u_ids: Vec<&[u8]> = universes.iter().map(|(l, _)| &l.universe_id[..]).collect();
    let u_tys: Vec<i16> = universes.iter().map(|(_, t)| type_code(*t)).collect();
    let u_assets: Vec<Option<&[u8]>> = universes
        .iter()
        .map(|(l, _)| l.group_key.is_none().then_some(&l.asset_id[..]))
        .collect();
    let u_groups: Vec<Option<&[u8]>> = universes
        .iter()
        .map(|(l, _)| l.group_key.as_ref().map(|g| &g[..]))
        .collect();
    let u_names: Vec<&str> = universes
        .iter()
        .map(|(l, _)| l.asset_name.as_str())
        .collect();
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
         d AS (
            INSERT INTO proofs (tenant_id, hash, raw)
            SELECT DISTINCT ON (h) $1, h, r FROM unnest($39::BYTEA[], $40::BYTEA[]) AS x(h, r)
            WHERE NOT EXISTS (SELECT 1 FROM i WHERE i.proof_hash = x.h)
            ON CONFLICT DO NOTHING
            RETURNING length(raw) AS n
         ),
         -- A restored proof was charged when it first came (its loss
         -- behind the server's back refunded nothing): the charge trigger
         -- adds it again at the statement's end, so it is taken off here.
         du AS (
            UPDATE tenant_usage SET bytes = bytes - (SELECT sum(n) FROM d),
                items = items - (SELECT count(*) FROM d)
            WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM d)
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
         ),
         e AS (
            INSERT INTO ingest_events (tenant_id, kind, universe_id, proof_type, leaf_key,
                proof_hash)
            SELECT $1, kind, u, t, k, ph
            FROM unnest($23::TEXT[], $24::BYTEA[], $25::INT2[], $26::BYTEA[], $27::BYTEA[])
                WITH ORDINALITY AS e(kind, u, t, k, ph, ord)
            ORDER BY ord
         ),
         n AS (
            INSERT INTO mssmt_nodes (tenant_id, hash, kind, data)
            SELECT $1, * FROM unnest($28::BYTEA[], $29::INT2[], $30::BYTEA[])
            ON CONFLICT DO NOTHING
         ),
         u AS (
            INSERT INTO universes (tenant_id, universe_id, proof_type, asset_id, group_key,
                asset_name)
            SELECT $1, * FROM unnest($34::BYTEA[], $35::INT2[], $36::BYTEA[], $37::BYTEA[],
                $38::TEXT[])
            ON CONFLICT DO NOTHING
         )
         UPDATE mssmt_roots r SET root_hash = x.h, root_sum = x.s, updated_at = now()
         FROM unnest($31::TEXT[], $32::BYTEA[], $33::INT8[]) AS x(ns, h, s)
         WHERE r.tenant_id = $1 AND r.namespace = x.ns",
    )
    .bind(tenant)
    .bind(&c.uids)
    .bind(&c.tys)
    .bind(&c.keys)
    .bind(&c.versions)
    .bind(&c.hashes)
    .bind(&c.asset_ids)
    .bind(&c.group_keys)
    .bind(&c.txids)
    .bind(&c.vouts)
    .bind(&c.script_keys)
    .bind(&c.script_keys_x)
    .bind(&c.amounts)
    .bind(&c.sums)
    .bind(&c.node_hashes)
    .bind(&c.heights)
    .bind(&c.block_hashes)
    .bind(&c.names)
    .bind(&c.raws)
    .bind(&c.received)
    .bind(&c.prevs)
    .bind(&c.completes)
    .bind(&c.ev_kinds)
    .bind(&c.ev_uids)
    .bind(&c.ev_tys)
    .bind(&c.ev_keys)
    .bind(&c.ev_hashes)
    .bind(&rows.node_hashes)
    .bind(&rows.node_kinds)
    .bind(&rows.node_data)
    .bind(&rows.root_namespaces)
    .bind(&rows.root_hashes)
    .bind(&rows.root_sums)
    .bind(&u_ids)
    .bind(&u_tys)
    .bind(&u_assets)
    .bind(&u_groups)
    .bind(&u_names)
    .bind(&c.dup_hashes)
    .bind(&c.dup_raws)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
/// by one statement. Returns the results, the tree work and which leaves
/// are their key's head once the batch is filed.
async fn file_rows<'a>(
    tx: &mut PgConnection,
    tenant: TenantId,
    leaves: &'a [NewLeaf],
    roots_to_read: &[String],
) -> Result<Filed<'a>, StoreError> {
    let (heads, complete_keys, waiting, roots) =
        load_batch(tx, tenant, leaves, roots_to_read).await?;
    let mut st = BatchState {
        known: load_older_versions(tx, tenant, leaves, &heads).await?,
        heads,
        complete_keys,
        waiting,
    };
    let mut out: Vec<InsertResult> = Vec::with_capacity(leaves.len());
    let mut work: Vec<TreeWork> = Vec::new();
    let mut run: Vec<PendingRow> = Vec::new();
    let mut run_keys: std::collections::HashSet<HeadKey> = Default::default();
    let mut proof_hashes: Vec<[u8; 32]> = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let ty = type_code(leaf.proof_type);
        let hk: HeadKey = (leaf.universe_id, ty, leaf.leaf_key);
        if !run_keys.insert(hk) {
            // A key twice in one statement would upsert its head twice.
            flush_run(tx, tenant, &mut run, &mut out, &mut work, &mut st, false).await?;
            run_keys.clear();
            run_keys.insert(hk);
        }
        let proof_hash = sha256(&[&leaf.raw]);
        proof_hashes.push(proof_hash);
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
    let last = flush_run(tx, tenant, &mut run, &mut out, &mut work, &mut st, true).await?;
    // Which leaves the batch's trees answer for: those whose key's head,
    // once the whole batch is filed, is the very proof given (not an older
    // version pushed again, nor one a later leaf of the batch replaced).
    let head_is_this = leaves
        .iter()
        .zip(&proof_hashes)
        .map(|(leaf, ph)| {
            let hk: HeadKey = (leaf.universe_id, type_code(leaf.proof_type), leaf.leaf_key);
            st.heads.get(&hk).is_some_and(|h| h.proof_hash == *ph)
        })
        .collect();
    Ok(Filed {
        out,
        work,
        head_is_this,
        roots,
        last,
    })
}

/// What [`file_rows`] decided and wrote.
struct Filed<'a> {
    out: Vec<InsertResult>,
    work: Vec<TreeWork>,
    /// Which leaves the batch's trees answer for.
    head_is_this: Vec<bool>,
    /// The roots it was asked to read.
    roots: std::collections::HashMap<String, Node>,
    /// The last run's rows, to be written with the trees.
    last: Option<RunCols<'a>>,
}

/// What [`load_batch`] reads: $1 tenant; $2, $3, $4 the batch's (universe,
/// proof type, leaf key); $5, $6 its (universe, previous output key); $7
/// the trees whose roots to read.
///
/// Every lookup is a LATERAL subquery with LIMIT (never pulled up
/// into a join), so each key is one index probe whatever the
/// statistics say. As plain joins, a table that grew since it was
/// last analyzed (every new tenant's) got a hash join over all the
/// tenant's heads per batch: the cost grew with the tenant.
#[doc(hidden)]
pub const BATCH_LOOKUP: &str =
    "SELECT 0 AS kind, k.u AS universe_id, k.t AS proof_type, k.lk AS leaf_key,
        h.complete, h.proof_hash, h.version, NULL::TEXT AS namespace, 0::INT8 AS root_sum
 FROM (SELECT DISTINCT * FROM unnest($2::BYTEA[], $3::INT2[], $4::BYTEA[])) AS k(u, t, lk)
 CROSS JOIN LATERAL (
     SELECT h.complete, l.proof_hash, l.version
     FROM universe_heads h JOIN universe_leaves l ON l.id = h.leaf_id
     WHERE h.tenant_id = $1 AND h.universe_id = k.u AND h.proof_type = k.t
       AND h.leaf_key = k.lk
     LIMIT 1) h
 UNION ALL
 SELECT 1, k.u, 0::INT2, k.lk, TRUE, NULL::BYTEA, 0, NULL::TEXT, 0::INT8
 FROM (SELECT DISTINCT * FROM unnest($5::BYTEA[], $6::BYTEA[])) AS k(u, lk)
 CROSS JOIN LATERAL (
     SELECT 1 FROM universe_heads h
     WHERE h.tenant_id = $1 AND h.universe_id = k.u AND h.leaf_key = k.lk AND h.complete
     LIMIT 1) h
 UNION ALL
 SELECT 2, u.u, 0::INT2, NULL::BYTEA, FALSE, NULL::BYTEA, 0, NULL::TEXT, 0::INT8
 FROM (SELECT DISTINCT * FROM unnest($2::BYTEA[])) AS u(u)
 CROSS JOIN LATERAL (
     SELECT 1 FROM universe_heads w
     WHERE w.tenant_id = $1 AND w.universe_id = u.u AND NOT w.complete
     LIMIT 1) w
 UNION ALL
 SELECT 3, r.root_hash, 0::INT2, NULL::BYTEA, FALSE, NULL::BYTEA, 0, n.ns, r.root_sum
 FROM unnest($7::TEXT[]) AS n(ns)
 CROSS JOIN LATERAL (
     SELECT r.root_hash, r.root_sum FROM mssmt_roots r
     WHERE r.tenant_id = $1 AND r.namespace = n.ns
     LIMIT 1) r";

/// What a batch's decisions start from, read with one statement: the heads
/// of its leaf keys, which of its previous outputs are complete heads,
/// which of its universes have leaves waiting for their ancestry, and the
/// roots of `roots_to_read`.
async fn load_batch(
    tx: &mut PgConnection,
    tenant: TenantId,
    leaves: &[NewLeaf],
    roots_to_read: &[String],
) -> Result<BatchLookup, StoreError> {
    let uids: Vec<&[u8]> = leaves.iter().map(|l| &l.universe_id[..]).collect();
    let tys: Vec<i16> = leaves.iter().map(|l| type_code(l.proof_type)).collect();
    let keys: Vec<&[u8]> = leaves.iter().map(|l| &l.leaf_key[..]).collect();
    let (prev_uids, prev_keys): (Vec<&[u8]>, Vec<&[u8]>) = leaves
        .iter()
        .filter_map(|l| {
            l.prev_leaf_key
                .as_ref()
                .map(|p| (&l.universe_id[..], &p[..]))
        })
        .unzip();
    /// kind 0: a head; 1: a complete previous output; 2: a universe with
    /// waiting leaves.
    #[derive(FromRow)]
    struct LookupRow {
        kind: i32,
        universe_id: [u8; 32],
        proof_type: i16,
        leaf_key: Option<[u8; 32]>,
        complete: bool,
        proof_hash: Option<[u8; 32]>,
        version: i32,
        namespace: Option<String>,
        root_sum: i64,
    }
    let rows: Vec<LookupRow> = sqlx::query_as(BATCH_LOOKUP)
        .bind(tenant)
        .bind(&uids)
        .bind(&tys)
        .bind(&keys)
        .bind(&prev_uids)
        .bind(&prev_keys)
        .bind(roots_to_read)
        .fetch_all(&mut *tx)
        .await?;
    let mut roots = std::collections::HashMap::new();
    let mut heads = std::collections::HashMap::new();
    let mut complete = std::collections::HashSet::new();
    // Every universe of the batch: known to wait or not, without a query
    // per universe later.
    let mut waiting: std::collections::HashMap<[u8; 32], bool> =
        leaves.iter().map(|l| (l.universe_id, false)).collect();
    for r in rows {
        match (r.kind, r.leaf_key, r.proof_hash) {
            (0, Some(lk), Some(proof_hash)) => {
                heads.insert(
                    (r.universe_id, r.proof_type, lk),
                    Head {
                        complete: r.complete,
                        proof_hash,
                        version: r.version,
                    },
                );
            }
            (1, Some(lk), _) => {
                complete.insert((r.universe_id, lk));
            }
            (2, _, _) => {
                waiting.insert(r.universe_id, true);
            }
            (3, _, _) => {
                let ns = r
                    .namespace
                    .ok_or_else(|| StoreError::Corrupt("batch lookup root row".into()))?;
                roots.insert(
                    ns,
                    Node {
                        hash: r.universe_id,
                        sum: u64_of(r.root_sum),
                    },
                );
            }
            _ => return Err(StoreError::Corrupt("batch lookup row".into())),
        }
    }
    Ok((heads, complete, waiting, roots))
}

type BatchLookup = (
    std::collections::HashMap<HeadKey, Head>,
    std::collections::HashSet<([u8; 32], [u8; 32])>,
    std::collections::HashMap<[u8; 32], bool>,
    std::collections::HashMap<String, Node>,
);

/// The stored versions a batch's proofs could repeat: every head, plus the
/// older versions of keys with several versions whose head differs from an
/// incoming proof (usually none, and then no query is made).
async fn load_older_versions(
    tx: &mut PgConnection,
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
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        out.insert(
            ((r.universe_id, r.proof_type, r.leaf_key), r.proof_hash),
            r.version,
        );
    }
    Ok(out)
}

/// Writes one run (distinct leaf keys) with one statement, then completes
/// orphans that the run's new complete leaves were waiting for.
async fn flush_run<'a>(
    tx: &mut PgConnection,
    tenant: TenantId,
    run: &mut Vec<PendingRow<'a>>,
    out: &mut Vec<InsertResult>,
    work: &mut Vec<TreeWork>,
    st: &mut BatchState,
    last: bool,
) -> Result<Option<RunCols<'a>>, StoreError> {
    if run.is_empty() {
        return Ok(None);
    }
    // A new complete leaf in a universe with waiting leaves may complete
    // some: they are found by a query after this run's rows are written.
    // Otherwise the batch's last run waits to be written with its trees.
    let completes_others = run.iter().any(|r| {
        r.outcome == InsertOutcome::New
            && r.complete
            && st.waiting.get(&r.leaf.universe_id).copied().unwrap_or(true)
    });
    let cols = RunCols::of(run);
    let deferred = if last && !completes_others {
        Some(cols)
    } else {
        write_batch(tx, tenant, &cols, &TreeRows::default(), &[]).await?;
        None
    };

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
                // Every universe of the batch was looked up by load_batch.
                if st.waiting.get(&uid).copied().unwrap_or(true) {
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
            proofs: None,
        });
    }
    Ok(deferred)
}

/// Leaf updates for one universe tree, applied once per transaction.
struct TreeWork {
    universe_id: [u8; 32],
    proof_type: ProofType,
    leaf: NewLeaf,
    updates: Vec<LeafUpdate>,
}

/// Applies the batch's tree work in memory: every universe tree once,
/// then each multiverse tree once. Returns the universes touched (their
/// rows are ensured with the nodes).
async fn apply_tree_work(
    trees: &mut TxTrees<'_>,
    work: Vec<TreeWork>,
) -> Result<Vec<(NewLeaf, ProofType)>, StoreError> {
    // Group by tree, keeping first-seen order of trees and write order of leaves.
    let mut grouped: Vec<TreeWork> = Vec::new();
    for w in work {
        match grouped
            .iter_mut()
            .find(|t| t.universe_id == w.universe_id && t.proof_type == w.proof_type)
        {
            Some(t) => t.updates.extend(w.updates),
            None => grouped.push(w),
        }
    }
    let mut mv: Vec<(ProofType, LeafUpdate)> = Vec::new();
    let mut touched = Vec::with_capacity(grouped.len());
    for t in grouped {
        let ns = universe_namespace(&t.universe_id, t.proof_type);
        let root = trees.tree(&ns).apply(t.updates).await.map_err(tree_err)?;
        let (value, sum) = multiverse_leaf(t.proof_type, &root);
        mv.push((t.proof_type, LeafUpdate::new(t.universe_id, &value, sum)));
        touched.push((t.leaf, t.proof_type));
    }
    for ty in [ProofType::Issuance, ProofType::Transfer] {
        let ups: Vec<LeafUpdate> = mv
            .iter()
            .filter(|(t, _)| *t == ty)
            .map(|(_, u)| *u)
            .collect();
        if !ups.is_empty() {
            trees
                .tree(ty.multiverse_namespace())
                .apply(ups)
                .await
                .map_err(tree_err)?;
        }
    }
    Ok(touched)
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

/// A leaf's head with its proofs, from one statement (the leaf and both
/// roots in one snapshot) and the node cache: what QueryProof answers.
pub async fn leaf_answer(
    db: &Db,
    tenant: TenantId,
    uid: &[u8; 32],
    ty: ProofType,
    key: &[u8; 32],
) -> Result<Option<(StoredLeaf, LeafProofs)>, StoreError> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        leaf: LeafRow,
        u_hash: Option<[u8; 32]>,
        u_sum: Option<i64>,
        m_hash: Option<[u8; 32]>,
        m_sum: Option<i64>,
    }
    let q = format!(
        "SELECT {LEAF_COLUMNS}, r.root_hash AS u_hash, r.root_sum AS u_sum,
                m.root_hash AS m_hash, m.root_sum AS m_sum
         FROM universe_heads h
         JOIN universe_leaves l ON l.id = h.leaf_id
         JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
         LEFT JOIN mssmt_roots r ON r.tenant_id = $1 AND r.namespace = $5
         LEFT JOIN mssmt_roots m ON m.tenant_id = $1 AND m.namespace = $6
         WHERE h.tenant_id = $1 AND h.universe_id = $2 AND h.proof_type = $3 AND h.leaf_key = $4"
    );
    let Some(row) = sqlx::query_as::<_, Row>(AssertSqlSafe(q))
        .bind(tenant)
        .bind(&uid[..])
        .bind(type_code(ty))
        .bind(&key[..])
        .bind(universe_namespace(uid, ty))
        .bind(ty.multiverse_namespace())
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    let node = |h: Option<[u8; 32]>, s: Option<i64>| match (h, s) {
        (Some(hash), Some(sum)) => Node {
            hash,
            sum: u64_of(sum),
        },
        _ => empty_root(),
    };
    let root = node(row.u_hash, row.u_sum);
    let multiverse_root = node(row.m_hash, row.m_sum);
    let reader = |r| RootedReader::new(db.pool.clone(), tenant, db.cache.clone(), r);
    let proof = Tree::new(reader(root))
        .proof(key)
        .await
        .map_err(tree_err)?
        .compress();
    let multiverse_proof = Tree::new(reader(multiverse_root))
        .proof(uid)
        .await
        .map_err(tree_err)?
        .compress();
    Ok(Some((
        StoredLeaf::try_from(row.leaf)?,
        LeafProofs {
            root,
            proof,
            multiverse_root,
            multiverse_proof,
        },
    )))
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
