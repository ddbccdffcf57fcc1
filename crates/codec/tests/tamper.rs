//! Tampered inputs are rejected with the right error, and arbitrary bytes
//! never panic the decoders.

mod common;
use common::*;
use proptest::prelude::*;
use tapvault_codec::tlv::{write_bigsize, Reader, Stream};
use tapvault_codec::*;

fn genesis_proof() -> Vec<u8> {
    bytes(&regtest_cases()[0]["expected"])
}

/// Splits a proof into its top-level records (type, value).
fn records(p: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut r = Reader::new(&p[4..]);
    let mut out = Vec::new();
    while !r.is_empty() {
        let t = r.bigsize().unwrap();
        let l = r.bigsize().unwrap();
        out.push((t, r.take(l).unwrap().to_vec()));
    }
    out
}

fn assemble(recs: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"TAPP".to_vec();
    for (t, v) in recs {
        write_bigsize(&mut out, *t);
        write_bigsize(&mut out, v.len() as u64);
        out.extend_from_slice(v);
    }
    out
}

#[test]
fn bad_magic() {
    let mut p = genesis_proof();
    p[3] = b'X';
    let e = Proof::decode(&p).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("bad magic"));
}

#[test]
fn truncated_everywhere_is_an_error() {
    let p = genesis_proof();
    // Every strict prefix fails (a clean EOF is only possible at a record
    // boundary, and then a required record is missing).
    for cut in (0..p.len()).step_by(7) {
        assert!(Proof::decode(&p[..cut]).is_err(), "prefix {cut} decoded");
    }
    let e = Proof::decode(&p[..p.len() - 1]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
}

#[test]
fn duplicate_and_reordered_records() {
    let recs = records(&genesis_proof());
    let mut dup = recs.clone();
    dup.insert(1, recs[0].clone());
    let e = Proof::decode(&assemble(&dup)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TypesNotIncreasing { prev: 0, got: 0 });
    let mut swapped = recs.clone();
    swapped.swap(1, 2);
    let e = Proof::decode(&assemble(&swapped)).unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::TypesNotIncreasing { .. }),
        "{e}"
    );
}

#[test]
fn unknown_even_rejected_unknown_odd_kept() {
    let recs = records(&genesis_proof());
    let mut even = recs.clone();
    even.push((1000, vec![1, 2, 3]));
    assert_eq!(
        Proof::decode(&assemble(&even)).unwrap_err().kind,
        ErrorKind::UnknownEvenType(1000)
    );
    let mut odd = recs.clone();
    odd.push((1001, vec![1, 2, 3]));
    let b = assemble(&odd);
    let p = Proof::decode(&b).unwrap();
    assert_eq!(p.unknown.get(&1001), Some(&vec![1, 2, 3]));
    assert_eq!(p.encode(), b);
}

#[test]
fn non_minimal_varint() {
    let recs = records(&genesis_proof());
    // Re-encode the version record's type (0) as 0xfd 0x00 0x00.
    let mut b = b"TAPP".to_vec();
    b.extend_from_slice(&[0xfd, 0x00, 0x00]);
    let rest = assemble(&recs);
    b.extend_from_slice(&rest[4..][1..]);
    let e = Proof::decode(&b).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonCanonicalVarInt);
}

#[test]
fn bad_key_is_named() {
    let mut recs = records(&genesis_proof());
    // Inclusion proof (12): internal key record 2 follows output index 0.
    let ip = recs.iter_mut().find(|(t, _)| *t == 12).unwrap();
    let pos = ip.1.windows(2).position(|w| w == [2, 33]).unwrap();
    ip.1[pos + 2] = 0x05; // not 02/03
    let e = Proof::decode(&assemble(&recs)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadKey);
    assert_eq!(
        e.path,
        vec!["proof", "inclusion_proof(12)", "internal_key(2)"]
    );
}

#[test]
fn wrong_fixed_length() {
    let mut recs = records(&genesis_proof());
    recs.iter_mut().find(|(t, _)| *t == 22).unwrap().1.push(0);
    let e = Proof::decode(&assemble(&recs)).unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::WrongLength {
                expected: 4,
                got: 5
            }
        ),
        "{e}"
    );
    assert_eq!(e.path, vec!["proof", "block_height(22)"]);
}

