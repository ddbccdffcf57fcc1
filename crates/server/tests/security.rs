//! Access control, deny by default: every method of every service has an
//! explicit rule; trusted networks reach tapd's universe service only;
//! a token gets the scopes recorded when it was issued; /metrics is the
//! operator's.
#![allow(clippy::result_large_err)]

mod common;
use common::*;
use prost::Message;
use tapvault_server::auth::{access_for_path, Access, Scope, TrustedNetwork};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::proto::universerpc as pb;
use tonic::Code;

/// Every method in a descriptor set, as `/package.Service/Method`.
fn methods(set: &[u8]) -> Vec<String> {
    let fds = prost_types::FileDescriptorSet::decode(set).unwrap();
    let mut out = Vec::new();
    for f in fds.file {
        for s in &f.service {
            for m in &s.method {
                out.push(format!("/{}.{}/{}", f.package(), s.name(), m.name()));
            }
        }
    }
    out
}

#[test]
fn every_method_of_every_service_has_an_explicit_rule() {
    let mut all = methods(tapvault_server::proto::FILE_DESCRIPTOR_SET);
    all.extend(methods(tonic_health::pb::FILE_DESCRIPTOR_SET));
    all.push("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".into());
    assert!(all.len() > 40, "{all:?}");
    let token = |scope, universe| Some(Access::Token { scope, universe });
    for m in &all {
        let (svc, name) = m[1..].split_once('/').unwrap();
        let want = match svc {
            "grpc.health.v1.Health" => Some(Access::Open),
            "universerpc.Universe" => {
                let read = [
                    "MultiverseRoot",
                    "AssetRoots",
                    "QueryAssetRoots",
                    "AssetLeafKeys",
                    "AssetLeaves",
                    "QueryProof",
                    "Info",
                    "ListFederationServers",
                    "UniverseStats",
                    "QueryAssetStats",
                    "QueryEvents",
                    "QueryFederationSyncConfig",
                    "FetchSupplyCommit",
                    "FetchSupplyLeaves",
                ];
                token(
                    if read.contains(&name) {
                        Scope::Read
                    } else {
                        Scope::Push
                    },
                    true,
                )
            }
            "tapvault.v1.Backup" => token(
                if name.starts_with("Push") {
                    Scope::Push
                } else {
                    Scope::Read
                },
                false,
            ),
            "tapvault.v1.Admin" => token(Scope::Admin, false),
            // The receipt log is read-only.
            "tapvault.v1.Log" => token(Scope::Read, false),
            "grpc.reflection.v1alpha.ServerReflection" => token(Scope::Read, false),
            other => panic!("a service without rules: {other}"),
        };
        assert_eq!(access_for_path(m), want, "{m}");
    }
    // Anything not listed is refused, whatever it looks like.
    for p in [
        "/universerpc.Universe/NewShinyRpc",
        "/tapvault.v1.Backup/PushEverything",
        "/tapvault.v1.Admin/",
        "/tapvault.v1.Log/AppendEntry",
        "/grpc.health.v1.Health/Other",
        "/nope",
        "",
    ] {
        assert_eq!(access_for_path(p), None, "{p}");
    }
}

