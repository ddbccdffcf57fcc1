//! Turns tapd's JSON test vectors into codec structs.
#![allow(dead_code)]

use base64::Engine;
use bitcoin::hashes::Hash;
use serde_json::Value;
use std::path::PathBuf;
use tapvault_codec::tlv::UnknownOdd;
use tapvault_codec::*;
use tapvault_mssmt::CompressedProof;

pub fn vectors() -> PathBuf {
    let dir = std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    assert!(
        dir.is_dir(),
        "test vectors not found at {} (set TAPVAULT_VECTORS)",
        dir.display()
    );
    dir
}

pub fn load(rel: &str) -> Value {
    let p = vectors().join(rel);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("json")
}

pub fn read_hex_file(rel: &str) -> Vec<u8> {
    let s = std::fs::read_to_string(vectors().join(rel)).expect("read");
    hex::decode(s.trim()).expect("hex")
}

pub fn regtest_cases() -> Vec<Value> {
    load("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json")["valid_test_cases"]
        .as_array()
        .unwrap()
        .clone()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(s(v)).expect("hex field")
}

pub fn arr32(v: &Value) -> [u8; 32] {
    bytes(v).try_into().expect("32 bytes")
}

/// Display-order hex → internal order.
pub fn rev32(v: &Value) -> [u8; 32] {
    let mut a = arr32(v);
    a.reverse();
    a
}

pub fn key(v: &Value) -> PubKey {
    PubKey::from_slice(&bytes(v)).expect("key")
}

pub fn opt_key(v: &Value) -> Option<PubKey> {
    match s(v) {
        "" => None,
        _ => Some(key(v)),
    }
}

pub fn outpoint(v: &Value) -> bitcoin::OutPoint {
    s(v).parse().expect("outpoint")
}

pub fn unknown(v: &Value) -> UnknownOdd {
    let mut u = UnknownOdd::new();
    if let Some(m) = v.as_object() {
        for (k, b) in m {
            u.insert(
                k.parse().unwrap(),
                base64::engine::general_purpose::STANDARD
                    .decode(s(b))
                    .unwrap(),
            );
        }
    }
    u
}

fn mssmt(v: &Value) -> CompressedProof {
    CompressedProof::decode(&bytes(v)).expect("compressed proof")
}

pub fn asset(v: &Value) -> Asset {
    Asset {
        version: v["version"].as_u64().unwrap() as u8,
        genesis: Genesis {
            first_prev_out: outpoint(&v["genesis_first_prev_out"]),
            tag: s(&v["genesis_tag"]).as_bytes().to_vec(),
            meta_hash: arr32(&v["genesis_meta_hash"]),
            output_index: v["genesis_output_index"].as_u64().unwrap() as u32,
            asset_type: v["genesis_type"].as_u64().unwrap() as u8,
        },
        asset_type: v["genesis_type"].as_u64().unwrap() as u8,
        amount: v["amount"].as_u64().unwrap(),
        lock_time: v["lock_time"].as_u64().unwrap(),
        relative_lock_time: v["relative_lock_time"].as_u64().unwrap(),
        prev_witnesses: v["prev_witnesses"]
            .as_array()
            .map(|ws| ws.iter().map(witness).collect())
            .unwrap_or_default(),
        split_commitment_root: v["split_commitment_root"].as_object().map(|r| SplitRoot {
            hash: arr32(&r["hash"]),
            sum: s(&r["sum"]).parse().unwrap(),
        }),
        script_version: v["script_version"].as_u64().unwrap() as u16,
        // The VM vectors leave some split assets' script keys unset.
        script_key: opt_key(&v["script_key"]).unwrap_or(PubKey::ZERO),
        group_key: v["group_key"].as_object().map(|g| key(&g["group_key"])),
        unknown: unknown(&v["unknown_odd_types"]),
    }
}

