//! TAPBAK blobs built from a chain of real proofs, with synthetic key
//! locators (tapd's vectors have no backups). Shared by the codec and the
//! server tests.
#![allow(dead_code)]

use tapvault_codec::backup::*;
use tapvault_codec::*;

/// One entry per file prefix, as tapd exports one per unspent output.
fn entries(chain: &[Vec<u8>], version: u32) -> Vec<AssetBackup> {
    (0..chain.len())
        .map(|i| {
            let mut file = File::new();
            for raw in &chain[..=i] {
                file.append_raw(raw.clone());
            }
            let last = Proof::decode(&chain[i]).unwrap();
            let sk = ScriptKeyBackup {
                pub_key: last.asset.script_key,
                family: 212,
                index: i as u32,
                raw_pub_key: Some(last.inclusion_proof.internal_key),
                tweak: (i == 1).then(|| vec![0xab; 32]),
                unknown: Default::default(),
            };
            let ik = KeyDescriptorBackup {
                pub_key: last.inclusion_proof.internal_key,
                family: 212,
                index: 100 + i as u32,
                unknown: Default::default(),
            };
            let mut e = AssetBackup::from_proof_file(&file, Some(sk), Some(ik)).unwrap();
            let pk_script = e.anchor_pk_script.clone();
            e.proof_file = None;
            e.anchor_pk_script = None;
            match version {
                VERSION_RAW => {
                    e.proof_file = Some(file.encode());
                    e.anchor_pk_script = pk_script;
                }
                VERSION_COMPACT => {
                    let mut stripped = File::new();
                    let mut hints = Vec::new();
                    for raw in &chain[..=i] {
                        stripped.append_raw(strip_proof(raw).unwrap());
                        let p = Proof::decode(raw).unwrap();
                        hints.push(RehydrationHint {
                            anchor_txid: p.anchor_tx.txid(),
                            block_height: p.block_height,
                        });
                    }
                    e.anchor_pk_script = pk_script;
                    e.stripped_proof_file = Some(stripped.encode());
                    e.rehydration_hints = Some(hints);
                }
                _ => {}
            }
            e
        })
        .collect()
}

/// A backup of every output along `chain` (raw proofs, genesis first).
pub fn tapbak_from_chain(chain: &[Vec<u8>], version: u32) -> WalletBackup {
    WalletBackup {
        version,
        federation_urls: if version == VERSION_OPTIMISTIC {
            vec![
                "universe.example.com:10029".into(),
                "tapvault.lan:10029".into(),
            ]
        } else {
            vec![]
        },
        assets: entries(chain, version),
    }
}
