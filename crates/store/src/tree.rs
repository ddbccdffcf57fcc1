//! The PostgreSQL `NodeStore`: tree updates run inside the caller's
//! transaction, so they commit or roll back with the leaf rows they belong to.

use crate::db::StoreError;
use crate::tenants::TenantId;
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tapvault_mssmt::{Hash, Node, NodeStore, StoredNode};

/// Process-wide cache of immutable, content-addressed nodes. A node read or
/// written once never changes, so serving it from memory is always correct
/// (even if the transaction that wrote it rolled back: the hash still names
/// the same content, and a committed parent implies a committed child).
#[derive(Clone)]
pub struct NodeCache {
    inner: Arc<Mutex<Generations>>,
    cap: usize,
}

/// Two generations: when the young one fills, it becomes the old one and
/// the oldest is dropped; a node read from the old generation moves back to
/// the young. Every batch supersedes the nodes along its paths, so the cache
/// fills with nodes no tree points at any more; dropping everything at the
/// cap (as before) also dropped every tree's hot upper levels, and the next
/// batches read them back from PostgreSQL one by one.
#[derive(Default)]
struct Generations {
    young: HashMap<(TenantId, Hash), StoredNode>,
    old: HashMap<(TenantId, Hash), StoredNode>,
}

impl NodeCache {
    /// At most `cap` nodes in all (half in each generation).
    pub fn new(cap: usize) -> Self {
        NodeCache {
            inner: Arc::new(Mutex::new(Generations::default())),
            cap: (cap / 2).max(1),
        }
    }
    /// Forgets everything (after a failover: the new database may lack
    /// nodes the old one had, if replication was asynchronous).
    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.young.clear();
            g.old.clear();
        }
    }
    fn get(&self, tenant: TenantId, h: &Hash) -> Option<StoredNode> {
        let mut g = self.inner.lock().ok()?;
        if let Some(n) = g.young.get(&(tenant, *h)) {
            return Some(n.clone());
        }
        let n = g.old.remove(&(tenant, *h))?;
        Self::insert(&mut g, self.cap, (tenant, *h), n.clone());
        Some(n)
    }
    /// Drops nodes no tree points at any more, so the cache holds the live
    /// trees rather than their history.
    fn forget(&self, tenant: TenantId, hashes: &[Hash]) {
        if let Ok(mut g) = self.inner.lock() {
            for h in hashes {
                let k = (tenant, *h);
                if g.young.remove(&k).is_none() {
                    g.old.remove(&k);
                }
            }
        }
    }
    fn put(&self, tenant: TenantId, h: Hash, n: StoredNode) {
        if let Ok(mut g) = self.inner.lock() {
            Self::insert(&mut g, self.cap, (tenant, h), n);
        }
    }
    fn insert(g: &mut Generations, cap: usize, k: (TenantId, Hash), n: StoredNode) {
        if g.young.len() >= cap {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(k, n);
    }
}

fn to_i64(v: u64) -> i64 {
    v as i64
}
fn to_u64(v: i64) -> u64 {
    v as u64
}

fn encode_node(n: &StoredNode) -> (i16, Vec<u8>) {
    match n {
        StoredNode::Branch { left, right } => {
            let mut d = Vec::with_capacity(80);
            d.extend_from_slice(&left.hash);
            d.extend_from_slice(&left.sum.to_be_bytes());
            d.extend_from_slice(&right.hash);
            d.extend_from_slice(&right.sum.to_be_bytes());
            (1, d)
        }
        StoredNode::Leaf { key, leaf } => {
            let mut d = Vec::with_capacity(72);
            d.extend_from_slice(key);
            d.extend_from_slice(&leaf.hash);
            d.extend_from_slice(&leaf.sum.to_be_bytes());
            (2, d)
        }
    }
}

fn decode_node(kind: i16, d: &[u8]) -> Result<StoredNode, StoreError> {
    let node = |b: &[u8]| -> Node {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[..32]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[32..40]);
        Node {
            hash,
            sum: u64::from_be_bytes(s),
        }
    };
    match (kind, d.len()) {
        (1, 80) => Ok(StoredNode::Branch {
            left: node(&d[..40]),
            right: node(&d[40..]),
        }),
        (2, 72) => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&d[..32]);
            Ok(StoredNode::Leaf {
                key,
                leaf: node(&d[32..]),
            })
        }
        (k, n) => Err(StoreError::Corrupt(format!(
            "mssmt node kind {k} with {n} data bytes"
        ))),
    }
}