fn witness(v: &Value) -> Witness {
    Witness {
        prev_id: v["prev_id"].as_object().map(|p| PrevId {
            out_point: outpoint(&p["out_point"]),
            asset_id: arr32(&p["asset_id"]),
            script_key: PubKey(bytes(&p["script_key"]).try_into().unwrap()),
        }),
        tx_witness: v["tx_witness"]
            .as_array()
            .map(|a| a.iter().map(bytes).collect())
            .unwrap_or_default(),
        split_commitment: v["split_commitment"].as_object().map(|sc| SplitCommitment {
            proof: mssmt(&sc["proof"]),
            root_asset: Box::new(asset(&sc["root_asset"])),
        }),
    }
}

fn preimage(v: &Value) -> Option<TapscriptPreimage> {
    match s(v) {
        "" => None,
        _ => Some(TapscriptPreimage::decode(&bytes(v)).expect("preimage")),
    }
}

fn asset_proof(v: &Value) -> Option<AssetProof> {
    v.as_object().map(|a| AssetProof {
        version: a["version"].as_u64().unwrap() as u8,
        tap_key: arr32(&a["tap_key"]),
        proof: mssmt(&a["proof"]),
        unknown: unknown(&a["unknown_odd_types"]),
    })
}

fn taproot_asset_proof(v: &Value) -> TaprootAssetProof {
    TaprootAssetProof {
        version: v["version"].as_u64().unwrap() as u8,
        proof: mssmt(&v["proof"]),
        unknown: unknown(&v["unknown_odd_types"]),
    }
}

