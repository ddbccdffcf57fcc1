//! Offline verification throughput on one core over the regtest vectors:
//! `cargo run --release -p tapvault-verify --example bench_verify [ROUNDS]`.

use std::path::PathBuf;
use std::time::Instant;
use tapvault_codec::Proof;
use tapvault_verify::{verify_chain, verify_proof, Options};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let dir = std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    let text = std::fs::read_to_string(
        dir.join("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let raws: Vec<Vec<u8>> = v["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| hex::decode(c["expected"].as_str().unwrap()).unwrap())
        .collect();

    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..rounds {
        for r in &raws {
            let p = Proof::decode(r).unwrap();
            std::hint::black_box(verify_proof(&p, Options::default()));
            n += 1;
        }
    }
    let el = start.elapsed();
    println!(
        "decode + verify: {n} proofs in {:.2}s = {:.0} proofs/s on one core ({:.1} µs/proof)",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64
    );
    let decoded: Vec<Proof> = raws.iter().map(|r| Proof::decode(r).unwrap()).collect();
    let start = Instant::now();
    for _ in 0..rounds {
        for p in &decoded {
            std::hint::black_box(verify_proof(p, Options::default()));
        }
    }
    let el = start.elapsed();
    println!("verify only: {:.0} proofs/s", n as f64 / el.as_secs_f64());

    // The regtest file chain (genesis → 2 transfers) through the VM, vs the
    // same chain without it: the VM's cost per proof.
    let chain: Vec<tapvault_codec::RawProof> = v["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["comment"].as_str().unwrap().contains("proof file index"))
        .map(|c| {
            tapvault_codec::RawProof::decode(&hex::decode(c["expected"].as_str().unwrap()).unwrap())
                .unwrap()
        })
        .collect();
    let time = |vm: bool| {
        let opts = Options { header: true, vm };
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(verify_chain(&chain, opts).unwrap());
        }
        (rounds * chain.len()) as f64 / start.elapsed().as_secs_f64()
    };
    let (plain, with_vm) = (time(false), time(true));
    println!(
        "file chain: {plain:.0} proofs/s without the VM, {with_vm:.0} proofs/s with it ({:.2}x)",
        with_vm / plain
    );
}
