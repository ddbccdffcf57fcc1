//! In-memory MS-SMT throughput: `cargo run --release -p tapvault-mssmt --example bench_mssmt [N]`.

use std::time::Instant;
use tapvault_mssmt::{LeafUpdate, MemTree};

fn keys(n: usize) -> Vec<[u8; 32]> {
    // xorshift: deterministic, no dependency.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            for c in k.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            k
        })
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let ks = keys(n);
    let value = vec![0xab; 64];

    let mut t = MemTree::new();
    let start = Instant::now();
    for k in &ks {
        t.insert(*k, &value, 1).expect("insert");
    }
    let one = start.elapsed();
    let root = t.root().unwrap();
    println!(
        "one-by-one: {n} leaves in {:.3}s = {:.0} leaves/s; {} nodes stored, {:.2} node writes/leaf",
        one.as_secs_f64(),
        n as f64 / one.as_secs_f64(),
        t.store().node_count(),
        t.store().nodes_written() as f64 / n as f64
    );

    let mut b = MemTree::new();
    let start = Instant::now();
    for chunk in ks.chunks(1000) {
        let ups = chunk
            .iter()
            .map(|k| LeafUpdate::new(*k, &value, 1))
            .collect();
        b.apply(ups).expect("batch");
    }
    let batched = start.elapsed();
    assert_eq!(b.root().unwrap(), root);
    println!(
        "batches of 1000: {n} leaves in {:.3}s = {:.0} leaves/s; {:.2} node writes/leaf",
        batched.as_secs_f64(),
        n as f64 / batched.as_secs_f64(),
        b.store().nodes_written() as f64 / n as f64
    );

    let start = Instant::now();
    for k in ks.iter().take(10_000) {
        let p = t.proof(k).expect("proof");
        std::hint::black_box(p.compress().encode());
    }
    let pe = start.elapsed();
    println!(
        "proofs: {:.0} compressed proofs/s",
        10_000f64.min(n as f64) / pe.as_secs_f64()
    );
}
