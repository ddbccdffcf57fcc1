//! TAPBAK wallet backups built from tapd's regtest proofs (with synthetic
//! key locators): every version round-trips byte for byte, and corruption is
//! refused with a precise error.

#[path = "common/blobs.rs"]
mod blobs;
mod common;
use common::*;
use tapvault_codec::backup::*;
use tapvault_codec::*;

fn file_chain() -> Vec<Vec<u8>> {
    let cases = regtest_cases();
    (0..3)
        .map(|i| {
            let want = format!("valid regtest proof file index {i}");
            let c = cases
                .iter()
                .find(|c| c["comment"].as_str() == Some(&want))
                .expect("vector present");
            bytes(&c["expected"])
        })
        .collect()
}

fn blob(version: u32) -> WalletBackup {
    blobs::tapbak_from_chain(&file_chain(), version)
}

#[test]
fn every_version_round_trips_byte_for_byte() {
    for v in [VERSION_RAW, VERSION_COMPACT, VERSION_OPTIMISTIC] {
        let b = blob(v);
        let bytes = b.encode();
        assert!(bytes.starts_with(b"TAPBAK"));
        assert_eq!(&bytes[6..10], &v.to_be_bytes());
        let d = WalletBackup::decode(&bytes).unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!(d, b, "v{v}");
        assert_eq!(d.encode(), bytes, "v{v}: decode → encode");
        assert_eq!(d.assets.len(), 3);
    }
}

#[test]
fn raw_entries_carry_the_files_and_locators() {
    let d = WalletBackup::decode(&blob(VERSION_RAW).encode()).unwrap();
    let chain = file_chain();
    for (i, e) in d.assets.iter().enumerate() {
        let f = File::decode(e.proof_file.as_ref().unwrap()).unwrap();
        assert_eq!(f.len(), i + 1);
        assert_eq!(f.entries.last().unwrap().raw, chain[i]);
        let sk = e.script_key.as_ref().unwrap();
        assert_eq!(sk.pub_key, e.asset.script_key);
        assert_eq!((sk.family, sk.index), (212, i as u32));
        assert_eq!(sk.tweak.is_some(), i == 1);
        assert_eq!(
            e.anchor_internal_key.as_ref().unwrap().index,
            100 + i as u32
        );
    }
}

#[test]
fn stripped_proofs_lack_exactly_the_chain_records() {
    let chain = file_chain();
    for raw in &chain {
        let s = strip_proof(raw).unwrap();
        assert!(s.len() < raw.len());
        // A stripped proof is no longer a complete proof.
        assert!(Proof::decode(&s).is_err());
        // Stripping is idempotent and keeps the rest byte for byte.
        assert_eq!(strip_proof(&s).unwrap(), s);
    }
    let d = WalletBackup::decode(&blob(VERSION_COMPACT).encode()).unwrap();
    let hints = d.assets[2].rehydration_hints.as_ref().unwrap();
    assert_eq!(hints.len(), 3);
    assert_eq!(
        hints[2].anchor_txid,
        Proof::decode(&chain[2]).unwrap().anchor_tx.txid()
    );
}

#[test]
fn optimistic_keeps_federation_urls_and_no_proofs() {
    let d = WalletBackup::decode(&blob(VERSION_OPTIMISTIC).encode()).unwrap();
    assert_eq!(d.federation_urls[1], "tapvault.lan:10029");
    assert!(d
        .assets
        .iter()
        .all(|a| a.proof_file.is_none() && a.stripped_proof_file.is_none()));
}

#[test]
fn any_flipped_byte_is_refused() {
    let bytes = blob(VERSION_RAW).encode();
    // Every position, with a stride so the test stays quick on large blobs.
    let step = (bytes.len() / 2000).max(1);
    for i in (0..bytes.len()).step_by(step) {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let e = WalletBackup::decode(&b).unwrap_err();
        if i >= 6 {
            assert!(
                e.to_string().contains("checksum"),
                "byte {i}: {e} should be a checksum failure"
            );
        }
    }
}

#[test]
fn malformed_blobs_say_what_is_wrong() {
    let good = blob(VERSION_OPTIMISTIC).encode();
    let reseal = |mut payload: Vec<u8>| {
        let sum = tapvault_codec::primitives::sha256(&[&payload]);
        payload.extend_from_slice(&sum);
        payload
    };
    let payload = good[..good.len() - 32].to_vec();

    let e = WalletBackup::decode(b"TAPBAX").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BadMagic { .. }), "{e}");
    let e = WalletBackup::decode(&good[..20]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
    let e = WalletBackup::decode(&good[..good.len() - 1]).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");

    let mut p = payload.clone();
    p[9] = 4;
    let e = WalletBackup::decode(&reseal(p)).unwrap_err();
    assert!(
        e.to_string().contains("unsupported backup version 4"),
        "{e}"
    );

    // Trailing bytes before the checksum.
    let mut p = payload.clone();
    p.push(0);
    let e = WalletBackup::decode(&reseal(p)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::TrailingBytes(1)), "{e}");

    // Asset count larger than what follows.
    let mut p = b"TAPBAK".to_vec();
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&[0xfe, 0x00, 0x0f, 0x42, 0x40]);
    let e = WalletBackup::decode(&reseal(p)).unwrap_err();
    assert!(e.to_string().contains("asset count"), "{e}");

    // Over the URL cap.
    let mut p = b"TAPBAK".to_vec();
    p.extend_from_slice(&3u32.to_be_bytes());
    p.push(101);
    let e = WalletBackup::decode(&reseal(p)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::CountOverCap { .. }), "{e}");

    // An entry without its asset record.
    let mut p = b"TAPBAK".to_vec();
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&[1, 6, 2, 4, 0, 0, 0, 1]);
    let e = WalletBackup::decode(&reseal(p)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingRecord(0), "{e}");
    assert!(e.to_string().contains("asset 0"), "{e}");
}
