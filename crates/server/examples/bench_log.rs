//! The receipt log's cost, measured against itself in one run:
//! `cargo run --release -p tapvault-server --example bench_log [N] [K] [AUDIT_ITEMS]`
//!
//! 1. InsertProof throughput (N distinct proofs, K clients, decode-only)
//!    with the log on, off (its triggers disabled), and on again; the ratio
//!    is what the log costs.
//! 2. Head signing: heads/s when every head covers a few new entries.
//! 3. An audit of AUDIT_ITEMS items (addresses, written in one statement):
//!    every entry listed and hashed into the signed root, every item listed
//!    and hashed; and, when a release `tapvault` binary sits next to this
//!    example, `tapvault audit` itself, end to end.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;
use tapvault_api::proto::tapvault_v1 as v1;
use tapvault_api::receipts as rc;

const TRIGGERS: [&str; 4] = [
    "universe_leaves_log ON universe_leaves",
    "wallet_backups_log ON wallet_backups",
    "addresses_log ON addresses",
    "tapscripts_log ON tapscripts",
];

async fn set_log(pool: &sqlx::PgPool, on: bool) {
    for t in TRIGGERS {
        let (name, table) = t.split_once(" ON ").unwrap();
        let q = format!(
            "ALTER TABLE {table} {} TRIGGER {name}",
            if on { "ENABLE" } else { "DISABLE" }
        );
        sqlx::query(sqlx::AssertSqlSafe(q))
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn ingest(addr: &str, n: usize, k: usize, tag: &str) -> f64 {
    common::ingest(addr, &[], Arc::new(common::synthetic(n, tag)), k).await
}

#[tokio::main]
async fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (n, k, audit_items) = (arg(1, 3000), arg(2, 16), arg(3, 100_000));
    let srv = common::server("log", &[], |c| {
        c.auth = false;
        c.max_db_connections = (k as u32 + 4).max(8);
    })
    .await;
    let running = &srv.running;
    let pool = running.db.pool.clone();
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();

    // 1. Ingest, log on / off / on (each run a fresh asset of N leaves).
    let addr = running.grpc_addr.to_string();
    let on1 = ingest(&addr, n, k, "log-on-1").await;
    set_log(&pool, false).await;
    let off = ingest(&addr, n, k, "log-off").await;
    set_log(&pool, true).await;
    let on2 = ingest(&addr, n, k, "log-on-2").await;
    let on = (on1 + on2) / 2.0;
    println!("| scenario | rate | ratio to no log |");
    println!("|---|---|---|");
    println!("| InsertProof, no log ({n} proofs, {k} clients) | {off:.0} proofs/s | 1.00 |");
    println!(
        "| InsertProof, with the log (mean of {on1:.0} and {on2:.0}) | {on:.0} proofs/s | {:.2} |",
        on / off
    );

    // 2. Head signing: a few entries, one head, again.
    let log_ch = tapvault_api::client::log_client(ch.clone(), None).unwrap();
    let mut log = log_ch.clone();
    let (mut b, _) = tapvault_api::client::clients(ch.clone(), None).unwrap();
    let heads = 200;
    let start = Instant::now();
    for i in 0..heads {
        b.push_wallet_backup(v1::PushWalletBackupRequest {
            backup: format!("bench blob {i}").into_bytes(),
            opaque: true,
            source: String::new(),
        })
        .await
        .unwrap();
        log.get_tree_head(v1::GetTreeHeadRequest { fresh: true })
            .await
            .unwrap();
    }
    let per = start.elapsed() / heads;
    println!(
        "| push + fresh signed head, {heads} times | {:.0} heads/s ({per:?} each, push included) | |",
        1.0 / per.as_secs_f64()
    );

    // 3. An audit of a tenant with AUDIT_ITEMS more items.
    let t0 = Instant::now();
    sqlx::query(
        "INSERT INTO addresses (tenant_id, encoded, network, version, asset_version, script_key,
            script_key_x, internal_key, internal_key_x, amount, proof_courier_addr)
         SELECT (SELECT id FROM tenants WHERE name = 'default'), 'tapbench' || g, 'regtest', 1, 0,
                '\\x02'::BYTEA || sha256(int8send(g)), sha256(int8send(g)),
                '\\x02'::BYTEA || sha256(int8send(-g)), sha256(int8send(-g)), 1, ''
         FROM generate_series(1, $1) g",
    )
    .bind(audit_items as i64)
    .execute(&pool)
    .await
    .unwrap();
    println!(
        "| {audit_items} items written and logged in one statement | {:?} | |",
        t0.elapsed()
    );
    let t0 = Instant::now();
    let h = log
        .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
        .await
        .unwrap()
        .into_inner();
    let signed = t0.elapsed();
    let head = rc::verify_head(&h, Some(&running.log_key)).unwrap();
    let mut entries = Vec::new();
    while (entries.len() as u64) < head.head.tree_size {
        let page = log
            .list_log_entries(v1::ListLogEntriesRequest {
                from_index: entries.len() as u64,
                limit: 10_000,
            })
            .await
            .unwrap()
            .into_inner();
        for e in &page.entries {
            entries.push(rc::entry_of(e).unwrap());
        }
    }
    assert_eq!(rc::root_of_entries(&entries), head.head.root_hash);
    let mut served = 0usize;
    let mut offset = 0;
    loop {
        let r = b
            .list_addresses(v1::ListAddressesRequest {
                key: vec![],
                offset,
                limit: 16_384,
            })
            .await
            .unwrap()
            .into_inner();
        served += r.addresses.len();
        for a in &r.addresses {
            std::hint::black_box(tapvault_codec::log::address_content_hash(&a.encoded));
        }
        if !r.has_more {
            break;
        }
        offset += r.addresses.len() as i32;
    }
    println!(
        "| audit core: head over {} entries (signed in {signed:?}), every entry into the root, {served} addresses listed | {:?} | |",
        entries.len(),
        t0.elapsed()
    );
    match common::tapvault_bin() {
        Some(bin) => {
            let t0 = Instant::now();
            let o = std::process::Command::new(&bin)
                .args(["audit", "--plaintext", "--json", "--server"])
                .arg(running.grpc_addr.to_string())
                .output()
                .unwrap();
            let took = t0.elapsed();
            let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            // ok = false is expected here: the proofs pushed while the log
            // was switched off are served but not logged, and audit says so.
            println!(
                "| `tapvault audit` end to end: {} entries, {} served items, {} problems (the no-log phase's proofs) | {took:?} | |",
                rep["entries"],
                rep["items_served"],
                rep["problems"].as_array().map(|p| p.len()).unwrap_or(0)
            );
        }
        None => println!("(build `tapvault` in the same profile to time `tapvault audit` itself)"),
    }
    srv.stop().await;
}
