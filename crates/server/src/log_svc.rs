//! The receipt log's server side: the Ed25519 log key in the data dir, one
//! in-memory RFC 9162 tree per tenant (rebuilt from `log_entries` on first
//! use, advanced when a head is signed), the signer that issues heads at
//! least every interval while a log grows, and `tapvault.v1.Log`.

use crate::errors::{store_err, ApiError};
use crate::proto::tapvault_v1 as pb;
use anyhow::{Context, Result};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ed25519_dalek::{Signer, SigningKey};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tapvault_api::receipts::entry_pb;
use tapvault_codec::log::{Kind, TreeHead, ENTRY_LEN};
use tapvault_store::log as sl;
use tapvault_store::{Db, StoreError, TenantId, Timestamp};
use tonic::{Request, Response, Status};

/// The file holding the log key's 32-byte Ed25519 seed.
pub const LOG_KEY_FILE: &str = "log-ed25519.key";

/// Most entries or receipts per call.
pub const MAX_PER_CALL: usize = 10_000;

/// Loads the log key from `dir`, creating it (mode 0600) on first start.
pub fn load_or_create_key(dir: &Path) -> Result<SigningKey> {
    let path = dir.join(LOG_KEY_FILE);
    if !path.exists() {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        tapvault_api::tls::write_private(&path, hex::encode(seed).as_bytes())?;
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} is not a hex Ed25519 seed of 32 bytes", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

type Tree = MemoryBackedTree<Sha256, [u8; ENTRY_LEN]>;

struct TenantLog {
    tree: Tree,
    used: std::time::Instant,
}

/// A tenant's in-memory tree is dropped after this long unused (it is
/// rebuilt from `log_entries` on next use): memory follows the active
/// tenants, not every tenant ever served.
const IDLE_TREE: std::time::Duration = std::time::Duration::from_secs(600);

/// Everything the log needs at run time; shared by the service and the
/// signer task.
pub struct LogState {
    db: Db,
    key: SigningKey,
    public: [u8; 32],
    tenants: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<TenantLog>>>>,
    /// On a read-only server heads are only read: the primary's, whatever
    /// its key (clients check the key they pinned).
    read_only: bool,
}

fn err(e: StoreError) -> Status {
    store_err(e)
}

impl LogState {
    pub fn new(db: Db, key: SigningKey, read_only: bool) -> Arc<Self> {
        let public = key.verifying_key().to_bytes();
        Arc::new(LogState {
            db,
            key,
            public,
            tenants: Mutex::new(HashMap::new()),
            read_only,
        })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    fn tenant_log(&self, t: TenantId) -> Arc<tokio::sync::Mutex<TenantLog>> {
        let mut m = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(t)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(TenantLog {
                    tree: Tree::new(),
                    used: std::time::Instant::now(),
                }))
            })
            .clone()
    }

    /// Appends committed entries past the tree's end, up to `upto`.
    async fn advance(&self, t: TenantId, log: &mut TenantLog, upto: u64) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        while log.tree.len() < upto {
            let from = log.tree.len();
            let page = sl::entries(&mut conn, t, from, (upto - from).min(50_000)).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                if e.index != log.tree.len() {
                    return Err(StoreError::Corrupt(format!(
                        "log entry {} where {} was expected (a gap in the log)",
                        e.index,
                        log.tree.len()
                    )));
                }
                log.tree.push(e.encode());
            }
        }
        Ok(())
    }

    /// Signs a head over everything committed now, unless the newest head
    /// already covers it; returns the newest head.
    pub async fn sign(&self, t: TenantId) -> Result<sl::StoredHead, StoreError> {
        let arc = self.tenant_log(t);
        let mut log = arc.lock().await;
        log.used = std::time::Instant::now();
        let mut conn = self.db.pool.acquire().await?;
        let size = sl::size(&mut conn, t).await?;
        let newest = sl::newest_head(&mut conn, t, Some(&self.public)).await?;
        drop(conn);
        if let Some(h) = &newest {
            if h.tree_size as u64 >= size {
                return Ok(h.clone());
            }
        }
        self.advance(t, &mut log, size).await?;
        let name = tapvault_store::tenants::tenant_name(&self.db, t)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("tenant {t} has a log but no name")))?;
        let root = log.tree.root();
        let head = TreeHead {
            tenant: name,
            tree_size: log.tree.len(),
            root_hash: (*root.as_bytes()).into(),
            timestamp: Timestamp::now().micros(),
        };
        let sig = self.key.sign(&head.message());
        let stored = sl::StoredHead {
            tree_size: head.tree_size as i64,
            root_hash: head.root_hash,
            signed_at: Timestamp::from_micros(head.timestamp),
            public_key: self.public,
            signature: sig.to_bytes().to_vec(),
        };
        sl::record_head(&self.db, t, &stored).await?;
        Ok(stored)
    }

    /// Drops the trees of tenants idle for [`IDLE_TREE`] (a tree in use,
    /// locked, is kept).
    fn evict_idle(&self) {
        let mut m = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, t| match t.try_lock() {
            Ok(l) => l.used.elapsed() < IDLE_TREE,
            Err(_) => true,
        });
    }

    /// One round of the signer: a head for every log that grew.
    pub async fn sign_pending(&self) -> Result<usize, StoreError> {
        self.evict_idle();
        let behind = sl::behind(&self.db, &self.public).await?;
        let n = behind.len();
        for (t, _, _) in behind {
            self.sign(t).await?;
        }
        Ok(n)
    }

    async fn newest(&self, t: TenantId) -> Result<Option<sl::StoredHead>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        let key = (!self.read_only).then_some(&self.public);
        sl::newest_head(&mut conn, t, key).await
    }

    async fn head_pb(
        &self,
        t: TenantId,
        h: &sl::StoredHead,
    ) -> Result<pb::SignedTreeHead, StoreError> {
        let name = tapvault_store::tenants::tenant_name(&self.db, t)
            .await?
            .unwrap_or_default();
        Ok(pb::SignedTreeHead {
            tenant: name,
            tree_size: h.tree_size as u64,
            root_hash: h.root_hash.to_vec(),
            timestamp: h.signed_at.micros(),
            public_key: h.public_key.to_vec(),
            signature: h.signature.clone(),
        })
    }

    /// Runs `f` on the tree of exactly `size` entries (the cached one when
    /// it has that size, else a rebuilt prefix).
    async fn with_tree<R>(
        &self,
        t: TenantId,
        size: u64,
        f: impl FnOnce(&Tree) -> R,
    ) -> Result<R, StoreError> {
        let arc = self.tenant_log(t);
        let mut log = arc.lock().await;
        log.used = std::time::Instant::now();
        if log.tree.len() < size {
            self.advance(t, &mut log, size).await?;
        }
        if log.tree.len() < size {
            return Err(StoreError::Corrupt(format!(
                "the log has {} entries but a head names {size}",
                log.tree.len()
            )));
        }
        if log.tree.len() == size {
            return Ok(f(&log.tree));
        }
        let mut prefix = Tree::new();
        for e in &log.tree.items()[..size as usize] {
            prefix.push(*e);
        }
        Ok(f(&prefix))
    }

    /// Receipts of many items, in their order: one query for the entries,
    /// one per kind for what is still stored, one tree lock for the proofs.
    async fn receipts(
        &self,
        t: TenantId,
        items: &[(Kind, [u8; 32])],
        head: Option<&(sl::StoredHead, pb::SignedTreeHead)>,
    ) -> Result<Vec<pb::Receipt>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        let entries = sl::first_entries(&mut conn, t, items).await?;
        let mut stored = std::collections::HashSet::new();
        for kind in [
            Kind::Proof,
            Kind::WalletBackup,
            Kind::Address,
            Kind::Tapscript,
        ] {
            let hs: Vec<[u8; 32]> = items
                .iter()
                .filter(|(k, h)| *k == kind && entries.contains_key(&(*k, *h)))
                .map(|(_, h)| *h)
                .collect();
            if !hs.is_empty() {
                for h in sl::stored_many(&mut conn, t, kind, &hs).await? {
                    stored.insert((kind, h));
                }
            }
        }
        drop(conn);
        let covered: Vec<u64> = match head {
            Some((sh, _)) => items
                .iter()
                .filter(|i| stored.contains(*i))
                .filter_map(|i| entries.get(i).map(|e| e.index))
                .filter(|ix| *ix < sh.tree_size as u64)
                .collect(),
            None => Vec::new(),
        };
        let mut proofs: HashMap<u64, Vec<u8>> = HashMap::new();
        if let (Some((sh, _)), false) = (head, covered.is_empty()) {
            proofs = self
                .with_tree(t, sh.tree_size as u64, |tree| {
                    covered
                        .iter()
                        .map(|ix| (*ix, tree.prove_inclusion(*ix as usize).as_bytes().to_vec()))
                        .collect()
                })
                .await?;
        }
        Ok(items
            .iter()
            .map(|(kind, h)| {
                let mut r = pb::Receipt {
                    kind: kind.code() as u32,
                    content_hash: h.to_vec(),
                    ..Default::default()
                };
                let Some(entry) = entries.get(&(*kind, *h)) else {
                    r.problem = format!("{} {} is not in the log", kind.name(), hex::encode(h));
                    return r;
                };
                r.entry = Some(entry_pb(entry));
                if !stored.contains(&(*kind, *h)) {
                    r.problem = format!(
                        "{} {} is in the log at index {} but is no longer stored",
                        kind.name(),
                        hex::encode(h),
                        entry.index
                    );
                    return r;
                }
                r.found = true;
                if let (Some((_, hpb)), Some(p)) = (head, proofs.get(&entry.index)) {
                    r.inclusion_proof = p.chunks(32).map(|c| c.to_vec()).collect();
                    r.head = Some(hpb.clone());
                }
                r
            })
            .collect())
    }

    async fn newest_pair(
        &self,
        t: TenantId,
    ) -> Result<Option<(sl::StoredHead, pb::SignedTreeHead)>, StoreError> {
        match self.newest(t).await? {
            Some(h) => {
                let p = self.head_pb(t, &h).await?;
                Ok(Some((h, p)))
            }
            None => Ok(None),
        }
    }
}

