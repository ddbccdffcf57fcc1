//! The agent end to end: a real tapvault server (TLS, tokens, PostgreSQL),
//! the agent, tapd's npm client as tapd's universe side, and a stand-in
//! tapd (see `standin/`) for the collector.
#![allow(clippy::result_large_err)]

#[path = "../../codec/tests/common/blobs.rs"]
mod blobs;
#[path = "../../server/tests/common/mod.rs"]
mod common;
#[path = "../../../tests/wire/npm_runner.rs"]
mod npm_runner;
mod standin;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};
use tapvault_agent::tapd::TapdConfig;
use tapvault_agent::{AgentConfig, RunningAgent};
use tapvault_codec::backup::VERSION_RAW;
use tapvault_codec::File;
use tapvault_server::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::ServeConfig;

fn file_of(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut f = File::new();
    for p in chain {
        f.append_raw(p.clone());
    }
    f.encode()
}

fn simnet_addresses() -> Vec<String> {
    load("taproot-assets/address/testdata/address_tlv_encoding_generated.json")["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["expected"].as_str())
        .filter(|a| a.starts_with("tapsb"))
        .map(String::from)
        .collect()
}

fn server_addr(s: &TestServer) -> String {
    format!("127.0.0.1:{}", s.running().grpc_addr.port())
}

async fn start_agent(
    s: &TestServer,
    token: &str,
    tapd: Option<&standin::Running>,
    dir: &Path,
    poll: Duration,
) -> RunningAgent {
    tapvault_agent::start(AgentConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        server: server_addr(s),
        server_trust: Trust::from_cert_file(&s.dir.join("tls.cert")).unwrap(),
        token: token.into(),
        tapd: tapd.map(|t| TapdConfig {
            addr: t.addr.to_string(),
            tls_cert: t.tls_cert(),
            macaroon: t.macaroon(),
        }),
        poll_interval: poll,
        tls_names: vec![],
    })
    .await
    .unwrap()
}

async fn status(s: &TestServer, token: &str) -> v1::StatusResponse {
    let ch = client::channel(
        &server_addr(s),
        &Trust::from_cert_file(&s.dir.join("tls.cert")).unwrap(),
    )
    .unwrap();
    let (mut b, _) = client::clients(ch, Some(token)).unwrap();
    b.status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner()
}

