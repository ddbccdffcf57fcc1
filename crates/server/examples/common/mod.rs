//! Shared by the benches: distinct proofs made from a real regtest proof.

use tapvault_codec::{Proof, PubKey};
use tapvault_server::proto::universerpc as pb;

fn vectors() -> std::path::PathBuf {
    std::env::var_os("TAPVAULT_VECTORS")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

/// `n` distinct proofs: the regtest genesis proof with a fresh script key
/// each (and, with a non-empty `tag`, another asset), with their courier
/// requests. Only `decode-only` servers accept them.
pub fn synthetic_tagged(n: usize, tag: &str) -> Vec<(Vec<u8>, pb::AssetProof)> {
    let text = std::fs::read_to_string(
        vectors().join("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let raw = hex::decode(v["valid_test_cases"][0]["expected"].as_str().unwrap()).unwrap();
    let base = Proof::decode(&raw).unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    (0..n)
        .map(|i| {
            let mut p = base.clone();
            if !tag.is_empty() {
                p.asset.genesis.tag = tag.as_bytes().to_vec();
            }
            let mut sk = [0u8; 32];
            sk[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let key = bitcoin::secp256k1::SecretKey::from_slice(&sk)
                .unwrap()
                .public_key(&secp);
            p.asset.script_key = PubKey(key.serialize());
            let raw = p.encode();
            let op = p.outpoint();
            let req = pb::AssetProof {
                key: Some(pb::UniverseKey {
                    id: Some(pb::Id {
                        id: Some(pb::id::Id::AssetId(p.asset.id().to_vec())),
                        proof_type: 0,
                    }),
                    leaf_key: Some(pb::AssetKey {
                        outpoint: Some(pb::asset_key::Outpoint::OpStr(op.to_string())),
                        script_key: Some(pb::asset_key::ScriptKey::ScriptKeyBytes(
                            key.serialize().to_vec(),
                        )),
                    }),
                }),
                asset_leaf: Some(pb::AssetLeaf {
                    asset: None,
                    proof: raw.clone(),
                }),
            };
            (raw, req)
        })
        .collect()
}