/// Issues heads every `every` while logs grow, until shutdown.
pub fn spawn_signer(
    state: Arc<LogState>,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|v| *v) => return,
            }
            if let Err(e) = state.sign_pending().await {
                tracing::warn!("signing tree heads: {e}");
            }
        }
    })
}

pub struct LogService {
    pub state: Arc<LogState>,
}

fn tenant<T>(req: &Request<T>) -> Result<TenantId, Status> {
    req.extensions()
        .get::<TenantId>()
        .copied()
        .ok_or_else(|| ApiError::unauthenticated("missing credentials").into())
}

fn kind_of(k: u32) -> Result<Kind, Status> {
    u8::try_from(k)
        .ok()
        .and_then(Kind::from_code)
        .ok_or_else(|| ApiError::invalid(format!("unknown log entry kind {k} (1 proof, 2 wallet backup, 3 address, 4 tapscript tree)")).into())
}

fn hash_of(b: &[u8]) -> Result<[u8; 32], Status> {
    b.try_into().map_err(|_| {
        ApiError::invalid(format!("content hash is {} bytes, want 32", b.len())).into()
    })
}

#[tonic::async_trait]
impl pb::log_server::Log for LogService {
    async fn get_log_key(
        &self,
        _req: Request<pb::GetLogKeyRequest>,
    ) -> Result<Response<pb::GetLogKeyResponse>, Status> {
        Ok(Response::new(pb::GetLogKeyResponse {
            public_key: self.state.public.to_vec(),
        }))
    }

