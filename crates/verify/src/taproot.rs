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

/// lnd's `TaprootNUMSKey` (H): a point nobody knows the discrete log of.
pub const NUMS_H: [u8; 33] = [
    0x02, 0xdc, 0xa0, 0x94, 0x75, 0x11, 0x09, 0xd0, 0xbd, 0x05, 0x5d, 0x03, 0x56, 0x58, 0x74, 0xe8,
    0x27, 0x6d, 0xd5, 0x3e, 0x92, 0x6b, 0x44, 0xe3, 0xbd, 0x1b, 0xb6, 0xbf, 0x4b, 0xc1, 0x30, 0xa2,
    0x79,
];

/// The secp256k1 group order n, big-endian.
const ORDER_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `m mod n` for a 32-byte big-endian m (m < 2n, so one subtraction).
fn reduce_mod_n(m: &[u8; 32]) -> [u8; 32] {
    if m.as_slice() < ORDER_N.as_slice() {
        return *m;
    }
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = m[i] as i16 - ORDER_N[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + (borrow << 8)) as u8;
    }
    out
}

/// The unblinded Pedersen commitment `msg·G + H` (just H for a zero msg,
/// the identity plus H).
pub fn pedersen_commit(msg: &[u8; 32]) -> Option<PublicKey> {
    let h = PublicKey::from_slice(&NUMS_H).ok()?;
    let m = reduce_mod_n(msg);
    if m == [0u8; 32] {
        return Some(h);
    }
    let mg = bitcoin::secp256k1::SecretKey::from_slice(&m)
        .ok()?
        .public_key(secp());
    mg.combine(&h).ok()
}

/// The key of a Pedersen non-spend leaf: the commitment C turned into an
/// xpub (key C, chain code x(C)) and derived at the unhardened path 0/0, so
/// hardware wallets can describe the leaf.
pub fn pedersen_leaf_key(msg: &[u8; 32]) -> Option<PublicKey> {
    use bitcoin::bip32::{ChainCode, ChildNumber, Fingerprint, Xpub};
    let c = pedersen_commit(msg)?;
    let xpub = Xpub {
        network: bitcoin::NetworkKind::Main,
        depth: 3,
        parent_fingerprint: Fingerprint::default(),
        child_number: ChildNumber::Normal { index: 0 },
        public_key: c,
        chain_code: ChainCode::from(x_only(&c)),
    };
    let zero = ChildNumber::Normal { index: 0 };
    Some(xpub.derive_pub(secp(), &[zero, zero]).ok()?.public_key)
}

/// Group key reveal V1 non-spendable leaf versions.
pub const NON_SPEND_OP_RETURN: u8 = 1;
pub const NON_SPEND_PEDERSEN: u8 = 2;

/// The script of a non-spendable leaf carrying `data` (an asset ID, or none):
/// version 1 `OP_RETURN [<data>]`, version 2 `<x(K)> OP_CHECKSIG` with K
/// from [`pedersen_leaf_key`]. `None` for an unknown version.
pub fn non_spend_leaf_script(version: u8, data: Option<&[u8; 32]>) -> Option<Vec<u8>> {
    match version {
        NON_SPEND_OP_RETURN => {
            let mut s = vec![0x6a];
            if let Some(d) = data {
                s.push(0x20);
                s.extend_from_slice(d);
            }
            Some(s)
        }
        NON_SPEND_PEDERSEN => {
            let k = pedersen_leaf_key(data.unwrap_or(&[0u8; 32]))?;
            let mut s = vec![0x20];
            s.extend_from_slice(&x_only(&k));
            s.push(0xac);
            Some(s)
        }
        _ => None,
    }
}

/// The tapscript root a V1 group key commits to: the asset-ID leaf alone,
/// or, with a custom subtree, `Branch(idLeaf, Branch(emptyLeaf, custom))`.
pub fn group_key_v1_root(
    version: u8,
    asset_id: &[u8; 32],
    custom_subtree_root: Option<&[u8; 32]>,
) -> Option<[u8; 32]> {
    let id_leaf = tap_leaf(0xc0, &non_spend_leaf_script(version, Some(asset_id))?);
    Some(match custom_subtree_root {
        None => id_leaf,
        Some(custom) => {
            let empty = tap_leaf(0xc0, &non_spend_leaf_script(version, None)?);
            tap_branch(&id_leaf, &tap_branch(&empty, custom))
        }
    })
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

    #[test]
    fn reduce_mod_n_wraps_once() {
        assert_eq!(reduce_mod_n(&[1; 32]), [1; 32]);
        assert_eq!(reduce_mod_n(&ORDER_N), [0; 32]);
        let mut n_plus_5 = ORDER_N;
        n_plus_5[31] += 5;
        let mut five = [0u8; 32];
        five[31] = 5;
        assert_eq!(reduce_mod_n(&n_plus_5), five);
        let max = [0xff; 32];
        // 2^256 - 1 - n = 0x14551231950b75fc4402da1732fc9bebe
        assert_eq!(
            hex::encode(reduce_mod_n(&max)),
            "000000000000000000000000000000014551231950b75fc4402da1732fc9bebe"
        );
    }
}
