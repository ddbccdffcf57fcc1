//! tapd's encoding vectors: JSON → bytes equals `expected`; bytes → decode →
//! encode is byte-identical; derived values match.

mod common;
use common::*;
use tapvault_codec::*;

fn proof_cases(rel: &str) -> usize {
    let v = load(rel);
    let mut n = 0;
    for case in v["valid_test_cases"].as_array().unwrap() {
        let comment = case["comment"].as_str().unwrap_or("");
        let expected = bytes(&case["expected"]);
        let built = proof(&case["proof"]);
        assert_eq!(
            hex::encode(built.encode()),
            hex::encode(&expected),
            "JSON→bytes: {comment}"
        );
        let decoded = Proof::decode(&expected).unwrap_or_else(|e| panic!("{comment}: {e}"));
        assert_eq!(decoded, built, "decode equals JSON: {comment}");
        assert_eq!(decoded.encode(), expected, "round trip: {comment}");
        let raw = RawProof::decode(&expected).unwrap();
        assert_eq!(raw.raw, expected);
        n += 1;
    }
    n
}

#[test]
fn proof_generated_vectors() {
    assert_eq!(
        proof_cases("taproot-assets/proof/testdata/proof_tlv_encoding_generated.json"),
        14
    );
}

#[test]
fn proof_regtest_vectors() {
    assert_eq!(
        proof_cases("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json"),
        7
    );
}

#[test]
fn asset_vectors() {
    let v = load("taproot-assets/asset/testdata/asset_tlv_encoding_generated.json");
    let cases = v["valid_test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let expected = bytes(&case["expected"]);
        let built = asset(&case["asset"]);
        assert_eq!(
            hex::encode(built.encode()),
            hex::encode(&expected),
            "{}",
            case["comment"]
        );
        let decoded = Asset::decode(&expected).unwrap();
        assert_eq!(decoded, built);
        assert_eq!(decoded.encode(), expected);
    }
}

#[test]
fn asset_hex_file() {
    let b = read_hex_file("taproot-assets/asset/testdata/asset.hex");
    let a = Asset::decode(&b).unwrap();
    assert_eq!(a.encode(), b);
    assert_eq!(a.amount, 5002);
    assert!(hex::encode(a.id()).starts_with("17e13775"));
    assert!(hex::encode(a.id()).ends_with("55eb"));
}

#[test]
fn address_vectors() {
    let v = load("taproot-assets/address/testdata/address_tlv_encoding_generated.json");
    let cases = v["valid_test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let expected = case["expected"].as_str().unwrap();
        let built = address(&case["address"]);
        assert_eq!(built.encode().unwrap(), expected, "{}", case["comment"]);
        let decoded =
            Address::decode(expected).unwrap_or_else(|e| panic!("{}: {e}", case["comment"]));
        assert_eq!(decoded, built);
        assert_eq!(decoded.encode().unwrap(), expected);
    }
}

#[test]
fn burn_key_vectors() {
    let v = load("taproot-assets/asset/testdata/asset_burn_key_generated.json");
    let cases = v["valid_test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let p = &case["prev_id"];
        let prev = PrevId {
            out_point: outpoint(&p["out_point"]),
            asset_id: arr32(&p["asset_id"]),
            script_key: PubKey(bytes(&p["script_key"]).try_into().unwrap()),
        };
        assert_eq!(
            hex::encode(burn_key(&prev).unwrap()),
            case["expected"].as_str().unwrap()
        );
    }
}

