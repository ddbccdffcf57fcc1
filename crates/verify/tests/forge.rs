//! The forge's proofs pass every offline check, are distinct, keep their
//! size, and a forged proof with one byte changed afterwards still fails.

use serde_json::Value;
use std::path::PathBuf;
use tapvault_codec::{Proof, PubKey};
use tapvault_verify::forge::{reanchor_genesis, Change};
use tapvault_verify::{verify_proof, Check, Options};

fn genesis() -> Vec<u8> {
    let dir = std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    let p = dir.join("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let c = v["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["comment"] == "valid regtest genesis proof with meta reveal")
        .unwrap();
    hex::decode(c["expected"].as_str().unwrap()).unwrap()
}

fn key(i: u64) -> PubKey {
    let mut sk = [0u8; 32];
    sk[24..].copy_from_slice(&(i + 1).to_be_bytes());
    let secp = bitcoin::secp256k1::Secp256k1::new();
    PubKey(
        bitcoin::secp256k1::SecretKey::from_slice(&sk)
            .unwrap()
            .public_key(&secp)
            .serialize(),
    )
}

#[test]
fn forged_genesis_proofs_pass_full_verification() {
    let raw = genesis();
    let base = Proof::decode(&raw).unwrap();
    assert!(verify_proof(&base, Options::default()).is_ok());
    let mut seen = std::collections::HashSet::new();
    for i in 0..8u64 {
        let change = Change {
            script_key: Some(key(i)),
            tag: (i % 2 == 1).then(|| format!("forged-{i}").into_bytes()),
        };
        let p = reanchor_genesis(&base, &change).unwrap();
        let r = verify_proof(&p, Options::default());
        assert!(r.is_ok(), "forged proof {i} fails:\n{r}");
        let bytes = p.encode();
        let back = Proof::decode(&bytes).unwrap();
        assert!(verify_proof(&back, Options::default()).is_ok());
        assert_eq!(back.asset.script_key, key(i));
        assert_ne!(back.anchor_tx.txid(), base.anchor_tx.txid());
        assert!(seen.insert(bytes));
    }
}

#[test]
fn a_forged_proof_is_checked_like_any_other() {
    let base = Proof::decode(&genesis()).unwrap();
    let change = Change {
        script_key: Some(key(7)),
        tag: None,
    };
    let good = reanchor_genesis(&base, &change).unwrap();
    // The asset changed after anchoring: the output no longer commits to it.
    let mut p = good.clone();
    p.asset.script_key = key(8);
    assert_eq!(
        verify_proof(&p, Options::default()).failed_checks(),
        vec![Check::AnchorOutput]
    );
    // The header's merkle root no longer matches the tx.
    let mut p = good.clone();
    p.block_header.0[40] ^= 1;
    assert!(verify_proof(&p, Options::default())
        .failed_checks()
        .contains(&Check::Header));
}

#[test]
fn a_grouped_asset_keeps_its_tag() {
    let mut base = Proof::decode(&genesis()).unwrap();
    base.asset.group_key = Some(key(1));
    let change = Change {
        script_key: None,
        tag: Some(b"other".to_vec()),
    };
    let e = reanchor_genesis(&base, &change).unwrap_err();
    assert!(e.contains("group"), "{e}");
}