    async fn get_tree_head(
        &self,
        req: Request<pb::GetTreeHeadRequest>,
    ) -> Result<Response<pb::SignedTreeHead>, Status> {
        let t = tenant(&req)?;
        let s = &self.state;
        let head = match (req.get_ref().fresh, s.newest(t).await.map_err(err)?) {
            (false, Some(h)) => h,
            // A replica serves the primary's heads; it signs nothing.
            (true, Some(h)) if s.read_only => h,
            (_, None) if s.read_only => {
                return Err(
                    ApiError::not_found("no signed tree head has reached this replica yet").into(),
                )
            }
            // No head yet (or a fresh one asked for): sign one now.
            _ => s.sign(t).await.map_err(err)?,
        };
        Ok(Response::new(s.head_pb(t, &head).await.map_err(err)?))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let s = &self.state;
        let newest = s
            .newest(t)
            .await
            .map_err(err)?
            .map(|h| h.tree_size as u64)
            .unwrap_or(0);
        let to = if r.to_size == 0 { newest } else { r.to_size };
        if to > newest {
            return Err(ApiError::invalid(format!(
                "to_size {to} is past the newest signed head (size {newest})"
            ))
            .into());
        }
        if r.from_size > to {
            return Err(ApiError::invalid(format!(
                "from_size {} is larger than to_size {to}",
                r.from_size
            ))
            .into());
        }
        let hashes = if r.from_size == 0 || r.from_size == to {
            Vec::new()
        } else {
            let adds = (to - r.from_size) as usize;
            let b = s
                .with_tree(t, to, |tree| {
                    tree.prove_consistency(adds).as_bytes().to_vec()
                })
                .await
                .map_err(err)?;
            b.chunks(32).map(|c| c.to_vec()).collect()
        };
        Ok(Response::new(pb::ConsistencyProof {
            from_size: r.from_size,
            to_size: to,
            hashes,
        }))
    }

