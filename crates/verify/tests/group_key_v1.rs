//! V1 group key reveals (tapd ≥ 0.6 mints grouped assets with them). No
//! proof vector carries one, so the Pedersen derivation is checked against
//! the one published V1 group key: the mint walk-through in tapd's
//! `docs/external-group-key.md` (first tranche, no custom scripts).

use tapvault_codec::{GroupKeyReveal, PubKey};
use tapvault_verify::taproot::{self, NON_SPEND_OP_RETURN, NON_SPEND_PEDERSEN};
use tapvault_verify::{group_key_v1, VerifyError};

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn key(s: &str) -> PubKey {
    PubKey::from_slice(&hex::decode(s).unwrap()).unwrap()
}

const ASSET_ID: &str = "bab2f9995a1c46a9550ac49404ae0f3db7ada3bc42d80cefbd6f6338a6e5e4fc";
const RAW_GROUP_KEY: &str = "03a6553ff1aa8bb1dc91b35e1f8428f99e6dfc3a66e39945ad9c0c22fffec677ff";
const TAPSCRIPT_ROOT: &str = "7d7a8748f0f4abdbce183f02dccbf4db607acfbca973cdc7b62b1f12a4a0ed50";
const GROUP_KEY: &str = "02b283955acc482b1a1712b5628a082fc036ab540cb7c6cdea193d96228b0bcc09";

fn published() -> GroupKeyReveal {
    GroupKeyReveal::V1 {
        version: NON_SPEND_PEDERSEN,
        internal_key: key(RAW_GROUP_KEY),
        tapscript_root: h32(TAPSCRIPT_ROOT),
        custom_subtree_root: None,
    }
}

#[test]
fn pedersen_reveal_derives_tapds_published_group_key() {
    assert_eq!(
        taproot::group_key_v1_root(NON_SPEND_PEDERSEN, &h32(ASSET_ID), None).unwrap(),
        h32(TAPSCRIPT_ROOT)
    );
    let q = group_key_v1(&published(), &h32(ASSET_ID)).unwrap();
    assert_eq!(hex::encode(q.serialize()), GROUP_KEY, "parity included");
    // An all-zero custom root is tapd's "none".
    let GroupKeyReveal::V1 {
        version,
        internal_key,
        tapscript_root,
        ..
    } = published()
    else {
        unreachable!()
    };
    let zero_custom = GroupKeyReveal::V1 {
        version,
        internal_key,
        tapscript_root,
        custom_subtree_root: Some([0; 32]),
    };
    assert_eq!(group_key_v1(&zero_custom, &h32(ASSET_ID)).unwrap(), q);
}

#[test]
fn reveal_for_another_asset_or_root_fails() {
    let mut other = h32(ASSET_ID);
    other[31] ^= 1;
    let e = group_key_v1(&published(), &other).unwrap_err();
    assert!(
        matches!(&e, VerifyError::GroupKey(m) if m.contains("is not the one the asset ID commits to")),
        "{e}"
    );
    let bad_version = GroupKeyReveal::V1 {
        version: 3,
        internal_key: key(RAW_GROUP_KEY),
        tapscript_root: h32(TAPSCRIPT_ROOT),
        custom_subtree_root: None,
    };
    let e = group_key_v1(&bad_version, &h32(ASSET_ID)).unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown non-spendable leaf version 3"),
        "{e}"
    );
    // A custom subtree changes the root: the published one no longer fits.
    let custom = GroupKeyReveal::V1 {
        version: NON_SPEND_PEDERSEN,
        internal_key: key(RAW_GROUP_KEY),
        tapscript_root: h32(TAPSCRIPT_ROOT),
        custom_subtree_root: Some([7; 32]),
    };
    assert!(group_key_v1(&custom, &h32(ASSET_ID)).is_err());
}

#[test]
fn op_return_and_custom_subtree_shapes() {
    let id = h32(ASSET_ID);
    let mut leaf = vec![0x6a, 0x20];
    leaf.extend_from_slice(&id);
    assert_eq!(
        taproot::non_spend_leaf_script(NON_SPEND_OP_RETURN, Some(&id)).unwrap(),
        leaf
    );
    assert_eq!(
        taproot::non_spend_leaf_script(NON_SPEND_OP_RETURN, None).unwrap(),
        [0x6a]
    );
    let custom = [9u8; 32];
    let id_leaf = taproot::tap_leaf(0xc0, &leaf);
    let empty_leaf = taproot::tap_leaf(0xc0, &[0x6a]);
    let root = taproot::group_key_v1_root(NON_SPEND_OP_RETURN, &id, Some(&custom)).unwrap();
    assert_eq!(
        root,
        taproot::tap_branch(&id_leaf, &taproot::tap_branch(&empty_leaf, &custom))
    );
    let reveal = GroupKeyReveal::V1 {
        version: NON_SPEND_OP_RETURN,
        internal_key: key(RAW_GROUP_KEY),
        tapscript_root: root,
        custom_subtree_root: Some(custom),
    };
    let internal = key(RAW_GROUP_KEY).to_secp().unwrap();
    assert_eq!(
        group_key_v1(&reveal, &id).unwrap(),
        taproot::taproot_output_key(&internal, Some(&root)).unwrap()
    );
    // Pedersen leaves are `<32-byte x-only key> OP_CHECKSIG`; the nil-data
    // leaf's key derives from H itself.
    let s = taproot::non_spend_leaf_script(NON_SPEND_PEDERSEN, None).unwrap();
    assert_eq!((s.len(), s[0], s[33]), (34, 0x20, 0xac));
    assert_eq!(
        taproot::pedersen_commit(&[0; 32]).unwrap().serialize(),
        taproot::NUMS_H
    );
}
