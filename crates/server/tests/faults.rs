//! The fault and abuse suite, in-process part (real PostgreSQL): database
//! outage and read-only database, forced store failures, hostile input on
//! every push RPC, tenant isolation, memory budget, quotas, concurrent
//! writers on two servers, and `fsck` ending every scenario. The parts
//! where a process must die or run out of descriptors are in the CLI
//! crate's `tests/faults.rs` (they need the real binary).
//!
//! Short by default; `TAPVAULT_SOAK=1` runs the long form.
#![allow(clippy::result_large_err)]

#[path = "../../codec/tests/common/blobs.rs"]
mod blobs;
mod common;
use common::*;
use std::time::{Duration, Instant};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::proto::universerpc as pb;
use tapvault_server::VerifyLevel;
use tonic::Code;

fn soak() -> bool {
    std::env::var_os("TAPVAULT_SOAK").is_some()
}

async fn fsck_clean(db: &tapvault_store::Db) {
    let (_, findings) = tapvault_store::fsck::fsck(db).await.unwrap();
    assert!(findings.is_empty(), "fsck: {findings:#?}");
}

#[tokio::test]
async fn pushing_old_versions_again_adds_nothing() {
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let mut c = s.client().await;
    let a = file_chain()[0].clone();
    let b = variant(&a, 1);
    for raw in [&a, &b, &a, &b, &a, &b, &b, &a] {
        c.insert_proof(courier_request(raw)).await.unwrap();
    }
    // Two distinct proofs: two versions, however often they flap.
    assert_eq!(s.count("universe_leaves").await, 2);
    assert_eq!(s.count("proofs").await, 2);
    // The head stays on the newest distinct proof (B, version 2).
    let got = c
        .query_proof(query_key(&courier_request(&a)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.asset_leaf.unwrap().proof, b);
    // Within one group commit too: C arrives, then A and B again.
    let cc = variant(&a, 2);
    let mut tasks = Vec::new();
    for raw in [cc.clone(), a.clone(), b.clone(), a.clone()] {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.insert_proof(courier_request(&raw)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.count("universe_leaves").await, 3);
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

#[tokio::test]
async fn a_store_failure_reaches_the_client_without_internals() {
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let mut c = s.client().await;
    // Break the store behind the server's back: every ingest event fails.
    sqlx::query("ALTER TABLE ingest_events ADD CONSTRAINT fault_injected CHECK (false) NOT VALID")
        .execute(&s.running().db.pool)
        .await
        .unwrap();
    let e = c
        .insert_proof(courier_request(&file_chain()[0]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
    let m = e.message();
    assert!(m.contains("internal error (id "), "{m}");
    for leak in [
        "ingest_events",
        "fault_injected",
        "constraint",
        "violates",
        "sqlx",
        "SELECT",
        "INSERT",
    ] {
        assert!(!m.contains(leak), "reply leaks {leak:?}: {m}");
    }
    assert_eq!(s.count("proofs").await, 0, "nothing half-written");
    assert_eq!(s.count("universe_leaves").await, 0);
    sqlx::query("ALTER TABLE ingest_events DROP CONSTRAINT fault_injected")
        .execute(&s.running().db.pool)
        .await
        .unwrap();
    c.insert_proof(courier_request(&file_chain()[0]))
        .await
        .unwrap();
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

/// Ends every session of a database but the caller's.
async fn kick_sessions(pool: &sqlx::PgPool, db: &str) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_read_only_database_is_unavailable_not_internal() {
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let mut c = s.client().await;
    let name = s.tdb.as_ref().unwrap().name.clone();
    let admin = sqlx::PgPool::connect(&tapvault_store::db::testdb::admin_url())
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    )))
    .execute(&admin)
    .await
    .unwrap();
    kick_sessions(&admin, &name).await;
    let mut saw_read_only = false;
    for (raw, req) in synthetic(3, "") {
        let _ = raw;
        let e = c.insert_proof(req).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        saw_read_only |= e.message().contains("read-only");
    }
    assert!(saw_read_only);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = off"
    )))
    .execute(&admin)
    .await
    .unwrap();
    kick_sessions(&admin, &name).await;
    // Back by itself (the pool replaces the dead sessions).
    let mut ok = false;
    for _ in 0..20 {
        if c.insert_proof(synthetic(1, "")[0].1.clone()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok);
    admin.close().await;
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

#[tokio::test]
async fn a_database_outage_fails_fast_with_unavailable_and_heals() {
    use tapvault_server::pgembed::PrivateCluster;
    let dir = std::env::temp_dir().join(format!("tapvault-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = PrivateCluster::prepare(&dir).unwrap();
    cluster.start().unwrap();
    let admin = tapvault_store::connect(&cluster.url("postgres"), 1)
        .await
        .unwrap();
    let _ = sqlx::query("CREATE DATABASE tapvault")
        .execute(&admin.pool)
        .await;
    admin.pool.close().await;
    let mut cfg = tapvault_server::ServeConfig::new(dir.join("data"));
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(cluster.url("tapvault"));
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::DecodeOnly;
    let running = tapvault_server::start(cfg).await.unwrap();
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = pb::universe_client::UniverseClient::new(ch);
    let cycles = if soak() { 10 } else { 2 };
    let per = if soak() { 50 } else { 10 };
    let items = synthetic(cycles * per * 2, "");
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let mut it = items.into_iter();
    let (mut worst_fail, mut worst_heal, mut refused) = (Duration::ZERO, Duration::ZERO, 0usize);
    for cycle in 0..cycles {
        // Under load: writers keep pushing while the database dies.
        let mut tasks = Vec::new();
        for _ in 0..per {
            let (raw, req) = it.next().unwrap();
            let mut c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut r = tonic::Request::new(req);
                r.set_timeout(Duration::from_secs(8));
                let t = Instant::now();
                (raw, c.insert_proof(r).await, t.elapsed())
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mode = if cycle % 2 == 0 { "immediate" } else { "fast" };
        cluster.stop_with(mode).unwrap();
        for t in tasks {
            let (raw, r, took) = t.await.unwrap();
            match r {
                Ok(_) => acked.push(raw),
                Err(e) => {
                    assert_eq!(e.code(), Code::Unavailable, "{e}");
                    assert!(!e.message().contains("error"), "{e}");
                    assert!(took < Duration::from_secs(9), "{took:?}");
                    worst_fail = worst_fail.max(took);
                    refused += 1;
                }
            }
        }
        // While it is down: fail fast, readiness says so.
        let t = Instant::now();
        let e = c.insert_proof(it.next().unwrap().1).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(t.elapsed() < Duration::from_secs(7), "{:?}", t.elapsed());
        worst_fail = worst_fail.max(t.elapsed());
        let (code, body) = http_get(running.http_addr, "/readyz").await;
        assert_eq!(code, 503, "{body}");
        assert!(!body.contains("error"), "{body}");
        cluster.start().unwrap();
        let back = Instant::now();
        // The server heals by itself.
        let mut healed = false;
        for _ in 0..50 {
            let (raw, req) = it.next().unwrap();
            if c.insert_proof(req).await.is_ok() {
                acked.push(raw);
                healed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            healed,
            "cycle {cycle}: not back after the database returned"
        );
        worst_heal = worst_heal.max(back.elapsed());
        assert_eq!(http_get(running.http_addr, "/readyz").await.0, 200);
    }
    eprintln!(
        "outage: {cycles} cycles, {} acknowledged, {refused} refused with UNAVAILABLE, slowest refusal {worst_fail:?}, \
         slowest first write after the database came back {worst_heal:?}",
        acked.len()
    );
    // Nothing acknowledged is lost.
    for raw in &acked {
        let got = c
            .query_proof(query_key(&courier_request(raw)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&got.asset_leaf.unwrap().proof, raw);
    }
    fsck_clean(&running.db).await;
    running.shutdown().await;
    cluster.stop();
    let _ = std::fs::remove_dir_all(cluster.data.parent().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    (buf[9..12].parse().unwrap(), buf)
}

/// Holds tenant `t`'s issuance tree of `uid` locked (as a long transaction
/// would), so its ingest stalls; dropped → released.
async fn stall(
    db: &tapvault_store::Db,
    t: &str,
    uid: [u8; 32],
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let tid = tapvault_server::auth::tenant_id(db, t)
        .await
        .unwrap()
        .unwrap();
    let ns =
        tapvault_codec::universe::universe_namespace(&uid, tapvault_codec::ProofType::Issuance);
    let mut tx = db.pool.begin().await.unwrap();
    tapvault_store::tree::lock_root(&mut tx, tid, &ns)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn one_tenants_stalled_ingest_does_not_hold_up_another() {
    let s = TestServer::start_with(&["big", "small"], |c| c.verify = VerifyLevel::DecodeOnly).await;
    let big = s.token("big", "push,read", 600).await;
    let small = s.token("small", "push,read", 600).await;
    let items = synthetic(21, "");
    let uid = tapvault_codec::Proof::decode(&items[0].0)
        .unwrap()
        .asset
        .id();
    let lock = stall(&s.running().db, "big", uid).await;
    let (_, mut ub) = s.clients(Some(&big));
    let stalled = tokio::spawn({
        let req = items[0].1.clone();
        async move { ub.insert_proof(req).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The other tenant's inserts go through at their usual pace.
    let (_, mut us) = s.clients(Some(&small));
    let mut worst = Duration::ZERO;
    for (_, req) in &items[1..] {
        let t = Instant::now();
        us.insert_proof(req.clone()).await.unwrap();
        worst = worst.max(t.elapsed());
    }
    assert!(
        worst < Duration::from_secs(2),
        "slowest small insert {worst:?}"
    );
    assert!(
        !stalled.is_finished(),
        "the big tenant's insert should still wait"
    );
    drop(lock);
    stalled.await.unwrap().unwrap();

    // And under load: the big tenant pushes large proofs (3.9 MB of unknown
    // records each, just under the cap) from four clients while the small
    // one inserts; the small one's p99 stays under the bound.
    let mut load = Vec::new();
    for k in 0..4usize {
        let (_, mut ub) = s.clients(Some(&big));
        let base = synthetic(40, "big");
        load.push(tokio::spawn(async move {
            for i in 0..5 {
                let mut p = tapvault_codec::Proof::decode(&base[k * 10 + i].0).unwrap();
                p.unknown.insert(1001, vec![k as u8; 3_900_000]);
                ub.insert_proof(courier_request(&p.encode())).await.unwrap();
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lat = Vec::new();
    for (_, req) in synthetic(40, "small").iter().skip(20) {
        let t = Instant::now();
        us.insert_proof(req.clone()).await.unwrap();
        lat.push(t.elapsed());
    }
    for t in load {
        t.await.unwrap();
    }
    lat.sort();
    let p99 = lat[(lat.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "isolation under load: the small tenant's p99 {p99:?}, median {:?}",
        lat[lat.len() / 2]
    );
    assert!(p99 < Duration::from_secs(2), "p99 {p99:?}");
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

#[tokio::test]
async fn large_calls_share_a_bounded_memory_budget_and_small_ones_pass() {
    let s = TestServer::start_with(&["a", "b"], |c| {
        c.verify = VerifyLevel::DecodeOnly;
        c.large_call_budget = 3 << 20;
        c.large_call_wait = Duration::from_secs(1);
    })
    .await;
    let ta = s.token("a", "push,read", 600).await;
    let tb = s.token("b", "push,read", 600).await;
    let base = synthetic(3, "");
    let padded = |raw: &[u8], n: u8| {
        let mut p = tapvault_codec::Proof::decode(raw).unwrap();
        p.unknown.insert(1001, vec![n; 2 << 20]);
        courier_request(&p.encode())
    };
    let uid = tapvault_codec::Proof::decode(&base[0].0)
        .unwrap()
        .asset
        .id();
    let lock = stall(&s.running().db, "a", uid).await;
    let (_, mut ua) = s.clients(Some(&ta));
    let held = tokio::spawn({
        let req = padded(&base[0].0, 1);
        async move { ua.insert_proof(req).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The budget is taken by the stalled 2 MiB call: another large call
    // waits, then is turned away cleanly.
    let (_, mut ub) = s.clients(Some(&tb));
    let e = ub.insert_proof(padded(&base[1].0, 2)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("busy"), "{e}");
    // Small calls do not touch the budget.
    ub.insert_proof(base[2].1.clone()).await.unwrap();
    drop(lock);
    held.await.unwrap().unwrap();
    // With the budget free, the large call goes through.
    ub.insert_proof(padded(&base[1].0, 2)).await.unwrap();
    // Over the unknown-record cap: refused whatever the budget.
    let mut p = tapvault_codec::Proof::decode(&base[1].0).unwrap();
    p.unknown.insert(1001, vec![0; 4_000_001]);
    let e = ub
        .insert_proof(courier_request(&p.encode()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("unknown TLV"), "{e}");
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

#[tokio::test]
async fn quotas_refuse_what_does_not_fit_and_keep_what_is_stored() {
    let s = TestServer::start_with(&["ops", "alice"], |c| {
        c.verify = VerifyLevel::DecodeOnly;
        c.operator_tenant = Some("ops".into());
    })
    .await;
    let alice = s.token("alice", "push,read,admin", 600).await;
    let ops = s.token("ops", "admin", 600).await;
    let ch = tapvault_server::client::channel(
        &s.running().grpc_addr.to_string(),
        &tapvault_server::client::Trust::Plaintext,
    )
    .unwrap();
    let mut admin = tapvault_server::client::admin_client(ch.clone(), Some(&ops)).unwrap();
    let mut alice_admin = tapvault_server::client::admin_client(ch, Some(&alice)).unwrap();
    // Only the operator sets quotas.
    let e = alice_admin
        .set_quota(v1::SetQuotaRequest {
            tenant: "alice".into(),
            max_bytes: 0,
            max_items: 1_000_000,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    let items = synthetic(6, "");
    let (mut b, mut u) = s.clients(Some(&alice));
    for (_, req) in &items[..2] {
        u.insert_proof(req.clone()).await.unwrap();
    }
    let q = admin
        .set_quota(v1::SetQuotaRequest {
            tenant: "alice".into(),
            max_bytes: 0,
            max_items: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((q.items, q.max_items), (2, 3));
    u.insert_proof(items[2].1.clone()).await.unwrap();
    let e = u.insert_proof(items[3].1.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("item quota"), "{e}");
    // Every push path is held to it, and nothing of a refused call is kept.
    let file = {
        let mut f = tapvault_codec::File::new();
        f.append_raw(items[4].0.clone());
        f.encode()
    };
    let e = b
        .push_proof_file(v1::PushProofFileRequest { proof_file: file })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let e = b
        .push_wallet_backup(v1::PushWalletBackupRequest {
            backup: vec![7; 100],
            opaque: true,
            source: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert_eq!(s.count("proofs").await, 3);
    assert_eq!(s.count("wallet_backups").await, 0);
    // A byte quota the same way.
    admin
        .set_quota(v1::SetQuotaRequest {
            tenant: "alice".into(),
            max_bytes: 3 * 1039 + 10,
            max_items: 0,
        })
        .await
        .unwrap();
    let e = u.insert_proof(items[3].1.clone()).await.unwrap_err();
    assert!(e.message().contains("byte quota"), "{e}");
    let q = alice_admin
        .get_quota(v1::GetQuotaRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((q.items, q.max_bytes), (3, 3 * 1039 + 10));
    // Lifted: writes resume.
    admin
        .set_quota(v1::SetQuotaRequest {
            tenant: "alice".into(),
            max_bytes: 0,
            max_items: 0,
        })
        .await
        .unwrap();
    u.insert_proof(items[3].1.clone()).await.unwrap();
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

/// A few thousand mutations of real inputs (bit flips, truncations,
/// splices, length lies, random bytes) through every push RPC.
#[tokio::test]
async fn hostile_input_on_every_push_rpc_is_refused_cleanly() {
    use rand::{RngExt, SeedableRng};
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let (b, u) = s.clients(None);
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let chain = file_chain();
    let seeds_proof: Vec<Vec<u8>> = regtest().into_iter().map(|(_, r)| r).collect();
    let file = {
        let mut f = tapvault_codec::File::new();
        for p in &chain {
            f.append_raw(p.clone());
        }
        f.encode()
    };
    let tapbak = blobs::tapbak_from_chain(&chain, 1).encode();
    let addrs: Vec<String> =
        load("taproot-assets/address/testdata/address_tlv_encoding_generated.json")
            ["valid_test_cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["expected"].as_str().unwrap().to_string())
            .collect();
    fn mutate(rng: &mut impl RngExt, src: &[u8]) -> Vec<u8> {
        let mut v = src.to_vec();
        match rng.random_range(0..6) {
            0 => {
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..v.len());
                    v[i] ^= 1 << rng.random_range(0..8);
                }
            }
            1 => v.truncate(rng.random_range(0..v.len())),
            2 => {
                let i = rng.random_range(0..v.len());
                let n = rng.random_range(1..64);
                v.splice(i..i, (0..n).map(|_| rng.random::<u8>()));
            }
            3 => {
                // A length or count lie: a BigSize 0xff prefix somewhere.
                let i = rng.random_range(0..v.len());
                v.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
            }
            4 => {
                v = (0..rng.random_range(0..300))
                    .map(|_| rng.random())
                    .collect()
            }
            _ => {
                let i = rng.random_range(0..v.len());
                let j = rng.random_range(0..v.len());
                v.swap(i, j);
                v.truncate(v.len().saturating_sub(rng.random_range(0..3)));
            }
        }
        v
    }
    let n = if soak() { 100_000 } else { 10_000 };
    let before = (
        s.count("proofs").await,
        s.count("wallet_backups").await,
        s.count("addresses").await,
        s.count("tapscripts").await,
    );
    let mut inputs: Vec<(u8, Vec<u8>)> = Vec::with_capacity(n);
    for i in 0..n {
        let kind = (i % 5) as u8;
        let src: &[u8] = match kind {
            0 => &seeds_proof[rng.random_range(0..seeds_proof.len())],
            1 => &file,
            2 => &tapbak,
            3 => addrs[rng.random_range(0..addrs.len())].as_bytes(),
            _ => &chain[0][..200],
        };
        inputs.push((kind, mutate(&mut rng, src)));
    }
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let chunks: Vec<Vec<(u8, Vec<u8>)>> = inputs.chunks(n / 8).map(|c| c.to_vec()).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (mut b, mut u) = (b.clone(), u.clone());
        let accepted = accepted.clone();
        tasks.push(tokio::spawn(async move {
            for (kind, bytes) in chunk {
                let r: Result<(), tonic::Status> = match kind {
                    0 => u
                        .insert_proof(courier_request_lenient(&bytes))
                        .await
                        .map(|_| ()),
                    1 => b
                        .push_proof_file(v1::PushProofFileRequest { proof_file: bytes })
                        .await
                        .map(|_| ()),
                    2 => b
                        .push_wallet_backup(v1::PushWalletBackupRequest {
                            backup: bytes,
                            opaque: false,
                            source: "fuzz".into(),
                        })
                        .await
                        .map(|_| ()),
                    3 => b
                        .push_addresses(v1::PushAddressesRequest {
                            addresses: vec![String::from_utf8_lossy(&bytes).into_owned()],
                            network: String::new(),
                        })
                        .await
                        .map(|_| ()),
                    _ => b
                        .push_tapscript(v1::PushTapscriptRequest {
                            key: bytes.get(..33).unwrap_or(&bytes).to_vec(),
                            leaves: vec![v1::TapLeaf {
                                leaf_version: 0xc0,
                                script: bytes.clone(),
                            }],
                            root_hash: bytes.get(..32).unwrap_or(&[]).to_vec(),
                            raw_key: vec![],
                            label: String::new(),
                        })
                        .await
                        .map(|_| ()),
                };
                match r {
                    Ok(()) => {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => assert!(
                        matches!(e.code(), Code::InvalidArgument | Code::ResourceExhausted),
                        "kind {kind}: {e}"
                    ),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = (
        s.count("proofs").await,
        s.count("wallet_backups").await,
        s.count("addresses").await,
        s.count("tapscripts").await,
    );
    // A mutation that still verifies (a flip in a field nothing commits to)
    // is a valid item and stored; nothing else is.
    let grew =
        (after.0 - before.0) + (after.1 - before.1) + (after.2 - before.2) + (after.3 - before.3);
    assert!(grew as usize <= accepted.load(std::sync::atomic::Ordering::Relaxed) * 4);
    // The server (in this process) stayed within its memory bound.
    let hwm_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    assert!(hwm_kib < 1024 * 1024, "peak RSS {hwm_kib} KiB");
    eprintln!(
        "hostile: {n} mutated inputs in {:?}, {} accepted (still valid), {grew} rows added, the rest INVALID_ARGUMENT/RESOURCE_EXHAUSTED; peak RSS of the test process {hwm_kib} KiB",
        started.elapsed(),
        accepted.load(std::sync::atomic::Ordering::Relaxed)
    );
    fsck_clean(&s.running().db).await;
    s.stop().await;
}

/// A request for whatever bytes came: a key from the bytes if they decode,
/// a fixed one otherwise (the server must refuse either cleanly).
fn courier_request_lenient(raw: &[u8]) -> pb::AssetProof {
    match tapvault_codec::Proof::decode(raw) {
        Ok(_) => courier_request(raw),
        Err(_) => {
            let mut r = courier_request(&file_chain()[0]);
            r.asset_leaf.as_mut().unwrap().proof = raw.to_vec();
            r
        }
    }
}

/// Two servers on one database, many clients, the same and different
/// assets, duplicates and versions interleaved: every root equals a replay
/// of the stored versions, one by one in commit order, into an empty
/// database.
#[tokio::test]
async fn concurrent_writers_on_two_servers_agree_with_a_sequential_replay() {
    let s1 = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let mut cfg = tapvault_server::ServeConfig::new(s1.dir.join("second"));
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(s1.tdb.as_ref().unwrap().url.clone());
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::DecodeOnly;
    let s2 = tapvault_server::start(cfg).await.unwrap();
    let c1 = s1.client().await;
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", s2.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let c2 = pb::universe_client::UniverseClient::new(ch);
    let per = if soak() { 200 } else { 24 };
    let mut work: Vec<Vec<u8>> = Vec::new();
    for tag in ["alpha", "beta", "gamma"] {
        for (raw, _) in synthetic(per, tag) {
            work.push(raw.clone());
            work.push(raw.clone()); // a duplicate
            work.push(variant(&raw, 1)); // a second version
        }
    }
    use rand::seq::SliceRandom;
    work.shuffle(&mut rand::rng());
    let clients = 16;
    let mut tasks = Vec::new();
    for (i, chunk) in work.chunks(work.len().div_ceil(clients)).enumerate() {
        let mut c = if i % 2 == 0 { c1.clone() } else { c2.clone() };
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for raw in chunk {
                c.insert_proof(courier_request(&raw)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let db = &s1.running().db;
    fsck_clean(db).await;
    eprintln!(
        "concurrency: {} pushes from {clients} clients over two servers",
        work.len()
    );
    // Replay in commit order into an empty database.
    let order: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT p.raw FROM universe_leaves l JOIN proofs p
         ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash ORDER BY l.id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(order.len(), per * 3 * 2);
    let replay = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let mut rc = replay.client().await;
    for raw in &order {
        rc.insert_proof(courier_request(raw)).await.unwrap();
    }
    let roots = |db: tapvault_store::Db| async move {
        sqlx::query_as::<_, (String, Vec<u8>, i64)>(
            "SELECT namespace, root_hash, root_sum FROM mssmt_roots ORDER BY namespace",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap()
    };
    let a = roots(db.clone()).await;
    let b = roots(replay.running().db.clone()).await;
    assert!(
        a.iter().filter(|r| r.0.starts_with("issuance-")).count() == 3,
        "{a:?}"
    );
    assert_eq!(a, b);
    replay.stop().await;
    s2.shutdown().await;
    s1.stop().await;
}

#[tokio::test]
async fn fsck_names_what_was_changed_behind_the_servers_back() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let mut c = s.client().await;
    for raw in file_chain() {
        c.insert_proof(courier_request(&raw)).await.unwrap();
    }
    let (mut b, _) = s.clients(None);
    b.push_wallet_backup(v1::PushWalletBackupRequest {
        backup: blobs::tapbak_from_chain(&file_chain(), 1).encode(),
        opaque: false,
        source: "t".into(),
    })
    .await
    .unwrap();
    let db = &s.running().db;
    fsck_clean(db).await;
    for sql in [
        "UPDATE proofs SET raw = raw || '\\x00'::bytea WHERE hash = (SELECT hash FROM proofs ORDER BY hash LIMIT 1)",
        "UPDATE wallet_backups SET raw = substring(raw FROM 2)",
        "UPDATE mssmt_roots SET root_sum = root_sum + 1 WHERE namespace LIKE 'issuance-%'",
        "UPDATE universe_heads SET complete = NOT complete WHERE proof_type = 2",
        "UPDATE tenant_usage SET items = items + 1",
        // A leaf row goes (its head now names nothing; not the leaf whose
        // proof changed above), and the backup entries name another backup.
        "DELETE FROM universe_leaves WHERE proof_hash = (SELECT hash FROM proofs ORDER BY hash DESC LIMIT 1)",
        "UPDATE backup_entries SET backup_id = -1",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&db.pool).await.unwrap();
    }
    let (_, findings) = tapvault_store::fsck::fsck(db).await.unwrap();
    let checks: std::collections::BTreeSet<&str> = findings.iter().map(|f| f.check).collect();
    for want in [
        "proof hash",
        "leaf proof",
        "backup checksum",
        "root",
        "ancestry",
        "usage",
        "head",
        "backup entry",
    ] {
        assert!(checks.contains(want), "{want} not found in {findings:#?}");
    }
    s.stop().await;
}

/// The database's disk fills up (table data on a small tmpfs tablespace):
/// pushes get RESOURCE_EXHAUSTED, nothing stored is harmed, and writes
/// resume when space comes back. Needs mount (root); says so and returns
/// where the machine does not allow it.
#[tokio::test]
async fn a_full_disk_is_resource_exhausted_and_heals() {
    let mnt = std::env::temp_dir().join(format!("tapvault-full-{}", std::process::id()));
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(&mnt)
        .status();
    if !matches!(mount, Ok(s) if s.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let umount = |m: &std::path::Path| {
        let _ = std::process::Command::new("umount").arg(m).status();
        let _ = std::fs::remove_dir(m);
    };
    let _ = std::process::Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&mnt)
        .status();
    let admin_url = tapvault_store::db::testdb::admin_url();
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    let ts = format!("tv_full_{}", std::process::id());
    let name = format!("tapvault_full_{}", std::process::id());
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLESPACE {ts} LOCATION '{}'",
        mnt.display()
    )))
    .execute(&admin)
    .await
    {
        eprintln!(
            "skipped: the database server cannot use {}: {e}",
            mnt.display()
        );
        umount(&mnt);
        return;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {name} TABLESPACE {ts}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let mut cfg = tapvault_server::ServeConfig::new(mnt.with_extension("data"));
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(url);
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::DecodeOnly;
    let running = tapvault_server::start(cfg).await.unwrap();
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = pb::universe_client::UniverseClient::new(ch).max_encoding_message_size(64 << 20);
    let mut acked = Vec::new();
    let mut full = None;
    let mut rng = rand::rng();
    for (raw, _) in synthetic(40, "") {
        let mut p = tapvault_codec::Proof::decode(&raw).unwrap();
        let mut pad = vec![0u8; 1_000_000];
        rand::RngExt::fill(&mut rng, &mut pad[..]);
        p.unknown.insert(1001, pad);
        let raw = p.encode();
        match c.insert_proof(courier_request(&raw)).await {
            Ok(_) => acked.push(raw),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let e = full.expect("12 MiB should fill up");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("storage is full"), "{e}");
    assert!(!acked.is_empty());
    // Space comes back: writes resume by themselves.
    let _ = std::process::Command::new("mount")
        .args(["-o", "remount,size=256m"])
        .arg(&mnt)
        .status();
    c.insert_proof(synthetic(41, "")[40].1.clone())
        .await
        .unwrap();
    for raw in &acked {
        let got = c
            .query_proof(query_key(&courier_request(raw)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&got.asset_leaf.unwrap().proof, raw);
    }
    fsck_clean(&running.db).await;
    running.shutdown().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLESPACE {ts}")))
        .execute(&admin)
        .await;
    admin.close().await;
    umount(&mnt);
    let _ = std::fs::remove_dir_all(mnt.with_extension("data"));
}
