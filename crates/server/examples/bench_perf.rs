//! The ingest and read figures of docs/PERFORMANCE.md, one table per run,
//! every rate also as a ratio to raw PostgreSQL measured in the same run:
//! `cargo run --release -p tapvault-server --example bench_perf [N] [LEVEL]`
//!
//! N (default 4000) distinct 1,039-byte proofs per scenario, 16 clients,
//! plaintext, tokens on, the server verifying at LEVEL (default `full`; also
//! `decode-only`, `no-header`). The proofs are the regtest genesis proof
//! with new script keys or asset tags, re-anchored by the forge so that each
//! passes full verification; proof files are a forged genesis and 100 signed
//! transfers. `TAPVAULT_BENCH_BIG=1` adds the 100k-leaf point;
//! `TAPVAULT_BENCH_EXPERIMENT='<SQL>'` runs that SQL on the fresh database
//! first (to price a trigger or an index: docs/PERFORMANCE.md).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tapvault_api::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::proto::universerpc as pb;

const K: usize = 16;

struct Row {
    name: String,
    value: String,
    ratio: Option<f64>,
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Pushes `items` with K clients spread over `tokens` (one tenant each).
async fn push(addr: &str, tokens: &[String], items: common::Items) -> f64 {
    common::ingest(addr, tokens, items, K).await
}

/// (busy, all) CPU time of the whole machine so far, in clock ticks
/// (`/proc/stat`; `None` elsewhere).
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let all: u64 = ticks.iter().sum();
    // idle and iowait
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((all - idle, all))
}

/// [`push`], with the share of the machine's CPU time that was busy while
/// it ran (server, PostgreSQL and clients together): a rate with the
/// machine near 100 % busy is bound by CPU, one well below by waiting.
async fn push_busy(addr: &str, tokens: &[String], items: common::Items) -> (f64, String) {
    let before = cpu_ticks();
    let rate = push(addr, tokens, items).await;
    let busy = match (before, cpu_ticks()) {
        (Some((b0, a0)), Some((b1, a1))) if a1 > a0 => {
            format!(
                ", machine {:.0} % busy",
                100.0 * (b1 - b0) as f64 / (a1 - a0) as f64
            )
        }
        _ => String::new(),
    };
    (rate, busy)
}

/// Proofs/s of the server's own checks (decode, verify at `level`, the
/// leaf) on every core, nothing else running.
fn verify_alone(items: &common::Items, level: tapvault_server::VerifyLevel) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..cores {
            s.spawn(move || {
                for (raw, _) in items.iter().skip(c).step_by(cores) {
                    tapvault_server::checks::prepare(raw, level).unwrap();
                }
            });
        }
    });
    items.len() as f64 / start.elapsed().as_secs_f64()
}

