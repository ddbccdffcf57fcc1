//! Checking what the receipt log (tapvault.v1.Log) hands out: signed tree
//! heads, inclusion and consistency proofs. Every check recomputes from the
//! bytes it was given; nothing the server says is taken on trust. The agent,
//! `tapvault audit` and `tapvault recover` share these. The Merkle math is
//! the `ct-merkle` crate's (RFC 6962/9162), independent of the server's.

use crate::proto::tapvault_v1 as pb;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::Sha256;
use tapvault_codec::log::{Entry, Kind, TreeHead};

/// Why a log check failed; every message names what disagreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError(pub String);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogError {}

fn err<T>(m: impl Into<String>) -> Result<T, LogError> {
    Err(LogError(m.into()))
}

fn arr32(b: &[u8], what: &str) -> Result<[u8; 32], LogError> {
    b.try_into()
        .map_err(|_| LogError(format!("{what} is {} bytes, want 32", b.len())))
}

/// A head whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHead {
    pub head: TreeHead,
    pub public_key: [u8; 32],
    pub signature: Vec<u8>,
}

/// Checks a head's signature under `key` (the pinned log key; `None` = the
/// key the head names, for a first contact).
pub fn verify_head(
    h: &pb::SignedTreeHead,
    key: Option<&[u8; 32]>,
) -> Result<VerifiedHead, LogError> {
    let named = arr32(&h.public_key, "head public key")?;
    if let Some(k) = key {
        if *k != named {
            return err(format!(
                "the log key changed: the head is signed by {} but the pinned key is {}",
                hex::encode(named),
                hex::encode(k)
            ));
        }
    }
    let head = TreeHead {
        tenant: h.tenant.clone(),
        tree_size: h.tree_size,
        root_hash: arr32(&h.root_hash, "head root")?,
        timestamp: h.timestamp,
    };
    let vk = VerifyingKey::from_bytes(&named)
        .map_err(|_| LogError("head public key is not an Ed25519 key".into()))?;
    let sig = Signature::from_slice(&h.signature).map_err(|_| {
        LogError(format!(
            "head signature is {} bytes, want 64",
            h.signature.len()
        ))
    })?;
    vk.verify_strict(&head.message(), &sig).map_err(|_| {
        LogError(format!(
            "bad signature on the tree head of size {} (not signed by {})",
            head.tree_size,
            hex::encode(named)
        ))
    })?;
    Ok(VerifiedHead {
        head,
        public_key: named,
        signature: h.signature.clone(),
    })
}

impl VerifiedHead {
    pub fn to_pb(&self) -> pb::SignedTreeHead {
        pb::SignedTreeHead {
            tenant: self.head.tenant.clone(),
            tree_size: self.head.tree_size,
            root_hash: self.head.root_hash.to_vec(),
            timestamp: self.head.timestamp,
            public_key: self.public_key.to_vec(),
            signature: self.signature.clone(),
        }
    }

    fn root(&self) -> RootHash<Sha256> {
        RootHash::new(self.head.root_hash.into(), self.head.tree_size)
    }
}

/// A log entry as sent, checked against its own leaf hash.
pub fn entry_of(e: &pb::LogEntry) -> Result<Entry, LogError> {
    let kind = u8::try_from(e.kind)
        .ok()
        .and_then(Kind::from_code)
        .ok_or_else(|| LogError(format!("log entry {} has unknown kind {}", e.index, e.kind)))?;
    let entry = Entry {
        kind,
        content_hash: arr32(&e.content_hash, "content hash")?,
        index: e.index,
        arrived_at: e.arrived_at,
    };
    if entry.leaf_hash()[..] != e.leaf_hash[..] {
        return err(format!(
            "log entry {} does not hash to the leaf hash it came with",
            e.index
        ));
    }
    Ok(entry)
}

pub fn entry_pb(e: &Entry) -> pb::LogEntry {
    pb::LogEntry {
        index: e.index,
        kind: e.kind.code() as u32,
        content_hash: e.content_hash.to_vec(),
        arrived_at: e.arrived_at,
        leaf_hash: e.leaf_hash().to_vec(),
    }
}

fn joined(hashes: &[Vec<u8>]) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::with_capacity(hashes.len() * 32);
    for h in hashes {
        out.extend_from_slice(&arr32(h, "proof hash")?);
    }
    Ok(out)
}

