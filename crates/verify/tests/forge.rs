//! The forge's proofs pass every offline check, are distinct, keep their
//! size, and a forged proof with one byte changed afterwards still fails.

use serde_json::Value;
use std::path::PathBuf;
use tapvault_codec::{Proof, PubKey};
use tapvault_verify::forge::{reanchor, reanchor_genesis, transfer, Change};
use tapvault_verify::{verify_chain, verify_proof, Check, Options};

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

/// Secret `i + 1`.
fn secret(i: u64) -> bitcoin::secp256k1::SecretKey {
    let mut sk = [0u8; 32];
    sk[24..].copy_from_slice(&(i + 1).to_be_bytes());
    bitcoin::secp256k1::SecretKey::from_slice(&sk).unwrap()
}

/// The public key of [`secret`] `i`.
fn key(i: u64) -> PubKey {
    PubKey(
        secret(i)
            .public_key(tapvault_verify::taproot::secp())
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

/// A genesis owned by key 0 and `n` transfers, owner i → i + 1, as a file.
fn chain(n: u64) -> tapvault_codec::file::File {
    let base = Proof::decode(&genesis()).unwrap();
    let change = Change {
        script_key: Some(key(0)),
        tag: None,
    };
    let mut p = reanchor_genesis(&base, &change).unwrap();
    let mut f = tapvault_codec::file::File::new();
    f.append_raw(p.encode());
    for i in 0..n {
        p = transfer(&p, &secret(i), key(i + 1)).unwrap();
        f.append_raw(p.encode());
    }
    f
}

const VM: Options = Options {
    header: true,
    vm: true,
};

#[test]
fn a_forged_chain_of_transfers_passes_the_vm_and_its_links() {
    let f = tapvault_codec::file::File::decode(&chain(4).encode()).unwrap();
    let proofs = f.decode_proofs().unwrap();
    assert_eq!(proofs.len(), 5);
    let v = verify_chain(&proofs, VM).unwrap();
    assert_eq!(v.last().unwrap().script_key, key(4));
    for (i, w) in proofs.windows(2).enumerate() {
        assert_eq!(w[1].proof.prev_out, w[0].proof.outpoint(), "link {i}");
        assert!(!w[1].proof.asset.is_genesis());
        // On its own (no VM), each transfer passes every offline check.
        let r = verify_proof(&w[1].proof, Options::default());
        assert!(r.is_ok(), "{r}");
    }
}

#[test]
fn a_forged_transfer_signed_by_someone_else_fails_the_vm() {
    let f = chain(1);
    let mut proofs = f.decode_proofs().unwrap();
    // Key 5 does not own the genesis output.
    let e = transfer(&proofs[0].proof, &secret(5), key(6)).unwrap_err();
    assert!(e.contains("owner"), "{e}");
    // A signature byte flipped and the proof re-anchored: every check but
    // the VM's passes, and the VM rejects the signature.
    let mut p = proofs[1].proof.clone();
    p.asset.prev_witnesses[0].tx_witness[0][10] ^= 1;
    reanchor(&mut p).unwrap();
    assert!(verify_proof(&p, Options::default()).is_ok());
    proofs[1].proof = p;
    let e = verify_chain(&proofs, VM).unwrap_err();
    assert!(e.to_string().contains("witness"), "{e}");
}
