//! The universe rules in one place (spec §7): which universe a proof
//! belongs to (its subject and proof type), its leaf key and sum, tapd's tree
//! namespaces, and what a universe contributes to the multiverse. The MS-SMT
//! crate stays generic: it knows trees, not universes.

use crate::asset::Asset;
use crate::primitives::{outpoint_hash_bytes, sha256, PubKey};
use crate::proof::Proof;
use bitcoin::OutPoint;
use tapvault_mssmt::{Hash, Node};
/// Which universe tree a proof belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProofType {
    Issuance,
    Transfer,
}

impl ProofType {
    /// tapd's tree namespace prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofType::Issuance => "issuance",
            ProofType::Transfer => "transfer",
        }
    }
    /// The multiverse tree namespace this type's roots go into.
    pub fn multiverse_namespace(self) -> &'static str {
        match self {
            ProofType::Issuance => "multiverse-issuance",
            ProofType::Transfer => "multiverse-transfer",
        }
    }
}

/// tapd's namespace of a universe tree: `"issuance-<hex id>"`.
pub fn universe_namespace(id: &Hash, ty: ProofType) -> String {
    format!("{}-{}", ty.as_str(), hex::encode(id))
}

/// Sum of a universe leaf: the asset amount in issuance trees, 1 per
/// transfer in transfer trees.
pub fn universe_leaf_sum(ty: ProofType, amount: u64) -> u64 {
    match ty {
        ProofType::Issuance => amount,
        ProofType::Transfer => 1,
    }
}

/// The multiverse leaf of a universe: value = root hash; sum = 1 per asset
/// (issuance) or the universe root's sum (transfer).
pub fn multiverse_leaf(ty: ProofType, universe_root: &Node) -> (Vec<u8>, u64) {
    let sum = match ty {
        ProofType::Issuance => 1,
        ProofType::Transfer => universe_root.sum,
    };
    (universe_root.hash.to_vec(), sum)
}

/// Universe leaf key: `SHA256(txid || vout LE || xonly(script_key))`.
pub fn universe_leaf_key(anchor: &OutPoint, script_key: &PubKey) -> [u8; 32] {
    sha256(&[&outpoint_hash_bytes(anchor), &script_key.x_only()])
}

/// `SHA256(txid || vout LE || xonly(script_key) || asset_id)` (supply trees).
pub fn asset_leaf_key(anchor: &OutPoint, script_key: &PubKey, asset_id: &[u8; 32]) -> [u8; 32] {
    sha256(&[&outpoint_hash_bytes(anchor), &script_key.x_only(), asset_id])
}

/// What a universe is about: an asset ID, or a group key (which wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UniverseSubject {
    AssetId([u8; 32]),
    GroupKey(PubKey),
}

impl UniverseSubject {
    pub fn of(asset: &Asset) -> Self {
        match asset.group_key {
            Some(g) => UniverseSubject::GroupKey(g),
            None => UniverseSubject::AssetId(asset.id()),
        }
    }
    /// The 32 bytes keying the universe in the multiverse.
    pub fn id_bytes(&self) -> [u8; 32] {
        match self {
            UniverseSubject::AssetId(id) => *id,
            UniverseSubject::GroupKey(k) => sha256(&[&k.x_only()]),
        }
    }
}

/// Issuance iff the proof's asset is a genesis asset.
pub fn proof_type(asset: &Asset) -> ProofType {
    if asset.is_genesis() {
        ProofType::Issuance
    } else {
        ProofType::Transfer
    }
}

/// Everything a universe needs to file a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniverseLeafInfo {
    pub subject: UniverseSubject,
    pub proof_type: ProofType,
    pub anchor: OutPoint,
    pub script_key: PubKey,
    pub leaf_key: [u8; 32],
    pub sum: u64,
}

pub fn universe_leaf_info(p: &Proof) -> UniverseLeafInfo {
    let anchor = p.outpoint();
    let proof_type = proof_type(&p.asset);
    UniverseLeafInfo {
        subject: UniverseSubject::of(&p.asset),
        proof_type,
        anchor,
        script_key: p.asset.script_key,
        leaf_key: universe_leaf_key(&anchor, &p.asset.script_key),
        sum: universe_leaf_sum(proof_type, p.asset.amount),
    }
}
