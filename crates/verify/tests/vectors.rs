//! Offline verification of tapd's proof vectors, and mutations of them that
//! each break exactly one check.

use serde_json::Value;
use std::path::PathBuf;
use tapvault_codec::{File, Proof, RawProof};
use tapvault_verify::*;

fn vectors() -> PathBuf {
    std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

fn cases(name: &str) -> Vec<(String, Vec<u8>)> {
    let p = vectors().join("taproot-assets/proof/testdata").join(name);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["comment"].as_str().unwrap().to_string(),
                hex::decode(c["expected"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn report(b: &[u8]) -> Report {
    verify_proof(&Proof::decode(b).unwrap(), Options::default())
}

#[test]
fn regtest_vectors_pass_except_placeholder_headers() {
    for (comment, b) in cases("proof_tlv_encoding_regtest.json") {
        let r = report(&b);
        let placeholder = comment.contains("split root") || comment == "valid regtest split proof";
        if placeholder {
            assert_eq!(r.failed_checks(), vec![Check::Header], "{comment}:\n{r}");
            // Everything else passes with the header check off.
            let r = verify_proof(
                &Proof::decode(&b).unwrap(),
                Options {
                    header: false,
                    ..Default::default()
                },
            );
            assert!(r.is_ok(), "{comment}:\n{r}");
        } else {
            assert!(r.is_ok(), "{comment}:\n{r}");
        }
        // The data-bearing checks really ran on this proof.
        let ran = |c: Check| {
            r.results
                .iter()
                .any(|(cc, o)| *cc == c && !matches!(o, Outcome::Skipped(_)))
        };
        assert!(ran(Check::AnchorOutput) && ran(Check::PrevOut), "{comment}");
    }
}

#[test]
fn regtest_checks_that_apply_are_not_skipped() {
    let all = cases("proof_tlv_encoding_regtest.json");
    let find = |s: &str| all.iter().find(|(c, _)| c == s).unwrap().1.clone();
    let ran = |r: &Report, c: Check| {
        r.results
            .iter()
            .any(|(cc, o)| *cc == c && matches!(o, Outcome::Passed))
    };
    let g = report(&find("valid regtest genesis proof with meta reveal"));
    assert!(ran(&g, Check::Genesis) && ran(&g, Check::Exclusion));
    let opts = Options {
        header: false,
        ..Default::default()
    };
    let sr = verify_proof(
        &Proof::decode(&find("valid regtest proof for split root")).unwrap(),
        opts,
    );
    assert!(ran(&sr, Check::Stxo) && ran(&sr, Check::Exclusion), "{sr}");
    let sp = verify_proof(
        &Proof::decode(&find("valid regtest split proof")).unwrap(),
        opts,
    );
    assert!(ran(&sp, Check::Split), "{sp}");
}

#[test]
fn generated_vectors_pass_what_they_carry() {
    for (comment, b) in cases("proof_tlv_encoding_generated.json") {
        let r = report(&b);
        let failed = r.failed_checks();
        // Synthetic proofs: their headers carry no proof-of-work and their
        // anchor txs spend nothing in particular; inclusion, genesis, group
        // key and meta must all hold.
        for c in [
            Check::AnchorOutput,
            Check::Genesis,
            Check::GroupKey,
            Check::Version,
        ] {
            assert!(!failed.contains(&c), "{comment}: {c:?} failed\n{r}");
        }
    }
}

#[test]
fn proof_file_chain_verifies() {
    let all = cases("proof_tlv_encoding_regtest.json");
    let mut f = File::new();
    for (c, b) in &all {
        if c.contains("proof file index") {
            f.append_raw(b.clone());
        }
    }
    let v = verify_file(&f, Options::default()).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].proof_type, tapvault_codec::ProofType::Issuance);
    assert_eq!(v[2].proof_type, tapvault_codec::ProofType::Transfer);
    // Out of order: the chain check fails.
    let mut bad = File::new();
    bad.append_raw(f.entries[0].raw.clone());
    bad.append_raw(f.entries[2].raw.clone());
    let e = verify_file(&bad, Options::default()).unwrap_err();
    assert_eq!(e.check(), Check::Chain, "{e}");
    // Not starting at genesis.
    let mut tail = File::new();
    tail.append_raw(f.entries[1].raw.clone());
    assert_eq!(
        verify_file(&tail, Options::default()).unwrap_err().check(),
        Check::Chain
    );
    let raws: Vec<RawProof> = f.decode_proofs().unwrap();
    assert!(verify_chain(&raws, Options::default()).is_ok());
}

/// Applies `f` to the decoded genesis proof, re-encodes, and returns the
/// checks that fail.
fn mutate(name: &str, f: impl FnOnce(&mut Proof)) -> (Vec<Check>, String) {
    let all = cases("proof_tlv_encoding_regtest.json");
    let b = &all.iter().find(|(c, _)| c == name).unwrap().1;
    let mut p = Proof::decode(b).unwrap();
    f(&mut p);
    let p = Proof::decode(&p.encode()).unwrap();
    let r = verify_proof(&p, Options::default());
    (r.failed_checks(), r.to_string())
}

const GENESIS: &str = "valid regtest genesis proof with meta reveal";
const TRANSFER: &str = "valid regtest proof file index 2";

fn reparse_tx(p: &mut Proof, f: impl FnOnce(&mut Vec<u8>)) {
    let mut raw = p.anchor_tx.raw.clone();
    f(&mut raw);
    p.anchor_tx = tapvault_codec::AnchorTx::decode(&raw).unwrap();
}

#[test]
fn mutation_tx_locktime_breaks_only_merkle() {
    let (f, r) = mutate(GENESIS, |p| {
        reparse_tx(p, |raw| {
            let n = raw.len();
            raw[n - 1] ^= 0x01;
        })
    });
    assert_eq!(f, vec![Check::Header], "{r}");
    assert!(r.contains("merkle"), "{r}");
}

#[test]
fn mutation_merkle_node_breaks_only_header() {
    let (f, r) = mutate(TRANSFER, |p| {
        if p.tx_merkle_proof.nodes.is_empty() {
            p.tx_merkle_proof.nodes.push([7; 32]);
            p.tx_merkle_proof.bits.push(true);
        } else {
            p.tx_merkle_proof.nodes[0][0] ^= 1;
        }
    });
    assert_eq!(f, vec![Check::Header], "{r}");
}

#[test]
fn mutation_header_nonce_breaks_only_pow() {
    let (f, r) = mutate(GENESIS, |p| {
        // Mainnet difficulty: no regtest header meets it.
        p.block_header.0[72..76].copy_from_slice(&0x1d00ffffu32.to_le_bytes());
    });
    assert_eq!(f, vec![Check::Header], "{r}");
    assert!(r.contains("does not meet its own target"), "{r}");
}

#[test]
fn mutation_internal_key_breaks_only_anchor_output() {
    let (f, r) = mutate(GENESIS, |p| {
        // Another valid point: the negation (flip the parity byte).
        p.inclusion_proof.internal_key.0[0] ^= 1;
        // Negation keeps the x coordinate, which BIP-341 ignores; use a
        // different key altogether instead.
        p.inclusion_proof.internal_key = p.exclusion_proofs[0].internal_key;
    });
    assert_eq!(f, vec![Check::AnchorOutput], "{r}");
}

#[test]
fn mutation_amount_breaks_only_anchor_output() {
    let (f, r) = mutate(GENESIS, |p| p.asset.amount += 1);
    assert_eq!(f, vec![Check::AnchorOutput], "{r}");
    // On a split output the amount is also in the split commitment.
    let (f, r) = mutate(TRANSFER, |p| p.asset.amount += 1);
    assert!(
        f.contains(&Check::AnchorOutput) && f.contains(&Check::Split),
        "{r}"
    );
}

#[test]
fn mutation_sibling_breaks_only_anchor_output() {
    let (f, r) = mutate(GENESIS, |p| {
        let cp = p.inclusion_proof.commitment_proof.as_mut().unwrap();
        cp.tap_sibling_preimage = Some(tapvault_codec::TapscriptPreimage::Leaf {
            leaf_version: 0xc0,
            script: vec![0x51],
        });
    });
    assert_eq!(f, vec![Check::AnchorOutput], "{r}");
}

#[test]
fn mutation_exclusion_key_breaks_only_exclusion() {
    let (f, r) = mutate(GENESIS, |p| {
        p.exclusion_proofs[0].internal_key = p.inclusion_proof.internal_key;
    });
    assert_eq!(f, vec![Check::Exclusion], "{r}");
    let (f, r) = mutate(GENESIS, |p| p.exclusion_proofs.clear());
    assert_eq!(f, vec![Check::Exclusion], "{r}");
    assert!(r.contains("has no exclusion proof"), "{r}");
}

#[test]
fn mutation_genesis_tag_breaks_only_genesis() {
    let (f, r) = mutate(GENESIS, |p| {
        p.genesis_reveal.as_mut().unwrap().tag = b"other-tag".to_vec();
    });
    assert_eq!(f, vec![Check::Genesis], "{r}");
    let (f, r) = mutate(GENESIS, |p| p.meta_reveal.as_mut().unwrap().data.push(b'!'));
    assert_eq!(f, vec![Check::Genesis], "{r}");
    assert!(r.contains("meta hash"), "{r}");
}

#[test]
fn mutation_prev_out_breaks_only_prevout_on_transfer() {
    // (At genesis prev_out is also the revealed first_prev_out, so the
    // genesis check sees it too.)
    let (f, r) = mutate(TRANSFER, |p| p.prev_out.vout += 1);
    assert_eq!(f, vec![Check::PrevOut], "{r}");
}

#[test]
fn mutation_stxo_breaks_only_stxo() {
    let name = "valid regtest proof for split root";
    let all = cases("proof_tlv_encoding_regtest.json");
    let b = &all.iter().find(|(c, _)| c == name).unwrap().1;
    let mut p = Proof::decode(b).unwrap();
    let cp = p.inclusion_proof.commitment_proof.as_mut().unwrap();
    cp.stxo_proofs[0].1.taproot_asset_proof.proof.nodes[0].hash[0] ^= 1;
    let r = verify_proof(
        &Proof::decode(&p.encode()).unwrap(),
        Options {
            header: false,
            ..Default::default()
        },
    );
    assert_eq!(r.failed_checks(), vec![Check::Stxo], "{r}");
}

#[test]
fn mutation_split_commitment_breaks_only_split() {
    let name = "valid regtest split proof";
    let all = cases("proof_tlv_encoding_regtest.json");
    let b = &all.iter().find(|(c, _)| c == name).unwrap().1;
    let mut p = Proof::decode(b).unwrap();
    let sc = p.asset.prev_witnesses[0].split_commitment.as_mut().unwrap();
    sc.proof.nodes[0].hash[0] ^= 1;
    let r = verify_proof(
        &Proof::decode(&p.encode()).unwrap(),
        Options {
            header: false,
            ..Default::default()
        },
    );
    assert_eq!(r.failed_checks(), vec![Check::Split], "{r}");
    let mut p = Proof::decode(b).unwrap();
    p.split_root_proof = None;
    let r = verify_proof(
        &Proof::decode(&p.encode()).unwrap(),
        Options {
            header: false,
            ..Default::default()
        },
    );
    assert_eq!(r.failed_checks(), vec![Check::Split], "{r}");
}

#[test]
fn mutation_group_key_breaks_only_group_key() {
    let all = cases("proof_tlv_encoding_generated.json");
    let (comment, b) = all
        .iter()
        .find(|(_, b)| Proof::decode(b).unwrap().group_key_reveal.is_some())
        .unwrap();
    let mut p = Proof::decode(b).unwrap();
    let before = verify_proof(&p, Options::default()).failed_checks();
    if let Some(tapvault_codec::GroupKeyReveal::V0 { tapscript_root, .. }) = &mut p.group_key_reveal
    {
        *tapscript_root = Some([9; 32]);
    }
    let r = verify_proof(&Proof::decode(&p.encode()).unwrap(), Options::default());
    let mut after = r.failed_checks();
    after.retain(|c| !before.contains(c));
    assert_eq!(after, vec![Check::GroupKey], "{comment}\n{r}");
}

#[test]
fn commitment_markers_match_derived_constants() {
    let p = vectors().join("derived/tap_derived_values.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let c = v["constants"].as_object().unwrap();
    let get = |prefix: &str| {
        c.iter()
            .find(|(k, _)| k.starts_with(prefix))
            .unwrap()
            .1
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        hex::encode(taproot::marker_v0()),
        get("taproot_assets_marker")
    );
    assert_eq!(hex::encode(taproot::tag_v2()), get("tap_commitment_v2_tag"));
}