pub fn taproot_proof(v: &Value) -> TaprootProof {
    TaprootProof {
        output_index: v["output_index"].as_u64().unwrap() as u32,
        internal_key: key(&v["internal_key"]),
        commitment_proof: v["commitment_proof"].as_object().map(|c| {
            let mut unk = unknown(&c["proof"]["unknown_odd_types"]);
            unk.extend(unknown(&c["unknown_odd_types"]));
            CommitmentProof {
                asset_proof: asset_proof(&c["proof"]["asset_proof"]),
                taproot_asset_proof: taproot_asset_proof(&c["proof"]["taproot_asset_proof"]),
                tap_sibling_preimage: preimage(&c["tapscript_sibling"]),
                stxo_proofs: c["stxo_proofs"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, p)| {
                                (
                                    PubKey::from_slice(&hex::decode(k).unwrap()).unwrap(),
                                    StxoProof {
                                        asset_proof: asset_proof(&p["asset_proof"]),
                                        taproot_asset_proof: taproot_asset_proof(
                                            &p["taproot_asset_proof"],
                                        ),
                                        unknown: unknown(&p["unknown_odd_types"]),
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                unknown: unk,
            }
        }),
        tapscript_proof: v["tapscript_proof"].as_object().map(|t| TapscriptProof {
            tap_preimage_1: preimage(&t["tap_preimage_1"]),
            tap_preimage_2: preimage(&t["tap_preimage_2"]),
            bip86: t["bip86"].as_bool().unwrap_or(false),
            unknown: unknown(&t["unknown_odd_types"]),
        }),
        unknown: unknown(&v["unknown_odd_types"]),
    }
}

fn header(v: &Value) -> BlockHeader {
    let mut h = [0u8; 80];
    h[..4].copy_from_slice(&(v["version"].as_i64().unwrap() as i32).to_le_bytes());
    h[4..36].copy_from_slice(&rev32(&v["prev_block"]));
    h[36..68].copy_from_slice(&rev32(&v["merkle_root"]));
    h[68..72].copy_from_slice(&(v["timestamp"].as_u64().unwrap() as u32).to_le_bytes());
    h[72..76].copy_from_slice(&(v["bits"].as_u64().unwrap() as u32).to_le_bytes());
    h[76..80].copy_from_slice(&(v["nonce"].as_u64().unwrap() as u32).to_le_bytes());
    BlockHeader(h)
}

fn genesis(v: &Value) -> Genesis {
    Genesis {
        first_prev_out: outpoint(&v["first_prev_out"]),
        tag: s(&v["tag"]).as_bytes().to_vec(),
        meta_hash: arr32(&v["meta_hash"]),
        output_index: v["output_index"].as_u64().unwrap() as u32,
        asset_type: v["type"].as_u64().unwrap() as u8,
    }
}

pub fn proof(v: &Value) -> Proof {
    Proof {
        version: v["version"].as_u64().unwrap() as u32,
        prev_out: outpoint(&v["prev_out"]),
        block_header: header(&v["block_header"]),
        anchor_tx: AnchorTx::decode(&bytes(&v["anchor_tx"])).expect("tx"),
        tx_merkle_proof: TxMerkleProof {
            nodes: v["tx_merkle_proof"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(rev32)
                .collect(),
            bits: v["tx_merkle_proof"]["bits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect(),
        },
        asset: asset(&v["asset"]),
        inclusion_proof: taproot_proof(&v["inclusion_proof"]),
        exclusion_proofs: v["exclusion_proofs"]
            .as_array()
            .map(|a| a.iter().map(taproot_proof).collect())
            .unwrap_or_default(),
        split_root_proof: v["split_root_proof"]
            .as_object()
            .map(|_| taproot_proof(&v["split_root_proof"])),
        meta_reveal: v["meta_reveal"].as_object().map(|m| MetaReveal {
            meta_type: m["type"].as_u64().unwrap() as u8,
            data: bytes(&m["data"]),
            decimal_display: m["decimal_display"].as_u64().map(|d| d as u32),
            universe_commitments: m["universe_commitments"].as_bool().unwrap_or(false),
            canonical_universes: m["canonical_universes"]
                .as_array()
                .map(|a| a.iter().map(|u| s(u).to_string()).collect())
                .unwrap_or_default(),
            delegation_key: opt_key(&m["delegation_key"]),
            unknown: unknown(&m["unknown_odd_types"]),
        }),
        additional_inputs: v["additional_inputs"]
            .as_array()
            .map(|a| a.iter().map(|f| File::decode(&bytes(f)).unwrap()).collect())
            .unwrap_or_default(),
        challenge_witness: v["challenge_witness"]
            .as_array()
            .map(|a| a.iter().map(bytes).collect()),
        block_height: v["block_height"].as_u64().unwrap() as u32,
        genesis_reveal: v["genesis_reveal"]
            .as_object()
            .map(|_| genesis(&v["genesis_reveal"])),
        group_key_reveal: v["group_key_reveal"]
            .as_object()
            .map(|g| GroupKeyReveal::V0 {
                raw_key: key(&g["raw_key"]),
                tapscript_root: match s(&g["tapscript_root"]) {
                    "" => None,
                    _ => Some(arr32(&g["tapscript_root"])),
                },
            }),
        alt_leaves: v["alt_leaves"]
            .as_array()
            .map(|a| a.iter().map(asset).collect())
            .unwrap_or_default(),
        unknown: unknown(&v["unknown_odd_types"]),
    }
}

pub fn address(v: &Value) -> Address {
    let id: [u8; 32] = match s(&v["asset_id"]) {
        "" => [0; 32],
        _ => arr32(&v["asset_id"]),
    };
    Address {
        network: AddressNetwork::from_hrp(s(&v["chain_params_hrp"])).expect("hrp"),
        version: v["version"].as_u64().unwrap() as u8,
        asset_version: v["asset_version"].as_u64().unwrap() as u8,
        asset_id: (id != [0; 32]).then_some(id),
        group_key: opt_key(&v["group_key"]),
        script_key: key(&v["script_key"]),
        internal_key: key(&v["internal_key"]),
        tapscript_sibling: preimage(&v["tapscript_sibling"]),
        amount: v["amount"].as_u64().unwrap(),
        proof_courier_addr: s(&v["proof_courier_addr"]).to_string(),
        unknown: unknown(&v["unknown_odd_types"]),
    }
}

pub fn txid_internal(h: &str) -> [u8; 32] {
    h.parse::<bitcoin::Txid>().unwrap().to_byte_array()
}