    async fn get_receipt(
        &self,
        req: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let (kind, h) = (kind_of(r.kind)?, hash_of(&r.content_hash)?);
        let head = self.state.newest_pair(t).await.map_err(err)?;
        let rc = self
            .state
            .receipts(t, &[(kind, h)], head.as_ref())
            .await
            .map_err(err)?
            .remove(0);
        if !rc.found && rc.entry.is_none() {
            return Err(ApiError::not_found(rc.problem).into());
        }
        Ok(Response::new(rc))
    }

    async fn get_receipts(
        &self,
        req: Request<pb::GetReceiptsRequest>,
    ) -> Result<Response<pb::GetReceiptsResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        if r.items.len() > MAX_PER_CALL {
            return Err(ApiError::too_large(format!(
                "{} receipts asked for; at most {MAX_PER_CALL} per call",
                r.items.len()
            ))
            .into());
        }
        let head = self.state.newest_pair(t).await.map_err(err)?;
        let items = r
            .items
            .iter()
            .map(|it| Ok((kind_of(it.kind)?, hash_of(&it.content_hash)?)))
            .collect::<Result<Vec<_>, Status>>()?;
        let receipts = self
            .state
            .receipts(t, &items, head.as_ref())
            .await
            .map_err(err)?;
        Ok(Response::new(pb::GetReceiptsResponse { receipts }))
    }

    async fn list_log_entries(
        &self,
        req: Request<pb::ListLogEntriesRequest>,
    ) -> Result<Response<pb::ListLogEntriesResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let limit = match r.limit {
            0 => 1_000,
            n if n as usize > MAX_PER_CALL => {
                return Err(ApiError::invalid(format!("limit {n} is over {MAX_PER_CALL}")).into())
            }
            n => n as u64,
        };
        let mut tx = tapvault_store::universe::snapshot(&self.state.db)
            .await
            .map_err(err)?;
        let size = sl::size(&mut tx, t).await.map_err(err)?;
        // Served as stored: checking them is the auditor's job, and an
        // entry changed behind the server's back must reach it to be named.
        let entries = sl::stored_entries(&mut tx, t, r.from_index, limit)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(crate::errors::db_err)?;
        Ok(Response::new(pb::ListLogEntriesResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::LogEntry {
                    index: e.seq as u64,
                    kind: e.kind as u16 as u32,
                    content_hash: e.content_hash,
                    arrived_at: e.arrived_at.micros(),
                    leaf_hash: e.leaf_hash,
                })
                .collect(),
            log_size: size,
        }))
    }
}

/// Log entries of items just stored, for a push's reply (in `items` order;
/// an item without an entry is left out).
pub async fn receipts_for(
    db: &Db,
    t: TenantId,
    items: &[(Kind, [u8; 32])],
) -> Result<Vec<pb::LogEntry>, Status> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.pool.acquire().await.map_err(crate::errors::db_err)?;
    let found = sl::first_entries(&mut conn, t, items).await.map_err(err)?;
    Ok(items
        .iter()
        .filter_map(|i| found.get(i))
        .map(entry_pb)
        .collect())
}
