//! BIP-341 hashing and tweaks, and the TAP commitment tapscript leaf.

use bitcoin::secp256k1::{All, PublicKey, Scalar, Secp256k1, XOnlyPublicKey};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use tapvault_codec::primitives::write_compact_size;
use tapvault_codec::TapscriptPreimage;

pub fn secp() -> &'static Secp256k1<All> {
    static CTX: OnceLock<Secp256k1<All>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let t = Sha256::digest(tag.as_bytes());
    let mut h = Sha256::new();
    h.update(t);
    h.update(t);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn tap_leaf(version: u8, script: &[u8]) -> [u8; 32] {
    let mut pre = vec![version];
    write_compact_size(&mut pre, script.len() as u64);
    pre.extend_from_slice(script);
    tagged_hash("TapLeaf", &[&pre])
}

pub fn tap_branch(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    if a <= b {
        tagged_hash("TapBranch", &[a, b])
    } else {
        tagged_hash("TapBranch", &[b, a])
    }
}

/// `SHA256("taproot-assets")`, the V0/V1 commitment marker.
pub fn marker_v0() -> &'static [u8; 32] {
    static M: OnceLock<[u8; 32]> = OnceLock::new();
    M.get_or_init(|| Sha256::digest(b"taproot-assets").into())
}

/// `SHA256("taproot-assets:194243")`, the V2 commitment tag.
pub fn tag_v2() -> &'static [u8; 32] {
    static M: OnceLock<[u8; 32]> = OnceLock::new();
    M.get_or_init(|| Sha256::digest(b"taproot-assets:194243").into())
}

/// The 73-byte TAP commitment script for a commitment version (spec §6.3).
pub fn commitment_script(version: u8, root_hash: &[u8; 32], root_sum: u64) -> Vec<u8> {
    let mut s = Vec::with_capacity(73);
    if version >= 2 {
        s.extend_from_slice(tag_v2());
        s.push(2);
    } else {
        s.push(version);
        s.extend_from_slice(marker_v0());
    }
    s.extend_from_slice(root_hash);
    s.extend_from_slice(&root_sum.to_be_bytes());
    s
}

pub fn is_commitment_script(script: &[u8]) -> bool {
    script.len() == 73
        && ((script[0] <= 1 && script[1..33] == marker_v0()[..]) || script[..32] == tag_v2()[..])
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreimageError {
    #[error("tapscript sibling is itself a TAP commitment leaf")]
    SiblingIsCommitment,
    #[error("unsupported tapscript preimage combination: {0}")]
    BadCombination(&'static str),
}

pub fn preimage_hash(p: &TapscriptPreimage) -> Result<[u8; 32], PreimageError> {
    match p {
        TapscriptPreimage::Leaf {
            leaf_version,
            script,
        } => {
            if is_commitment_script(script) {
                return Err(PreimageError::SiblingIsCommitment);
            }
            Ok(tap_leaf(*leaf_version, script))
        }
        TapscriptPreimage::Branch(b) => {
            let mut l = [0u8; 32];
            let mut r = [0u8; 32];
            l.copy_from_slice(&b[..32]);
            r.copy_from_slice(&b[32..]);
            Ok(tap_branch(&l, &r))
        }
    }
}

/// BIP-341 output key (x-only, with parity) of `internal` committing to
/// `root` (`None` = key-path only, BIP-86).
pub fn taproot_output_key(internal: &PublicKey, root: Option<&[u8; 32]>) -> Option<PublicKey> {
    let (x, _) = internal.x_only_public_key();
    let t = match root {
        Some(r) => tagged_hash("TapTweak", &[&x.serialize(), r]),
        None => tagged_hash("TapTweak", &[&x.serialize()]),
    };
    let even = PublicKey::from_x_only_public_key(x, bitcoin::secp256k1::Parity::Even);
    even.add_exp_tweak(secp(), &Scalar::from_be_bytes(t).ok()?)
        .ok()
}

pub fn x_only(pk: &PublicKey) -> [u8; 32] {
    XOnlyPublicKey::from(*pk).serialize()
}

/// `P + s·G` with a 32-byte scalar (lnd's `TweakPubKeyWithTweak`).
pub fn add_scalar(p: &PublicKey, s: &[u8; 32]) -> Option<PublicKey> {
    p.add_exp_tweak(secp(), &Scalar::from_be_bytes(*s).ok()?)
        .ok()
}

/// The root of a tapscript tree built from `leaves` (version, script) the way
/// tapd builds one from a full leaf list (btcd's `AssembleTaprootScriptTree`):
/// adjacent leaves pair into branches, an odd last leaf joins the last
/// branch, then branches combine first-two-to-the-back until one is left.
pub fn assemble_tapscript_root(leaves: &[(u8, &[u8])]) -> Option<[u8; 32]> {
    let hashes: Vec<[u8; 32]> = leaves.iter().map(|(v, s)| tap_leaf(*v, s)).collect();
    match hashes.len() {
        0 => return None,
        1 => return Some(hashes[0]),
        _ => {}
    }
    let mut branches: std::collections::VecDeque<[u8; 32]> = Default::default();
    let mut i = 0;
    while i < hashes.len() {
        if i == hashes.len() - 1 {
            let last = branches.pop_back()?;
            branches.push_back(tap_branch(&last, &hashes[i]));
        } else {
            branches.push_back(tap_branch(&hashes[i], &hashes[i + 1]));
        }
        i += 2;
    }
    while branches.len() > 1 {
        let l = branches.pop_front()?;
        let r = branches.pop_front()?;
        branches.push_back(tap_branch(&l, &r));
    }
    branches.pop_front()
}

#[cfg(test)]
mod assemble_tests {
    use super::*;

    #[test]
    fn shapes_match_the_pairing_rule() {
        let s: Vec<Vec<u8>> = (0..5u8).map(|i| vec![0x51, i]).collect();
        let l: Vec<[u8; 32]> = s.iter().map(|x| tap_leaf(0xc0, x)).collect();
        let leaves: Vec<(u8, &[u8])> = s.iter().map(|x| (0xc0, x.as_slice())).collect();
        assert_eq!(assemble_tapscript_root(&leaves[..1]), Some(l[0]));
        assert_eq!(
            assemble_tapscript_root(&leaves[..2]),
            Some(tap_branch(&l[0], &l[1]))
        );
        // Odd count: the last leaf joins the last pair.
        assert_eq!(
            assemble_tapscript_root(&leaves[..3]),
            Some(tap_branch(&tap_branch(&l[0], &l[1]), &l[2]))
        );
        let b01 = tap_branch(&l[0], &l[1]);
        let b23 = tap_branch(&l[2], &l[3]);
        assert_eq!(
            assemble_tapscript_root(&leaves[..4]),
            Some(tap_branch(&b01, &b23))
        );
        assert_eq!(
            assemble_tapscript_root(&leaves),
            Some(tap_branch(&b01, &tap_branch(&b23, &l[4])))
        );
        assert_eq!(assemble_tapscript_root(&[]), None);
    }
}