/// Polls `f` until it holds or `limit` passes; how long it took.
async fn within<F, Fut>(limit: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f().await {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapds_npm_client_works_through_the_agent_and_not_without_a_token() {
    let s = TestServer::start_auth_tls(vec![], &["alice"], true).await;
    let tok = s.token("alice", "push,read", 600).await;
    let dir = s.dir.join("agent");
    let agent = start_agent(&s, &tok, None, &dir, Duration::from_secs(60)).await;
    // tapd's client, no credentials, against the agent: federation and
    // courier InsertProof shapes, Info, QueryProof, the sync walk.
    let (ok, out) = npm_runner::run_node(
        &agent.relay_addr.to_string(),
        &dir.join("tls.cert"),
        &vectors(),
        "full",
        None,
    )
    .await;
    assert!(ok, "through the agent:\n{out}");
    // The same client straight to the server without a token is refused.
    let (ok, out) = npm_runner::run_node(
        &server_addr(&s),
        &s.dir.join("tls.cert"),
        &vectors(),
        "refused",
        None,
    )
    .await;
    assert!(ok, "straight to the server:\n{out}");
    // The proofs are the tenant's on the server.
    let st = status(&s, &tok).await;
    assert_eq!(st.num_proofs, 3);
    let state = agent.state.get();
    assert_eq!(state.relay.pushes_ok, 3);
    assert_eq!(state.relay.calls_failed, 0);
    agent.shutdown().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_pushes_what_changed_within_a_poll_interval_and_survives_restarts() {
    let s = TestServer::start_auth_tls(vec![], &["alice"], true).await;
    let tok = s.token("alice", "push,read", 600).await;
    let chain = file_chain();
    let addrs = simnet_addresses();
    let tapd = standin::start(&s.dir.join("tapd")).await;
    {
        let mut w = tapd.standin.wallet.lock().unwrap();
        w.outputs = vec![standin::Output::bip86(file_of(&chain[..2]))];
        w.addresses = vec![addrs[0].clone()];
        let mut b = blobs::tapbak_from_chain(&chain, VERSION_RAW);
        b.assets = vec![b.assets[1].clone()];
        w.backup = Some(b.encode());
    }
    let dir = s.dir.join("agent");
    let poll = Duration::from_secs(2);
    let agent = start_agent(&s, &tok, Some(&tapd), &dir, poll).await;
    let synced = within(Duration::from_secs(20), || async {
        let st = status(&s, &tok).await;
        st.num_wallet_backups == 1 && st.num_addresses == 1 && st.num_proofs == 2
    })
    .await;
    assert!(synced.is_some(), "initial collection reached the server");
    let st = status(&s, &tok).await;
    assert_eq!((st.outputs_covered, st.outputs_not_covered), (1, 0));

    // tapd gains an address and a new output (the old one spent): both are
    // on the server within one poll interval.
    {
        let mut w = tapd.standin.wallet.lock().unwrap();
        w.addresses.push(addrs[1].clone());
        w.outputs = vec![standin::Output::bip86(file_of(&chain))];
    }
    let took = within(poll * 3, || async {
        let st = status(&s, &tok).await;
        st.num_addresses == 2 && st.num_proofs == 3
    })
    .await
    .expect("new address and proof pushed");
    assert!(took <= poll + Duration::from_millis(1500), "took {took:?}");
    let before = agent.state.get();
    assert_eq!(before.proofs.len(), 2);
    assert!(before.last_run.as_ref().unwrap().ok);
    agent.shutdown().await;

    // Restarted with a long poll interval: its state survived, so nothing
    // already pushed is pushed again; a tapd receive event wakes it at once.
    let agent = start_agent(&s, &tok, Some(&tapd), &dir, Duration::from_secs(3600)).await;
    let ran =
        within(Duration::from_secs(10), || async {
            agent.state.get().last_run.is_some_and(|r| {
                r.started_at >= before.last_run.as_ref().unwrap().finished_at && r.ok
            })
        })
        .await;
    assert!(ran.is_some());
    let after = agent.state.get();
    assert_eq!(after.proofs, before.proofs, "nothing pushed twice");
    assert_eq!(after.wallet_backup, before.wallet_backup);
    tapd.standin
        .wallet
        .lock()
        .unwrap()
        .addresses
        .push(addrs[2].clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tapd.standin.events.send(());
    let took = within(Duration::from_secs(10), || async {
        status(&s, &tok).await.num_addresses == 3
    })
    .await
    .expect("an event triggers a collection");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The macaroon was sent on every call (the stand-in refuses otherwise).
    assert!(tapd.standin.wallet.lock().unwrap().calls["ExportProof"] >= 2);

    agent.shutdown().await;
    tapd.stop();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outage_fails_pushes_back_and_the_collector_catches_up() {
    let mut s = TestServer::start_auth_tls(vec![], &["alice"], true).await;
    let tok = s.token("alice", "push,read", 600).await;
    let chain = file_chain();
    let tapd = standin::start(&s.dir.join("tapd")).await;
    tapd.standin.wallet.lock().unwrap().version = standin::Version::V07;
    tapd.standin.wallet.lock().unwrap().outputs =
        vec![standin::Output::bip86(file_of(&chain[..2]))];
    let dir = s.dir.join("agent");
    let poll = Duration::from_secs(1);
    let agent = start_agent(&s, &tok, Some(&tapd), &dir, poll).await;
    assert!(within(Duration::from_secs(20), || async {
        status(&s, &tok).await.num_proofs == 2
    })
    .await
    .is_some());

    // A tapd-side universe client (no token) through the agent's relay.
    let relay_ch = client::channel(
        &agent.relay_addr.to_string(),
        &Trust::from_cert_file(&dir.join("tls.cert")).unwrap(),
    )
    .unwrap();
    let (_, mut relay) = client::clients(relay_ch, None).unwrap();

    // Server down: the push fails back as UNAVAILABLE (tapd retries) and
    // nothing is stored; tapd meanwhile gains a new output.
    let r = s.running.take().unwrap();
    let addr = r.grpc_addr;
    r.shutdown().await;
    let e = relay
        .insert_proof(courier_request(&chain[2]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    tapd.standin.wallet.lock().unwrap().outputs = vec![standin::Output::bip86(file_of(&chain))];
    assert!(within(Duration::from_secs(10), || async {
        agent
            .state
            .get()
            .last_run
            .is_some_and(|r| !r.ok && r.pending > 0)
    })
    .await
    .is_some());
    let leaves: i64 = sqlx::query_scalar("SELECT count(*) FROM universe_leaves")
        .fetch_one(&s.tdb.as_ref().unwrap().db.pool)
        .await
        .unwrap();
    assert_eq!(leaves, 2, "nothing acknowledged or stored while down");
    assert!(!agent.state.get().failures.is_empty());

    // Server back on the same address: the collector catches up, once.
    s.running = None;
    let mut cfg = ServeConfig::new(s.dir.clone());
    cfg.grpc_listen = addr;
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(s.tdb.as_ref().unwrap().url.clone());
    cfg.tls = true;
    s.running = Some(tapvault_server::start(cfg).await.unwrap());
    assert!(within(Duration::from_secs(20), || async {
        status(&s, &tok).await.num_proofs == 3
    })
    .await
    .is_some());
    assert!(within(Duration::from_secs(10), || async {
        agent.state.get().last_run.is_some_and(|r| r.ok)
    })
    .await
    .is_some());
    assert_eq!(s.count("universe_leaves").await, 3, "no duplicate versions");
    // The relay works again; the proof it now pushes is already held.
    let r = relay
        .insert_proof(courier_request(&chain[2]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.asset_leaf.unwrap().proof, chain[2]);
    assert_eq!(s.count("universe_leaves").await, 3);
    agent.shutdown().await;
    tapd.stop();
    s.stop().await;
}

/// A node as tapd keeps it: `n` outputs of mixed script key types (BIP-86,
/// script path with a tweak, unique Pedersen, channel funding), every tenth
/// leased, every fiftieth unconfirmed; `naddr` addresses with their keys.
fn node(n: usize, naddr: usize) -> (Vec<standin::Output>, Vec<standin::Addr>) {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = |i: u64| {
        let mut sk = [0u8; 32];
        sk[24..].copy_from_slice(&i.to_be_bytes());
        bitcoin::secp256k1::SecretKey::from_slice(&sk)
            .unwrap()
            .public_key(&secp)
            .serialize()
    };
    let outputs = synthetic(n, "")
        .into_iter()
        .enumerate()
        .map(|(i, (raw, _))| {
            let p = tapvault_codec::Proof::decode(&raw).unwrap();
            let ty = [1, 2, 6, 5][i % 4];
            standin::Output {
                file: file_of(&[raw]),
                script_key_type: ty,
                leased: i % 10 == 3,
                unconfirmed: i % 50 == 7,
                script_key_loc: Some(standin::Loc {
                    raw_key: key(1_000_000 + i as u64),
                    family: 212,
                    index: i as i32,
                }),
                tweak: if ty == 2 { vec![i as u8; 32] } else { vec![] },
                internal_key_loc: Some(standin::Loc {
                    raw_key: p.inclusion_proof.internal_key.0,
                    family: 212,
                    index: 1_000_000,
                }),
            }
        })
        .collect();
    let base = tapvault_codec::Address::decode(&simnet_addresses()[0]).unwrap();
    let addrs = (0..naddr)
        .map(|i| {
            let mut a = base.clone();
            a.script_key = tapvault_codec::PubKey(key(2_000_000 + i as u64));
            a.internal_key = tapvault_codec::PubKey(key(3_000_000 + i as u64));
            standin::Addr {
                encoded: a.encode().unwrap(),
                script_key: a.script_key.0.to_vec(),
                internal_key: a.internal_key.0.to_vec(),
                script_key_loc: Some(standin::Loc {
                    raw_key: key(4_000_000 + i as u64),
                    family: 212,
                    index: 10_000 + i as i32,
                }),
                internal_key_loc: Some(standin::Loc {
                    raw_key: a.internal_key.0,
                    family: 213,
                    index: i as i32,
                }),
            }
        })
        .collect();
    (outputs, addrs)
}

async fn backed_up_completely(version: standin::Version, n: usize, naddr: usize) {
    let s = TestServer::start_with(&["alice"], |c| {
        c.verify = tapvault_server::VerifyLevel::DecodeOnly;
        c.tls = true;
    })
    .await;
    let tok = s.token("alice", "push,read", 600).await;
    let tapd = standin::start(&s.dir.join("tapd")).await;
    let (outputs, addrs) = node(n, naddr);
    let unconfirmed = outputs.iter().filter(|o| o.unconfirmed).count();
    let leased = outputs
        .iter()
        .filter(|o| o.leased && !o.unconfirmed)
        .count();
    {
        let mut w = tapd.standin.wallet.lock().unwrap();
        w.version = version;
        w.outputs = outputs;
        w.addrs = addrs;
    }
    let dir = s.dir.join("agent");
    let t0 = Instant::now();
    let agent = start_agent(&s, &tok, Some(&tapd), &dir, Duration::from_secs(3600)).await;
    let done = within(Duration::from_secs(240), || async {
        agent.state.get().last_run.is_some()
    })
    .await;
    assert!(done.is_some(), "the first collection finished");
    let run = agent.state.get().last_run.unwrap();
    assert!(run.ok, "{run:?} {:?}", agent.state.get().failures);
    eprintln!(
        "{version:?}: one collection of {n} outputs and {naddr} addresses in {:?}",
        t0.elapsed()
    );

    // Every confirmed output of every type, leased ones included, has a
    // complete chain on the server, and every address is there.
    let st = status(&s, &tok).await;
    let confirmed = n - unconfirmed;
    assert_eq!(st.num_addresses as usize, naddr);
    assert_eq!(st.inventory_outputs as usize, confirmed);
    assert_eq!(
        st.inventory_covered as usize, confirmed,
        "{:?}",
        st.inventory_uncovered
    );
    let inv = agent.state.get().inventory.unwrap();
    for ty in ["bip86", "script-path", "unique-pedersen", "channel"] {
        assert!(
            inv.by_type.get(ty).copied().unwrap_or(0) > 0,
            "{ty}: {inv:?}"
        );
    }
    assert_eq!(inv.unconfirmed_transfers as usize, unconfirmed);
    assert_eq!(inv.without_locators, 0);
    match version {
        standin::Version::V08 => {
            // tapd's own backup leaves the leased outputs out: Status names
            // them as covered only by the collector.
            assert_eq!(st.outputs_covered as usize, confirmed - leased);
            assert_eq!(st.collector_only.len(), leased);
            assert!(st
                .collector_only
                .iter()
                .all(|c| c.reason == "leased" && c.chain_complete));
        }
        standin::Version::V07 => {
            assert!(st.newest_backup.is_none());
            assert_eq!(st.collector_only.len(), confirmed);
            assert!(st
                .collector_only
                .iter()
                .all(|c| c.reason == "no wallet backup" && c.chain_complete));
        }
    }
    // Key locators for every output and every address, from the wallet RPCs.
    let ch = client::channel(
        &server_addr(&s),
        &Trust::from_cert_file(&s.dir.join("tls.cert")).unwrap(),
    )
    .unwrap();
    let (mut b, _) = client::clients(ch, Some(&tok)).unwrap();
    let mut outs = Vec::new();
    let mut keys = Vec::new();
    for offset in (0..).step_by(16384) {
        let r = b
            .list_inventory(v1::ListInventoryRequest {
                all: false,
                offset,
                limit: 16384,
                include_keys: true,
            })
            .await
            .unwrap()
            .into_inner();
        outs.extend(r.outputs);
        keys.extend(r.keys);
        if !r.has_more {
            break;
        }
    }
    assert_eq!(outs.len(), confirmed);
    assert!(outs.iter().all(|o| {
        let o = o.output.as_ref().unwrap();
        o.script_key_internal.is_some() && o.anchor_internal_key.is_some()
    }));
    // Script keys of the outputs, one anchor internal key, two per address.
    assert_eq!(keys.len(), confirmed + 1 + 2 * naddr);

    // The unconfirmed outputs confirm: the next collection has them.
    for o in tapd.standin.wallet.lock().unwrap().outputs.iter_mut() {
        o.unconfirmed = false;
    }
    let _ = tapd.standin.events.send(());
    let all = within(Duration::from_secs(120), || async {
        let st = status(&s, &tok).await;
        st.inventory_outputs as usize == n && st.inventory_covered as usize == n
    })
    .await;
    assert!(all.is_some(), "confirmed outputs collected");
    // The agent paged on v0.8 (two collections, pages of 1,000); v0.7 has
    // no paging and answers in one call.
    let calls = tapd.standin.wallet.lock().unwrap().calls["ListAssets"];
    if version == standin::Version::V08 {
        assert!(calls >= 2 * n.div_ceil(1000), "{calls} ListAssets calls");
    } else {
        assert_eq!(calls, 2);
    }
    agent.shutdown().await;
    tapd.stop();
    s.stop().await;
}

/// tapd v0.8: 1,500 outputs of mixed script key types (past the 512 default
/// page), some leased, some unconfirmed, 600 addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v08_node_is_backed_up_completely() {
    backed_up_completely(standin::Version::V08, 1500, 600).await;
}

/// tapd v0.7: the same minus the wallet backup (it has none); key locators
/// come from QueryScriptKey / QueryInternalKey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v07_node_is_backed_up_completely() {
    backed_up_completely(standin::Version::V07, 1500, 600).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_audits_the_receipt_log_and_names_a_dropped_item() {
    let s = TestServer::start_auth_tls(vec![], &["alice"], true).await;
    let tok = s.token("alice", "push,read", 600).await;
    let chain = file_chain();
    let addrs = simnet_addresses();
    let tapd = standin::start(&s.dir.join("tapd")).await;
    {
        let mut w = tapd.standin.wallet.lock().unwrap();
        w.outputs = vec![standin::Output::bip86(file_of(&chain[..2]))];
        w.addresses = vec![addrs[0].clone(), addrs[1].clone()];
    }
    let dir = s.dir.join("agent");
    let agent = start_agent(&s, &tok, Some(&tapd), &dir, Duration::from_secs(3600)).await;
    let audited = within(Duration::from_secs(20), || async {
        agent.state.get().log.last_audit_at > 0
    })
    .await;
    assert!(audited.is_some(), "the first collection ends with an audit");
    let st = agent.state.get().log;
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    // The stand-in's wallet backup, two proofs and two addresses, each with
    // a receipt checked under the pinned key's head.
    assert_eq!(st.receipts_kept, 5);
    assert!(st.new_receipts.is_empty(), "{:?}", st.new_receipts);
    // Kept in their own file (the format `tapvault audit --receipts` reads),
    // so the state file stays small.
    let kept: Vec<tapvault_api::receipts::SavedReceipt> =
        serde_json::from_slice(&std::fs::read(dir.join("agent-receipts.json")).unwrap()).unwrap();
    assert_eq!(kept.len(), 5, "{kept:?}");
    assert_eq!(
        st.public_key.as_deref(),
        Some(hex::encode(s.running().log_key).as_str())
    );
    assert_eq!(st.head.as_ref().unwrap().tree_size, 5);

    // tapd pushes a proof through the relay: InsertProof's reply has no
    // receipt, so the agent fetches it at the next audit.
    let relay = {
        let ch = client::channel(
            &agent.relay_addr.to_string(),
            &Trust::from_fingerprint(
                &tapvault_api::tls::cert_fingerprint(&agent.cert_pem).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        client::clients(ch, None).unwrap().1
    };
    let mut relay = relay;
    relay
        .insert_proof(courier_request(&chain[2]))
        .await
        .unwrap();
    agent.state.flush().unwrap();
    assert_eq!(agent.state.get().log.awaiting.len(), 1);

    // The server loses an address behind its own back.
    let pool = &s.running().db.pool;
    sqlx::query("DELETE FROM addresses WHERE encoded = $1")
        .bind(&addrs[1])
        .execute(pool)
        .await
        .unwrap();
    let before = agent.state.get().log.last_audit_at;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    agent.wake.notify_one();
    let done = within(Duration::from_secs(20), || async {
        agent.state.get().log.last_audit_at > before
    })
    .await;
    assert!(done.is_some(), "a second audit ran");
    let st = agent.state.get().log;
    let gone = hex::encode(tapvault_codec::log::address_content_hash(&addrs[1]));
    assert!(
        st.problems
            .iter()
            .any(|p| p.contains(&gone) && p.contains("no longer stored")),
        "{:?}",
        st.problems
    );
    assert_eq!(st.failed_audits, 1);
    // The relayed proof got its receipt meanwhile.
    assert!(st.awaiting.is_empty(), "{:?}", st.awaiting);
    assert_eq!(st.receipts_kept, 6);
    agent.shutdown().await;
    tapd.stop();
    s.stop().await;
}