/// Creates a tree's root row if absent, else locks it with a no-op update
/// (held until the transaction ends), and reads it: one round trip.
pub async fn lock_root(
    conn: &mut PgConnection,
    tenant: TenantId,
    namespace: &str,
) -> Result<(Vec<u8>, i64), StoreError> {
    Ok(sqlx::query_as(
        "INSERT INTO mssmt_roots (tenant_id, namespace, root_hash, root_sum)
         VALUES ($1, $2, $3, 0)
         ON CONFLICT (tenant_id, namespace) DO UPDATE SET root_sum = mssmt_roots.root_sum
         RETURNING root_hash, root_sum",
    )
    .bind(tenant)
    .bind(namespace)
    .bind(&tapvault_mssmt::empty_root().hash[..])
    .fetch_one(&mut *conn)
    .await?)
}

/// A node by hash, from the cache or else the database.
async fn fetch_node(
    conn: &mut PgConnection,
    tenant: TenantId,
    cache: &NodeCache,
    hash: &Hash,
) -> Result<Option<StoredNode>, StoreError> {
    if let Some(n) = cache.get(tenant, hash) {
        return Ok(Some(n));
    }
    let row: Option<(i16, Vec<u8>)> =
        sqlx::query_as("SELECT kind, data FROM mssmt_nodes WHERE tenant_id = $1 AND hash = $2")
            .bind(tenant)
            .bind(&hash[..])
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((k, d)) => {
            let n = decode_node(k, &d)?;
            cache.put(tenant, *hash, n.clone());
            Ok(Some(n))
        }
        None => Ok(None),
    }
}

/// One tree (tenant, namespace) over a connection, usually a transaction.
/// With `for_update`, loading the root locks the tree's root row until the
/// transaction ends, so concurrent writers of the same tree serialize while
/// other trees proceed.
pub struct PgTree<'c> {
    conn: &'c mut PgConnection,
    tenant: TenantId,
    namespace: String,
    cache: NodeCache,
    for_update: bool,
    /// Node rows handed to the database by this tree (for metrics/bench).
    pub nodes_written: u64,
}

impl<'c> PgTree<'c> {
    /// A writer: call within a transaction.
    pub fn writer(
        conn: &'c mut PgConnection,
        tenant: TenantId,
        namespace: impl Into<String>,
        cache: NodeCache,
    ) -> Self {
        PgTree {
            conn,
            tenant,
            namespace: namespace.into(),
            cache,
            for_update: true,
            nodes_written: 0,
        }
    }
    /// A reader: sees the last committed root, takes no locks.
    pub fn reader(
        conn: &'c mut PgConnection,
        tenant: TenantId,
        namespace: impl Into<String>,
        cache: NodeCache,
    ) -> Self {
        PgTree {
            for_update: false,
            ..Self::writer(conn, tenant, namespace, cache)
        }
    }
}

#[async_trait::async_trait]
impl NodeStore for PgTree<'_> {
    type Error = StoreError;

    async fn load_root(&mut self) -> Result<Option<Node>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = if self.for_update {
            Some(lock_root(self.conn, self.tenant, &self.namespace).await?)
        } else {
            sqlx::query_as(
                "SELECT root_hash, root_sum FROM mssmt_roots
                 WHERE tenant_id = $1 AND namespace = $2",
            )
            .bind(self.tenant)
            .bind(&self.namespace)
            .fetch_optional(&mut *self.conn)
            .await?
        };
        row.map(|(h, s)| {
            Ok(Node {
                hash: h
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("root hash is not 32 bytes".into()))?,
                sum: to_u64(s),
            })
        })
        .transpose()
    }

    async fn load_node(&mut self, hash: &Hash) -> Result<Option<StoredNode>, StoreError> {
        fetch_node(self.conn, self.tenant, &self.cache, hash).await
    }

    async fn store_nodes(&mut self, nodes: Vec<(Hash, StoredNode)>) -> Result<(), StoreError> {
        let mut hashes = Vec::with_capacity(nodes.len());
        let mut kinds = Vec::with_capacity(nodes.len());
        let mut datas = Vec::with_capacity(nodes.len());
        let mut seen = std::collections::HashSet::with_capacity(nodes.len());
        for (h, n) in &nodes {
            if !seen.insert(*h) {
                continue;
            }
            let (k, d) = encode_node(n);
            hashes.push(h.to_vec());
            kinds.push(k);
            datas.push(d);
        }
        self.nodes_written += hashes.len() as u64;
        sqlx::query(
            "INSERT INTO mssmt_nodes (tenant_id, hash, kind, data)
             SELECT $1, * FROM UNNEST($2::bytea[], $3::smallint[], $4::bytea[])
             ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant)
        .bind(&hashes)
        .bind(&kinds)
        .bind(&datas)
        .execute(&mut *self.conn)
        .await?;
        for (h, n) in nodes {
            self.cache.put(self.tenant, h, n);
        }
        Ok(())
    }

    async fn store_root(&mut self, root: Node) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mssmt_roots (tenant_id, namespace, root_hash, root_sum, updated_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (tenant_id, namespace)
             DO UPDATE SET root_hash = EXCLUDED.root_hash, root_sum = EXCLUDED.root_sum, updated_at = now()",
        )
        .bind(self.tenant)
        .bind(&self.namespace)
        .bind(&root.hash[..])
        .bind(to_i64(root.sum))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}