#[tokio::test]
async fn an_unmapped_method_is_refused_before_it_runs() {
    let s = TestServer::start_auth(vec![], &["alice"]).await;
    let admin = s.token("alice", "push,read,admin", 60).await;
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", s.running().grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut g = tonic::client::Grpc::new(ch);
    g.ready().await.unwrap();
    let mut req = tonic::Request::new(pb::InfoRequest {});
    req.metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let e = g
        .unary::<_, pb::InfoResponse, _>(
            req,
            http::uri::PathAndQuery::from_static("/universerpc.Universe/NotARealMethod"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("not offered"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn a_trusted_network_reaches_the_universe_service_only() {
    let net = TrustedNetwork::parse("127.0.0.0/8=alice").unwrap();
    let s = TestServer::start_auth(vec![net], &["alice"]).await;
    let (mut b, mut u) = s.clients(None);
    // tapd's universe calls work without credentials, as before.
    u.insert_proof(courier_request(&file_chain()[0]))
        .await
        .expect("credential-less universe push from the trusted network");
    u.info(pb::InfoRequest {}).await.unwrap();
    let before = (
        s.count("wallet_backups").await,
        s.count("addresses").await,
        s.count("proofs").await,
    );
    // Nothing else: not reading backups, not pushing a (empty) wallet backup
    // that recovery would then take as the newest.
    let e = b
        .list_wallet_backups(v1::ListWalletBackupsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    let e = b
        .push_wallet_backup(v1::PushWalletBackupRequest {
            backup: b"TAPBAK\x00\x00\x00\x01".to_vec(),
            opaque: true,
            source: "intruder".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    let e = b.status(v1::StatusRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    let e = b
        .push_proof_file(v1::PushProofFileRequest {
            proof_file: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert_eq!(
        before,
        (
            s.count("wallet_backups").await,
            s.count("addresses").await,
            s.count("proofs").await
        )
    );
    s.stop().await;
}

#[tokio::test]
async fn a_token_gets_the_scopes_it_was_issued_with_not_those_it_claims() {
    use tapvault_server::auth::{Claims, Keys};
    let s = TestServer::start_auth(vec![], &["alice"]).await;
    let read = s.token("alice", "read", 600).await;
    let (_, mut u) = s.clients(Some(&read));
    u.info(pb::InfoRequest {}).await.unwrap();
    // The same jti, re-signed with more scopes (a leaked signing key, or an
    // HS256 secret known to the holder): refused.
    use base64::Engine;
    let payload = read.split('.').nth(1).unwrap();
    let mut claims: Claims = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims.scope = "push read admin".into();
    let forged = Keys::ed25519_in(&s.dir).unwrap().sign(&claims).unwrap();
    let (mut b, mut u) = s.clients(Some(&forged));
    let e = u
        .insert_proof(courier_request(&file_chain()[0]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert!(e.message().contains("not issued with"), "{e}");
    let e = b.status(v1::StatusRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert_eq!(s.count("proofs").await, 0);
    // Fewer scopes than issued are refused the same way (the claim must be
    // exactly what was recorded).
    claims.scope = "read".into();
    let same = Keys::ed25519_in(&s.dir).unwrap().sign(&claims).unwrap();
    let (_, mut u) = s.clients(Some(&same));
    u.info(pb::InfoRequest {}).await.unwrap();
    s.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    (buf[9..12].parse().unwrap(), buf)
}

#[tokio::test]
async fn metrics_are_the_operators_alone() {
    let s = TestServer::start_auth_full(vec![], &["ops", "alice"], false, Some("ops")).await;
    let http = s.running().http_addr;
    let alice_admin = s.token("alice", "admin", 60).await;
    let (code, body) = http_get(http, "/metrics", Some(&alice_admin)).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("operator"), "{body}");
    let ops = s.token("ops", "admin", 60).await;
    let (code, body) = http_get(http, "/metrics", Some(&ops)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("tapvault_proofs_inserted_total"), "{body}");
    s.stop().await;
}

/// The same condition gets the same status everywhere: anything over a size
/// or count cap is RESOURCE_EXHAUSTED, whichever service it reaches.
#[tokio::test]
async fn oversize_is_resource_exhausted_in_every_service() {
    let s = TestServer::start_auth(vec![], &["alice"]).await;
    let tok = s.token("alice", "push,read", 60).await;
    let (mut b, _) = s.clients(Some(&tok));
    let e = b
        .push_addresses(v1::PushAddressesRequest {
            addresses: vec!["x".into(); 10_001],
            network: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let e = b
        .push_tapscript(v1::PushTapscriptRequest {
            key: vec![2; 33],
            leaves: vec![
                v1::TapLeaf {
                    leaf_version: 0xc0,
                    script: vec![0x51],
                };
                10_001
            ],
            root_hash: vec![0; 32],
            raw_key: vec![],
            label: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let e = b
        .push_inventory(v1::PushInventoryRequest {
            outputs: vec![v1::NodeOutput::default(); 16_385],
            keys: vec![],
            run_id: "r".into(),
            complete: false,
            source: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    s.stop().await;
}