/// Checks that `entry` is at its index in the log `head` signs.
pub fn verify_inclusion(
    head: &VerifiedHead,
    entry: &Entry,
    proof: &[Vec<u8>],
) -> Result<(), LogError> {
    let p = InclusionProof::<Sha256>::try_from_bytes(joined(proof)?)
        .map_err(|_| LogError("malformed inclusion proof".into()))?;
    head.root()
        .verify_inclusion(&entry.encode(), entry.index, &p)
        .map_err(|e| {
            LogError(format!(
                "{} {} (log index {}) is not included in the signed head of size {}: {e:?}",
                entry.kind.name(),
                hex::encode(entry.content_hash),
                entry.index,
                head.head.tree_size
            ))
        })
}

/// Checks that `new` extends `old` (the log only grew).
pub fn verify_consistency(
    old: &VerifiedHead,
    new: &VerifiedHead,
    proof: &[Vec<u8>],
) -> Result<(), LogError> {
    let (m, n) = (old.head.tree_size, new.head.tree_size);
    if n < m {
        return err(format!(
            "the log shrank: a head of size {n} after one of size {m}"
        ));
    }
    if m == 0 {
        return Ok(());
    }
    if m == n {
        return if old.head.root_hash == new.head.root_hash {
            Ok(())
        } else {
            err(format!(
                "two heads of size {m} with different roots (a forked log)"
            ))
        };
    }
    let p = ConsistencyProof::<Sha256>::try_from_bytes(joined(proof)?)
        .map_err(|_| LogError("malformed consistency proof".into()))?;
    new.root().verify_consistency(&old.root(), &p).map_err(|e| {
        LogError(format!(
            "the head of size {n} is not consistent with the earlier head of size {m} (the log was rewritten): {e:?}"
        ))
    })
}

/// The RFC 9162 root of entries given in index order.
pub fn root_of_entries(entries: &[Entry]) -> [u8; 32] {
    let leaves: Vec<[u8; 32]> = entries.iter().map(Entry::leaf_hash).collect();
    tapvault_codec::log::root_of(&leaves)
}

/// A head as kept in a state file (hex fields).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedHead {
    pub tenant: String,
    pub tree_size: u64,
    pub root_hash: String,
    pub timestamp: i64,
    pub public_key: String,
    pub signature: String,
}

impl SavedHead {
    pub fn of(h: &VerifiedHead) -> SavedHead {
        SavedHead {
            tenant: h.head.tenant.clone(),
            tree_size: h.head.tree_size,
            root_hash: hex::encode(h.head.root_hash),
            timestamp: h.head.timestamp,
            public_key: hex::encode(h.public_key),
            signature: hex::encode(&h.signature),
        }
    }

    /// Re-checks the saved head's own signature (a state file is input too).
    pub fn verify(&self) -> Result<VerifiedHead, LogError> {
        let bad = |w: &str| LogError(format!("saved head: {w} is not hex"));
        let pb = pb::SignedTreeHead {
            tenant: self.tenant.clone(),
            tree_size: self.tree_size,
            root_hash: hex::decode(&self.root_hash).map_err(|_| bad("root_hash"))?,
            timestamp: self.timestamp,
            public_key: hex::decode(&self.public_key).map_err(|_| bad("public_key"))?,
            signature: hex::decode(&self.signature).map_err(|_| bad("signature"))?,
        };
        verify_head(&pb, None)
    }
}

/// A receipt as kept by the agent and read by `tapvault audit --receipts`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SavedReceipt {
    pub kind: u32,
    pub content_hash: String,
    pub index: u64,
    pub leaf_hash: String,
}

impl SavedReceipt {
    pub fn of(e: &pb::LogEntry) -> SavedReceipt {
        SavedReceipt {
            kind: e.kind,
            content_hash: hex::encode(&e.content_hash),
            index: e.index,
            leaf_hash: hex::encode(&e.leaf_hash),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        u8::try_from(self.kind)
            .ok()
            .and_then(Kind::from_code)
            .map(Kind::name)
            .unwrap_or("item")
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {} (log index {})",
            self.kind_name(),
            self.content_hash,
            self.index
        )
    }
}