/// Info calls/s with K clients (closed loop, `n` calls in all).
async fn info_rate(addr: &str, token: &str, n: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..K {
        let ch = client::channel(addr, &Trust::Plaintext).unwrap();
        let (_, mut u) = client::clients(ch, Some(token)).unwrap();
        tasks.push(tokio::spawn(async move {
            for _ in (w..n).step_by(K) {
                u.info(pb::InfoRequest {}).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Calls `f` at `rps` for `secs`; latency percentiles.
async fn paced<F, Fut>(rps: u64, secs: u64, f: F) -> (Duration, Duration, usize)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut i = 0;
    let mut tasks = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        let (f, lat) = (f.clone(), lat.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            f(i).await;
            lat.lock().unwrap().push(t.elapsed());
        }));
        i += 1;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut v = lat.lock().unwrap().clone();
    let n = v.len();
    (pct(&mut v, 0.5), pct(&mut v, 0.99), n)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let level: tapvault_server::VerifyLevel = std::env::args()
        .nth(2)
        .map(|s| s.parse().expect("LEVEL"))
        .unwrap_or(tapvault_server::VerifyLevel::Full);
    let big = std::env::var("TAPVAULT_BENCH_BIG").is_ok();
    let tenants = ["t0", "t1", "t2", "t3"];
    let srv = common::server("perf", &tenants, |c| {
        c.max_db_connections = 24;
        c.verify = level;
    })
    .await;
    println!("verify {level:?}, {n} proofs per scenario, {K} clients");
    let running = &srv.running;
    let addr = srv.addr();
    let mut tokens = Vec::new();
    for t in tenants {
        tokens.push(srv.token(t).await);
    }
    let mut rows = Vec::new();
    if let Ok(sql) = std::env::var("TAPVAULT_BENCH_EXPERIMENT") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&running.db.pool)
            .await
            .unwrap();
    }

    // Raw PostgreSQL: the same bytes, one row and one commit each, K
    // connections. Every ratio below is against this.
    let items = Arc::new(common::forged(n, "raw"));
    let raw = common::raw_insert_rate(&running.db.pool, items, K).await;
    rows.push(Row {
        name: format!("raw PostgreSQL, one row + commit each ({n} rows)"),
        value: format!("{raw:.0} rows/s"),
        ratio: Some(1.0),
    });

    // What the machine allows InsertProof at all, before any storing: the
    // verifier alone on every core, and the RPC alone (Info: auth, HTTP/2,
    // no verification, no database) with the same clients. Each proof costs
    // both, so InsertProof can never pass the third, derived row.
    let one_items = Arc::new(common::forged(n, "one"));
    let verify_rate = verify_alone(&one_items, level);
    let rpc_rate = info_rate(&addr, &tokens[0], n).await;
    let bound = 1.0 / (1.0 / verify_rate + 1.0 / rpc_rate);
    rows.push(Row {
        name: format!("ceiling: verification alone ({level:?}), every core, no RPC or database"),
        value: format!("{verify_rate:.0} proofs/s"),
        ratio: Some(verify_rate / raw),
    });
    rows.push(Row {
        name: format!("ceiling: the RPC alone (Info, {K} clients, tokens on)"),
        value: format!("{rpc_rate:.0} calls/s"),
        ratio: Some(rpc_rate / raw),
    });
    rows.push(Row {
        name: "ceiling: verification + RPC sharing the cores, no database (derived)".into(),
        value: format!("{bound:.0} proofs/s"),
        ratio: Some(bound / raw),
    });

    // One asset, one tenant.
    let (one, one_busy) = push_busy(&addr, &tokens[..1], one_items).await;
    rows.push(Row {
        name: format!("InsertProof, 1 tenant, 1 asset ({n} leaves)"),
        value: format!("{one:.0} proofs/s{one_busy}"),
        ratio: Some(one / raw),
    });

    // Many assets, 10 leaves each.
    let mut many = Vec::new();
    for a in 0..n / 10 {
        many.extend(common::forged(10, &format!("asset-{a}")));
    }
    let (many_rate, many_busy) = push_busy(&addr, &tokens[..1], Arc::new(many)).await;
    rows.push(Row {
        name: format!("InsertProof, 1 tenant, {} assets × 10 leaves", n / 10),
        value: format!("{many_rate:.0} proofs/s{many_busy}"),
        ratio: Some(many_rate / raw),
    });

    // Four tenants at once (the clients spread over them).
    let (four, four_busy) = push_busy(&addr, &tokens, Arc::new(common::forged(n, "four"))).await;
    rows.push(Row {
        name: "InsertProof, 4 tenants at once, 1 asset each".into(),
        value: format!(
            "{four:.0} proofs/s ({:.2}× one tenant){four_busy}",
            four / one
        ),
        ratio: Some(four / raw),
    });

    // Growth: one asset pushed in chunks; the rate of each chunk.
    let sizes: &[usize] = if big {
        &[1_000, 10_000, 100_000]
    } else {
        &[1_000, 10_000]
    };
    let all = common::forged(*sizes.last().unwrap(), "growth");
    let mut done = 0;
    for &s in sizes {
        let chunk: Vec<_> = all[done..s].to_vec();
        let probe: Vec<_> = chunk[chunk.len().saturating_sub(1_000)..].to_vec();
        if chunk.len() > probe.len() {
            push(
                &addr,
                &tokens[1..2],
                Arc::new(chunk[..chunk.len() - probe.len()].to_vec()),
            )
            .await;
        }
        let r = push(&addr, &tokens[1..2], Arc::new(probe)).await;
        rows.push(Row {
            name: format!("InsertProof, the 1,000 leaves up to {s} in one tree"),
            value: format!("{r:.0} proofs/s"),
            ratio: Some(r / raw),
        });
        done = s;
    }

    // QueryProof at 2,000 requests/s: right after the pushes, and in the
    // steady state (the new rows vacuumed and analyzed, as autovacuum leaves
    // a server between bursts).
    let keys_q: Arc<Vec<pb::UniverseKey>> = Arc::new(
        common::forged(n, "one")
            .into_iter()
            .map(|(_, r)| r.key.unwrap())
            .collect(),
    );
    for state in ["right after the pushes", "steady state"] {
        if state == "steady state" {
            sqlx::raw_sql("VACUUM ANALYZE")
                .execute(&running.db.pool)
                .await
                .unwrap();
        }
        let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
        let (_, u) = client::clients(ch, Some(&tokens[0])).unwrap();
        let keys = keys_q.clone();
        let (p50, p99, calls) = paced(2000, 3, move |i| {
            let (mut u, keys) = (u.clone(), keys.clone());
            async move {
                u.query_proof(keys[i % keys.len()].clone()).await.unwrap();
            }
        })
        .await;
        rows.push(Row {
            name: format!("QueryProof at 2,000 rps, {state} ({calls} calls)"),
            value: format!("p50 {p50:.1?}, p99 {p99:.1?}"),
            ratio: None,
        });
    }

    // A 1,000-output v1 wallet backup (one genesis proof each).
    let assets: Vec<_> = common::forged(1000, "backup")
        .into_iter()
        .map(|(raw, _)| {
            let mut f = tapvault_codec::File::new();
            f.append_raw(raw);
            tapvault_codec::AssetBackup::from_proof_file(&f, None, None).unwrap()
        })
        .collect();
    let blob = tapvault_codec::WalletBackup {
        version: 1,
        federation_urls: vec![],
        assets,
    }
    .encode();
    let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch, Some(&tokens[2])).unwrap();
    let t0 = Instant::now();
    b.push_wallet_backup(v1::PushWalletBackupRequest {
        backup: blob,
        opaque: false,
        source: "bench".into(),
    })
    .await
    .unwrap();
    rows.push(Row {
        name: "PushWalletBackup, 1,000-output v1 backup".into(),
        value: format!("{:.2?}", t0.elapsed()),
        ratio: None,
    });

    // Proof files: a genesis and 100 signed transfers each (101 proofs),
    // pushed whole one after another, then read back.
    let files: Vec<Vec<u8>> = (0..20)
        .map(|c| common::forged_chain(100, &format!("chain-{c}"), c * 1000).encode())
        .collect();
    let tips: Vec<v1::GetProofFileRequest> = files
        .iter()
        .map(|f| {
            let tip = tapvault_codec::File::decode(f)
                .unwrap()
                .last_proof()
                .unwrap()
                .unwrap();
            let op = tip.outpoint();
            v1::GetProofFileRequest {
                outpoint: Some(v1::OutPoint {
                    txid: op.txid.to_string(),
                    vout: op.vout,
                }),
                script_key: tip.asset.script_key.0.to_vec(),
            }
        })
        .collect();
    let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch, Some(&tokens[3])).unwrap();
    let mut lat = Vec::new();
    for f in &files {
        let t0 = Instant::now();
        let r = b
            .push_proof_file(v1::PushProofFileRequest {
                proof_file: f.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        lat.push(t0.elapsed());
        assert!(r.complete && r.num_new == 101);
    }
    rows.push(Row {
        name: format!("PushProofFile, 101-proof chain ({} files)", files.len()),
        value: format!(
            "p50 {:.1?}, max {:.1?}",
            pct(&mut lat, 0.5),
            pct(&mut lat, 1.0)
        ),
        ratio: None,
    });
    let mut lat = Vec::new();
    for i in 0..500 {
        let t0 = Instant::now();
        let r = b
            .get_proof_file(tips[i % tips.len()].clone())
            .await
            .unwrap()
            .into_inner();
        lat.push(t0.elapsed());
        assert!(r.complete && r.num_proofs == 101);
    }
    rows.push(Row {
        name: "GetProofFile, 101-proof chain (500 calls, one client)".into(),
        value: format!(
            "p50 {:.1?}, p99 {:.1?}",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        ),
        ratio: None,
    });

    println!("| scenario | measured | ratio to raw PostgreSQL |");
    println!("|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} |",
            r.name,
            r.value,
            r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default()
        );
    }
    srv.stop().await;
}