#[test]
fn missing_required_record() {
    let recs: Vec<_> = records(&genesis_proof())
        .into_iter()
        .filter(|(t, _)| *t != 10)
        .collect();
    assert_eq!(
        Proof::decode(&assemble(&recs)).unwrap_err().kind,
        ErrorKind::MissingRecord(10)
    );
}

#[test]
fn length_over_cap() {
    // A P2P sub-stream record longer than 65535 bytes.
    let mut s = vec![0u8, 4, 0, 0, 0, 0, 2];
    write_bigsize(&mut s, 70_000);
    s.extend(vec![0u8; 70_000]);
    let e = TaprootProof::decode(&s).unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::LengthOverCap {
                len: 70_000,
                cap: 65535
            }
        ),
        "{e}"
    );
    // A count claiming more items than bytes left is refused before allocating.
    let mut r = Reader::new(&[0xfe, 0x00, 0x01, 0x00, 0x00]);
    assert!(r.count(u64::MAX, 1).is_err());
    assert!(Stream::parse(&[1, 0xff, 0, 0, 0, 1, 0, 0, 0, 0], u64::MAX).is_err());
}

#[test]
fn file_hash_chain_and_flip() {
    let mut f = File::new();
    for c in regtest_cases().iter().skip(4) {
        f.append_raw(bytes(&c["expected"]));
    }
    let enc = f.encode();
    // Flip a byte inside the second proof: the chain breaks at index 1.
    let second = 4 + 4 + 1 + 3 + f.entries[0].raw.len() + 32 + 3 + 100;
    let mut bad = enc.clone();
    bad[second] ^= 1;
    let e = File::decode(&bad).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HashChainMismatch { index: 1 });
    assert!(e.to_string().contains("invalid proof file checksum"));
    // A flipped stored hash also fails.
    let mut bad = enc.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(
        File::decode(&bad).unwrap_err().kind,
        ErrorKind::HashChainMismatch { index: 2 }
    );
    // Truncated and trailing.
    assert!(File::decode(&enc[..enc.len() - 5]).is_err());
    let mut trailing = enc.clone();
    trailing.push(0);
    assert_eq!(
        File::decode(&trailing).unwrap_err().kind,
        ErrorKind::TrailingBytes(1)
    );
}

#[test]
fn address_tampering() {
    let v = load("taproot-assets/address/testdata/address_tlv_encoding_generated.json");
    let good = v["valid_test_cases"][0]["expected"]
        .as_str()
        .unwrap()
        .to_string();
    // Flip one data character: checksum failure.
    let mut chars: Vec<char> = good.chars().collect();
    let i = 20;
    chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
    let bad: String = chars.into_iter().collect();
    assert!(matches!(
        Address::decode(&bad).unwrap_err().kind,
        ErrorKind::Bech32(_)
    ));
    // Wrong network prefix with a valid checksum.
    let a = Address::decode(&good).unwrap();
    let payload = a.encode_payload();
    let other =
        bech32::encode::<bech32::Bech32m>(bech32::Hrp::parse("tapxx").unwrap(), &payload).unwrap();
    assert_eq!(
        Address::decode(&other).unwrap_err().kind,
        ErrorKind::UnknownHrp("tapxx".into())
    );
    // Plain bech32 (not bech32m) checksum is refused.
    let legacy =
        bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("taprt").unwrap(), &payload).unwrap();
    assert!(Address::decode(&legacy).is_err());
    // Version 3 is unknown.
    let mut v3 = a.clone();
    v3.version = 3;
    let s = v3.encode().unwrap();
    assert!(Address::decode(&s)
        .unwrap_err()
        .to_string()
        .contains("unknown address version 3"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut tapp = b"TAPP".to_vec();
        tapp.extend_from_slice(&data);
        let _ = Proof::decode(&tapp);
        let mut tapf = b"TAPF".to_vec();
        tapf.extend_from_slice(&data);
        let _ = File::decode(&tapf);
        let _ = Asset::decode(&data);
        let _ = Address::decode_payload(AddressNetwork::Regtest, &data);
        let _ = TaprootProof::decode(&data);
        let _ = MetaReveal::decode(&data);
    }

    #[test]
    fn mutated_vectors_never_panic(idx in 0usize..7, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut p = bytes(&regtest_cases()[idx]["expected"]);
        let i = pos.index(p.len());
        p[i] = byte;
        // Reaching the end without a panic is the property under test.
        if let Ok(d) = Proof::decode(&p) {
            let _ = d.encode();
        }
    }
}
