//! Values derived from decoded data: tap tweaks and burn keys (spec §4.6).
//! Universe keys and identifiers are in `universe.rs`.

use crate::asset::PrevId;
use crate::primitives::PubKey;
use bitcoin::hashes::{sha256t_hash_newtype, Hash as _, HashEngine};
use bitcoin::key::Secp256k1;
use bitcoin::secp256k1::{Scalar, XOnlyPublicKey};

/// tapd's NUMS key (tombstones, burn keys).
pub const NUMS_KEY: [u8; 33] = [
    0x02, 0x7c, 0x79, 0xb9, 0xb2, 0x6e, 0x46, 0x38, 0x95, 0xee, 0xf5, 0x67, 0x9d, 0x85, 0x58, 0x94,
    0x2c, 0x86, 0xc4, 0xad, 0x22, 0x33, 0xad, 0xef, 0x01, 0xbc, 0x3e, 0x6d, 0x54, 0x0b, 0x36, 0x53,
    0xfe,
];

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
