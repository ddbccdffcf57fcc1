//! Values derived from decoded data: universe keys and identifiers, burn
//! keys (spec §4.6, §7).

use crate::asset::{Asset, PrevId};
use crate::primitives::{outpoint_hash_bytes, sha256, PubKey};
use crate::proof::Proof;
use bitcoin::hashes::{sha256t_hash_newtype, Hash as _, HashEngine};
use bitcoin::key::Secp256k1;
use bitcoin::secp256k1::{Scalar, XOnlyPublicKey};
use bitcoin::OutPoint;
pub use tapvault_mssmt::universe::ProofType;

/// tapd's NUMS key (tombstones, burn keys).
pub const NUMS_KEY: [u8; 33] = [
    0x02, 0x7c, 0x79, 0xb9, 0xb2, 0x6e, 0x46, 0x38, 0x95, 0xee, 0xf5, 0x67, 0x9d, 0x85, 0x58, 0x94,
    0x2c, 0x86, 0xc4, 0xad, 0x22, 0x33, 0xad, 0xef, 0x01, 0xbc, 0x3e, 0x6d, 0x54, 0x0b, 0x36, 0x53,
    0xfe,
];

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
        sum: tapvault_mssmt::universe::universe_leaf_sum(proof_type, p.asset.amount),
    }
}

sha256t_hash_newtype! {
    pub struct TapTweakTag = hash_str("TapTweak");
    /// BIP-341 TapTweak tagged hash over arbitrary bytes.
    #[hash_newtype(forward)]
    pub struct TapTweakAnyHash(_);
}

/// `xonly(P + TapTweak(xonly(P) || data)·G)` with `data` of any length
/// (tapd tweaks NUMS with the 100-byte PrevID preimage).
pub fn tweak_x_only(key: &PubKey, data: &[u8]) -> Option<[u8; 32]> {
    let secp = Secp256k1::verification_only();
    let (xonly, _) = key.to_secp()?.x_only_public_key();
    let mut eng = TapTweakAnyHash::engine();
    eng.input(&xonly.serialize());
    eng.input(data);
    let t = TapTweakAnyHash::from_engine(eng).to_byte_array();
    let scalar = Scalar::from_be_bytes(t).ok()?;
    let (tweaked, _) = xonly.add_tweak(&secp, &scalar).ok()?;
    Some(XOnlyPublicKey::serialize(&tweaked))
}

/// The burn key of a PrevID (spec §4.6), x-only.
pub fn burn_key(prev: &PrevId) -> Option<[u8; 32]> {
    tweak_x_only(&PubKey(NUMS_KEY), &prev.hash_preimage())
}