#[test]
fn derived_values_of_regtest_proofs() {
    let d = load("derived/tap_derived_values.json");
    let derived = d["regtest_proof_derivations"]["cases"].as_array().unwrap();
    let cases = regtest_cases();
    assert_eq!(derived.len(), cases.len());
    for (case, want) in cases.iter().zip(derived) {
        assert_eq!(case["comment"], want["comment"]);
        let p = Proof::decode(&bytes(&case["expected"])).unwrap();
        let info = universe_leaf_info(&p);
        assert_eq!(
            hex::encode(p.asset.id()),
            want["asset_id"].as_str().unwrap()
        );
        assert_eq!(
            info.anchor.to_string(),
            want["anchor_outpoint"].as_str().unwrap()
        );
        assert_eq!(
            p.asset.script_key.to_hex(),
            want["script_key"].as_str().unwrap()
        );
        let lk = want
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("universe_leaf_key"))
            .unwrap()
            .1;
        assert_eq!(hex::encode(info.leaf_key), lk.as_str().unwrap());
        assert_eq!(
            hex::encode(info.subject.id_bytes()),
            want["universe_id_bytes"].as_str().unwrap()
        );
        assert_eq!(
            info.proof_type.as_str(),
            want["proof_type"].as_str().unwrap()
        );
        assert_eq!(info.sum, want["universe_leaf_sum"].as_u64().unwrap());
    }
    let c = &d["constants"];
    let zero = PrevId::zero();
    let zk = c
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("zero_prev_id_hash"))
        .unwrap()
        .1;
    assert_eq!(hex::encode(zero.hash()), zk.as_str().unwrap());
    let empty_id = c
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("empty_genesis_asset_id"))
        .unwrap()
        .1;
    assert_eq!(
        hex::encode(Genesis::default().asset_id()),
        empty_id.as_str().unwrap()
    );
}

#[test]
fn meta_hashes_match_genesis() {
    for rel in [
        "taproot-assets/proof/testdata/proof_tlv_encoding_generated.json",
        "taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json",
    ] {
        for case in load(rel)["valid_test_cases"].as_array().unwrap() {
            let p = Proof::decode(&bytes(&case["expected"])).unwrap();
            if let Some(m) = &p.meta_reveal {
                assert_eq!(
                    m.meta_hash(),
                    p.asset.genesis.meta_hash,
                    "{}",
                    case["comment"]
                );
            }
        }
    }
}

#[test]
fn standalone_proof_files_decode() {
    let b = read_hex_file("taproot-assets/proof/testdata/proof.hex");
    let p = Proof::decode(&b).unwrap();
    assert_eq!(p.encode(), b);
    let big = read_hex_file("taproot-assets/proof/testdata/proof-invalid-json-meta-reveal.hex");
    assert_eq!(big.len(), 383_462);
    let p = Proof::decode(&big).unwrap();
    let m = p.meta_reveal.as_ref().expect("meta reveal");
    assert_eq!(m.meta_type, 1);
    assert!(serde_json::from_slice::<serde_json::Value>(&m.data).is_err());
    assert_eq!(p.encode(), big);
}

#[test]
fn fuzz_seed_errors_without_panic() {
    let text = std::fs::read_to_string(
        vectors().join("taproot-assets/proof/testdata/fuzz/FuzzProof/bd3d7cb5ef5fb7a4"),
    )
    .unwrap();
    // `go test fuzz v1` format: a line `[]byte("...")` with Go escapes.
    let line = text
        .lines()
        .find(|l| l.starts_with("[]byte("))
        .expect("seed line");
    let body = &line["[]byte(\"".len()..line.len() - 2];
    let mut bytes = b"TAPP".to_vec();
    bytes.extend(unescape_go(body));
    assert!(Proof::decode(&bytes).is_err());
}

fn unescape_go(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 4;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                }
                b't' => {
                    out.push(b'\t');
                    i += 2;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                }
                b'0'..=b'7' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap());
                    i += 4;
                }
                c => {
                    out.push(c);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn proof_file_build_and_decode() {
    let cases = regtest_cases();
    let mut f = File::new();
    for c in cases
        .iter()
        .filter(|c| c["comment"].as_str().unwrap().contains("proof file index"))
    {
        f.append_raw(bytes(&c["expected"]));
    }
    assert_eq!(f.len(), 3);
    let enc = f.encode();
    let back = File::decode(&enc).unwrap();
    assert_eq!(back, f);
    assert_eq!(back.encode(), enc);
    let proofs = back.decode_proofs().unwrap();
    // Each proof spends the previous one's anchor outpoint.
    for w in proofs.windows(2) {
        assert_eq!(w[1].proof.prev_out, w[0].proof.outpoint());
    }
    match ProofBlob::decode(&enc).unwrap() {
        ProofBlob::File(ff) => assert_eq!(ff.len(), 3),
        _ => panic!("expected a file"),
    }
}
