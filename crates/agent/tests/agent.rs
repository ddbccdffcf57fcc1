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
    b.status(v1::StatusRequest {}).await.unwrap().into_inner()
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
        w.outputs = vec![standin::Output {
            file: file_of(&chain[..2]),
        }];
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
        w.outputs = vec![standin::Output {
            file: file_of(&chain),
        }];
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
    tapd.standin.wallet.lock().unwrap().outputs = vec![standin::Output {
        file: file_of(&chain[..2]),
    }];
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
    tapd.standin.wallet.lock().unwrap().outputs = vec![standin::Output {
        file: file_of(&chain),
    }];
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