/// Locks (creating if needed) the root rows of `namespaces`, in the order
/// given, with one statement, and reads them. Every writer locks in one
/// global order (see `universe::insert_leaves_tx`), so writers never
/// deadlock. Namespaces must be distinct.
pub async fn lock_roots(
    conn: &mut PgConnection,
    tenant: TenantId,
    namespaces: &[String],
) -> Result<HashMap<String, tapvault_mssmt::Node>, StoreError> {
    let rows: Vec<(String, [u8; 32], i64)> = sqlx::query_as(
        "INSERT INTO mssmt_roots (tenant_id, namespace, root_hash, root_sum)
         SELECT $1, ns, $3, 0 FROM unnest($2::TEXT[]) WITH ORDINALITY AS t(ns, ord) ORDER BY ord
         ON CONFLICT (tenant_id, namespace) DO UPDATE SET root_sum = mssmt_roots.root_sum
         RETURNING namespace, root_hash, root_sum",
    )
    .bind(tenant)
    .bind(namespaces)
    .bind(&tapvault_mssmt::empty_root().hash[..])
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(ns, hash, sum)| {
            (
                ns,
                Node {
                    hash,
                    sum: to_u64(sum),
                },
            )
        })
        .collect())
}

/// The trees one transaction writes, after [`lock_roots`]: roots come from
/// the lock, nodes from the cache (or the transaction on a miss), and what
/// the updates produce is kept here, to be written by one statement at the
/// end ([`TxTrees::into_rows`]) instead of two per tree.
pub struct TxTrees<'c> {
    conn: &'c mut PgConnection,
    tenant: TenantId,
    cache: NodeCache,
    roots: HashMap<String, Node>,
    changed: Vec<String>,
    new_nodes: HashMap<Hash, StoredNode>,
    /// Nodes the updates replaced, dropped from the cache at the end.
    superseded: Vec<Hash>,
}

/// What a [`TxTrees`] wrote, as the columns of its final statement.
#[derive(Default)]
pub struct TreeRows {
    pub node_hashes: Vec<Vec<u8>>,
    pub node_kinds: Vec<i16>,
    pub node_data: Vec<Vec<u8>>,
    pub root_namespaces: Vec<String>,
    pub root_hashes: Vec<Vec<u8>>,
    pub root_sums: Vec<i64>,
}

impl<'c> TxTrees<'c> {
    pub fn new(
        conn: &'c mut PgConnection,
        tenant: TenantId,
        cache: NodeCache,
        roots: HashMap<String, Node>,
    ) -> Self {
        TxTrees {
            conn,
            tenant,
            cache,
            roots,
            changed: Vec::new(),
            new_nodes: HashMap::new(),
            superseded: Vec::new(),
        }
    }

    /// One of the locked trees.
    pub fn tree<'t>(&'t mut self, namespace: &str) -> tapvault_mssmt::Tree<TxTree<'t, 'c>> {
        tapvault_mssmt::Tree::new(TxTree {
            trees: self,
            namespace: namespace.to_string(),
        })
    }

    /// The connection, for statements between tree updates.
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
    }

    /// New nodes and changed roots, as the columns of one write. The new
    /// nodes join the cache (content-addressed: correct even if the
    /// transaction then rolls back, see [`NodeCache`]).
    pub fn into_rows(self) -> TreeRows {
        let mut r = TreeRows::default();
        // Before the new nodes join: a position rewritten with the same
        // node keeps it.
        self.cache.forget(self.tenant, &self.superseded);
        for (h, n) in self.new_nodes {
            let (k, d) = encode_node(&n);
            r.node_hashes.push(h.to_vec());
            r.node_kinds.push(k);
            r.node_data.push(d);
            self.cache.put(self.tenant, h, n);
        }
        for ns in self.changed {
            if let Some(root) = self.roots.get(&ns) {
                r.root_hashes.push(root.hash.to_vec());
                r.root_sums.push(to_i64(root.sum));
                r.root_namespaces.push(ns);
            }
        }
        r
    }
}

