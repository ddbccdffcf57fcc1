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
    inner: Arc<Mutex<HashMap<(TenantId, Hash), StoredNode>>>,
    cap: usize,
}

impl NodeCache {
    pub fn new(cap: usize) -> Self {
        NodeCache {
            inner: Arc::new(Mutex::new(HashMap::new())),
            cap,
        }
    }
    /// Forgets everything (after a failover: the new database may lack
    /// nodes the old one had, if replication was asynchronous).
    pub fn clear(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.clear();
        }
    }
    fn get(&self, tenant: TenantId, h: &Hash) -> Option<StoredNode> {
        self.inner.lock().ok()?.get(&(tenant, *h)).cloned()
    }
    fn put(&self, tenant: TenantId, h: Hash, n: StoredNode) {
        if let Ok(mut m) = self.inner.lock() {
            if m.len() >= self.cap {
                // Crude but bounded: start over rather than grow without limit.
                m.clear();
            }
            m.insert((tenant, h), n);
        }
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
    /// A writer whose root row the caller already locked in this
    /// transaction ([`lock_root`]), e.g. to lock many trees in a fixed order.
    pub fn locked_writer(
        conn: &'c mut PgConnection,
        tenant: TenantId,
        namespace: impl Into<String>,
        cache: NodeCache,
    ) -> Self {
        // Reading the root needs no lock then; writing works the same.
        Self::reader(conn, tenant, namespace, cache)
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
        if let Some(n) = self.cache.get(self.tenant, hash) {
            return Ok(Some(n));
        }
        let row: Option<(i16, Vec<u8>)> =
            sqlx::query_as("SELECT kind, data FROM mssmt_nodes WHERE tenant_id = $1 AND hash = $2")
                .bind(self.tenant)
                .bind(&hash[..])
                .fetch_optional(&mut *self.conn)
                .await?;
        match row {
            Some((k, d)) => {
                let n = decode_node(k, &d)?;
                self.cache.put(self.tenant, *hash, n.clone());
                Ok(Some(n))
            }
            None => Ok(None),
        }
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