/// One tree of a [`TxTrees`].
pub struct TxTree<'t, 'c> {
    trees: &'t mut TxTrees<'c>,
    namespace: String,
}

#[async_trait::async_trait]
impl NodeStore for TxTree<'_, '_> {
    type Error = StoreError;

    async fn load_root(&mut self) -> Result<Option<Node>, StoreError> {
        match self.trees.roots.get(&self.namespace) {
            Some(r) => Ok(Some(*r)),
            None => Err(StoreError::Tree(format!(
                "tree {} was not locked by this transaction",
                self.namespace
            ))),
        }
    }

    async fn load_node(&mut self, hash: &Hash) -> Result<Option<StoredNode>, StoreError> {
        if let Some(n) = self.trees.new_nodes.get(hash) {
            return Ok(Some(n.clone()));
        }
        fetch_node(self.trees.conn, self.trees.tenant, &self.trees.cache, hash).await
    }

    async fn store_nodes(&mut self, nodes: Vec<(Hash, StoredNode)>) -> Result<(), StoreError> {
        self.trees.new_nodes.extend(nodes);
        Ok(())
    }

    fn superseded(&mut self, hash: &Hash) {
        self.trees.superseded.push(*hash);
    }

    async fn store_root(&mut self, root: Node) -> Result<(), StoreError> {
        if !self.trees.changed.contains(&self.namespace) {
            self.trees.changed.push(self.namespace.clone());
        }
        self.trees.roots.insert(self.namespace.clone(), root);
        Ok(())
    }
}

/// A read-only view of one tree at a root read elsewhere (in the same
/// statement as the rows it proves): nodes come from the cache, and a miss
/// costs one query on a pooled connection. Nodes are immutable and written
/// with the root that first names them, so any committed root's nodes are
/// there to read, whenever they are read.
pub struct RootedReader {
    pool: sqlx::PgPool,
    tenant: TenantId,
    cache: NodeCache,
    root: Node,
}

impl RootedReader {
    pub fn new(pool: sqlx::PgPool, tenant: TenantId, cache: NodeCache, root: Node) -> Self {
        RootedReader {
            pool,
            tenant,
            cache,
            root,
        }
    }
}

#[async_trait::async_trait]
impl NodeStore for RootedReader {
    type Error = StoreError;

    async fn load_root(&mut self) -> Result<Option<Node>, StoreError> {
        Ok(Some(self.root))
    }

    async fn load_node(&mut self, hash: &Hash) -> Result<Option<StoredNode>, StoreError> {
        if let Some(n) = self.cache.get(self.tenant, hash) {
            return Ok(Some(n));
        }
        let mut conn = self.pool.acquire().await?;
        fetch_node(&mut conn, self.tenant, &self.cache, hash).await
    }

    async fn store_nodes(&mut self, _: Vec<(Hash, StoredNode)>) -> Result<(), StoreError> {
        Err(StoreError::Tree("a rooted reader does not write".into()))
    }

    async fn store_root(&mut self, _: Node) -> Result<(), StoreError> {
        Err(StoreError::Tree("a rooted reader does not write".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> (Hash, StoredNode) {
        let leaf = Node::leaf(&[i], 1);
        ([i; 32], StoredNode::Leaf { key: [i; 32], leaf })
    }

    /// A node read since the last rollover outlives the next one; what
    /// nobody read goes; the cache never holds more than its cap.
    #[test]
    fn hot_nodes_survive_the_cap() {
        let t = TenantId(1);
        let c = NodeCache::new(4);
        for i in 0..3 {
            let (h, n) = node(i);
            c.put(t, h, n);
        }
        // 0 and 1 rolled over to the old generation when 2 came in.
        assert!(
            c.get(t, &node(0).0).is_some(),
            "read back from the old generation"
        );
        for i in 3..5 {
            let (h, n) = node(i);
            c.put(t, h, n);
        }
        assert!(c.get(t, &node(0).0).is_some(), "the hot node is kept");
        assert!(c.get(t, &node(1).0).is_none(), "the cold node is gone");
        let g = c.inner.lock().unwrap();
        assert!(g.young.len() + g.old.len() <= 4);
    }
}
