//! Tokens, scopes and tenant isolation on a real server.
#![allow(clippy::result_large_err)]

mod common;
use common::*;
use tapvault_server::auth::{Claims, Keys, TrustedNetwork, AUDIENCE, ISSUER};
use tapvault_server::proto::universerpc as pb;
use tapvault_server::proto::universerpc::universe_client::UniverseClient;
use tonic::transport::Channel;
use tonic::{Code, Request};

fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

async fn client(s: &TestServer) -> UniverseClient<Channel> {
    s.client().await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(sub: &str, jti: &str) -> Claims {
    Claims {
        sub: sub.into(),
        scope: "push read".into(),
        exp: now() + 3600,
        iat: now(),
        nbf: now(),
        jti: jti.into(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    }
}

async fn record(s: &TestServer, jti: &str, tenant: &str) {
    sqlx::query(
        "INSERT INTO tokens (jti, tenant_id, scopes, expires_at)
         SELECT $1, id, 'push read', now() + interval '1 hour' FROM tenants WHERE name = $2",
    )
    .bind(jti)
    .bind(tenant)
    .execute(&s.running().db.pool)
    .await
    .unwrap();
}

/// A new push,read token of alice, used once (so its record is cached), and
/// its jti.
async fn used_token(s: &TestServer, c: &mut UniverseClient<Channel>) -> (String, String) {
    let tok = s.token("alice", "push,read", 3600).await;
    c.info(with_token(pb::InfoRequest {}, &tok)).await.unwrap();
    let jti: String = sqlx::query_scalar("SELECT jti FROM tokens ORDER BY issued_at DESC LIMIT 1")
        .fetch_one(&s.running().db.pool)
        .await
        .unwrap();
    (tok, jti)
}

async fn info_err(c: &mut UniverseClient<Channel>, token: Option<&str>) -> tonic::Status {
    let req = match token {
        Some(t) => with_token(pb::InfoRequest {}, t),
        None => Request::new(pb::InfoRequest {}),
    };
    c.info(req).await.expect_err("must be refused")
}

#[tokio::test]
async fn every_rejection_says_why() {
    let s = TestServer::start_auth(vec![], &["alice"]).await;
    let mut c = client(&s).await;
    let keys = Keys::ed25519_in(&s.dir).unwrap();

    let e = info_err(&mut c, None).await;
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("missing credentials"), "{e}");

    let e = info_err(&mut c, Some("not.a.jwt")).await;
    assert!(e.message().contains("malformed token"), "{e}");

    // alg none.
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_string(&claims("alice", "x")).unwrap())
    );
    let e = info_err(&mut c, Some(&none)).await;
    assert!(e.message().contains("alg none"), "{e}");

    // Algorithm confusion: HS256 keyed with the public key bytes.
    let pubkey = std::fs::read(s.dir.join("jwt-ed25519.pub.pem")).unwrap();
    let mut secret = pubkey.clone();
    secret.resize(secret.len().max(32), 0);
    let confused = Keys::hs256(&secret)
        .unwrap()
        .sign(&claims("alice", "y"))
        .unwrap();
    let e = info_err(&mut c, Some(&confused)).await;
    assert!(e.message().contains("algorithm not allowed"), "{e}");

    let mut expired = claims("alice", "e1");
    expired.exp = now() - 3600;
    expired.iat = now() - 7200;
    expired.nbf = now() - 7200;
    let e = info_err(&mut c, Some(&keys.sign(&expired).unwrap())).await;
    assert!(e.message().contains("expired"), "{e}");

    let mut early = claims("alice", "e2");
    early.nbf = now() + 3600;
    let e = info_err(&mut c, Some(&keys.sign(&early).unwrap())).await;
    assert!(e.message().contains("not yet valid"), "{e}");

    let mut iss = claims("alice", "e3");
    iss.iss = "someone-else".into();
    let e = info_err(&mut c, Some(&keys.sign(&iss).unwrap())).await;
    assert!(e.message().contains("issuer"), "{e}");

    let mut aud = claims("alice", "e4");
    aud.aud = "lnd".into();
    let e = info_err(&mut c, Some(&keys.sign(&aud).unwrap())).await;
    assert!(e.message().contains("audience"), "{e}");

    // Signed by another key.
    let other = Keys::ed25519_in(&s.dir.join("other")).unwrap();
    let e = info_err(&mut c, Some(&other.sign(&claims("alice", "e5")).unwrap())).await;
    assert!(e.message().contains("signature"), "{e}");

    // Never issued here.
    let e = info_err(&mut c, Some(&keys.sign(&claims("alice", "never")).unwrap())).await;
    assert!(e.message().contains("unknown jti"), "{e}");

    // Issued for alice's row but naming a tenant that does not exist.
    record(&s, "ghost-jti", "alice").await;
    let e = info_err(
        &mut c,
        Some(&keys.sign(&claims("ghost", "ghost-jti")).unwrap()),
    )
    .await;
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("issued to another tenant"), "{e}");

    // Scope: a read token cannot push.
    let read = s.token("alice", "read", 3600).await;
    let g = find("valid regtest genesis proof with meta reveal");
    let e = c
        .insert_proof(with_token(courier_request(&g), &read))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("`push` scope"), "{e}");

    // Issued, used, revoked → refused on the next call.
    let (tok, jti) = used_token(&s, &mut c).await;
    assert!(tapvault_server::auth::revoke(&s.running().db, &jti, None)
        .await
        .unwrap());
    let e = info_err(&mut c, Some(&tok)).await;
    assert!(e.message().contains("revoked"), "{e}");

    // Token records are cached; a revocation made by another process (the
    // CLI on the database, a second server) reaches the cache through the
    // database's notification, well within the cache's 10 s bound.
    let (tok, jti) = used_token(&s, &mut c).await;
    // A pool of its own: not the server's Db, so its cache is not told.
    let other = sqlx::PgPool::connect(&s.tdb.as_ref().unwrap().url)
        .await
        .unwrap();
    sqlx::query("UPDATE tokens SET revoked_at = now() WHERE jti = $1")
        .bind(&jti)
        .execute(&other)
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        match c.info(with_token(pb::InfoRequest {}, &tok)).await {
            Err(e) => {
                assert!(e.message().contains("revoked"), "{e}");
                break;
            }
            Ok(_) => {
                assert!(
                    t0.elapsed() < std::time::Duration::from_secs(2),
                    "a token revoked by another process was still accepted after 2 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }

    // Health needs no token.
    let ch = Channel::from_shared(format!("http://{}", s.running().grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
    h.check(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    })
    .await
    .unwrap();
    s.stop().await;
}

/// What the outside probes found: a token re-signed with a later `exp`
/// outlived its record; two `authorization` headers were taken as "first
/// wins"; refusals echoed the JWT library's words.
#[tokio::test]
async fn the_record_bounds_expiry_one_header_counts_and_refusals_speak_plainly() {
    let s = TestServer::start_auth(vec![], &["alice"]).await;
    let mut c = client(&s).await;
    let keys = Keys::ed25519_in(&s.dir).unwrap();

    // Recorded as expired an hour ago; the JWT claims another hour.
    record(&s, "late-jti", "alice").await;
    sqlx::query("UPDATE tokens SET expires_at = now() - interval '1 hour' WHERE jti = 'late-jti'")
        .execute(&s.running().db.pool)
        .await
        .unwrap();
    let e = info_err(
        &mut c,
        Some(&keys.sign(&claims("alice", "late-jti")).unwrap()),
    )
    .await;
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert!(e.message().contains("expired"), "{e}");

    // Two authorization headers, both valid: refused, not "first wins".
    let tok = s.token("alice", "push,read", 3600).await;
    let mut r = Request::new(pb::InfoRequest {});
    r.metadata_mut()
        .append("authorization", format!("Bearer {tok}").parse().unwrap());
    r.metadata_mut()
        .append("authorization", format!("Bearer {tok}").parse().unwrap());
    let e = c.info(r).await.expect_err("two headers must be refused");
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert!(
        e.message().contains("several `authorization` headers"),
        "{e}"
    );

    // Broken tokens: what is wrong, never the library's internals.
    for bad in ["a.b.c", "!!!.???.###", "eyJhbGciOiJFZERTQSJ9.e30.", "x"] {
        let e = info_err(&mut c, Some(bad)).await;
        assert_eq!(e.code(), Code::Unauthenticated, "{bad}: {e}");
        let m = e.message();
        assert!(
            m.contains("malformed token") || m.contains("claim") || m.contains("signature"),
            "{bad}: {m}"
        );
        for internal in [
            "Base64 error",
            "Invalid symbol",
            "offset",
            "line ",
            "column",
        ] {
            assert!(!m.contains(internal), "{bad}: {m}");
        }
    }
    s.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> u16 {
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
    buf[9..12].parse().unwrap()
}

#[tokio::test]
async fn http_routes_but_health_need_tokens() {
    let s = TestServer::start_auth(vec![], &["alice"]).await;
    let http = s.running().http_addr;
    assert_eq!(http_get(http, "/healthz", None).await, 200);
    assert_eq!(http_get(http, "/readyz", None).await, 200);
    assert_eq!(http_get(http, "/metrics", None).await, 401);
    assert_eq!(http_get(http, "/metrics", Some("garbage")).await, 401);
    let read = s.token("alice", "read", 60).await;
    assert_eq!(http_get(http, "/metrics", Some(&read)).await, 403);
    // Metrics cover every tenant: a tenant's admin is not the operator.
    let admin = s.token("alice", "admin", 60).await;
    assert_eq!(http_get(http, "/metrics", Some(&admin)).await, 403);
    s.stop().await;
}

#[tokio::test]
async fn tenants_are_isolated() {
    let s = TestServer::start_auth(vec![], &["alice", "bob"]).await;
    let mut c = client(&s).await;
    let alice = s.token("alice", "push,read", 3600).await;
    let bob = s.token("bob", "push,read", 3600).await;
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| find(&format!("valid regtest proof file index {i}")))
        .collect();
    for f in &files {
        c.insert_proof(with_token(courier_request(f), &alice))
            .await
            .unwrap();
    }
    // The same genesis proof pushed by bob is stored for bob too.
    c.insert_proof(with_token(courier_request(&files[0]), &bob))
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(DISTINCT tenant_id) FROM proofs")
        .fetch_one(&s.running().db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 2);

    let roots = |t: &str| {
        let mut c = c.clone();
        let t = t.to_string();
        async move {
            c.asset_roots(with_token(
                pb::AssetRootRequest {
                    with_amounts_by_id: false,
                    offset: 0,
                    limit: 512,
                    direction: 0,
                },
                &t,
            ))
            .await
            .unwrap()
            .into_inner()
            .universe_roots
            .len()
        }
    };
    assert_eq!(roots(&alice).await, 2);
    assert_eq!(roots(&bob).await, 1);
    // Bob never sees alice's transfers: not via proofs, roots, keys or stats.
    let e = c
        .query_proof(with_token(query_key(&courier_request(&files[2])), &bob))
        .await
        .unwrap_err();
    assert!(e.message().contains("no universe proof found"));
    let asset = tapvault_codec::Proof::decode(&files[0]).unwrap().asset.id();
    let tid = pb::Id {
        id: Some(pb::id::Id::AssetId(asset.to_vec())),
        proof_type: 2,
    };
    let e = c
        .query_asset_roots(with_token(
            pb::AssetRootQuery {
                id: Some(tid.clone()),
            },
            &bob,
        ))
        .await
        .unwrap_err();
    assert!(e.message().contains("no universe root found"));
    let keys = c
        .asset_leaf_keys(with_token(
            pb::AssetLeafKeysRequest {
                id: Some(tid.clone()),
                offset: 0,
                limit: 0,
                direction: 0,
            },
            &bob,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(keys.asset_keys.is_empty());
    let st = c
        .universe_stats(with_token(pb::StatsRequest {}, &bob))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.num_total_proofs, 1);
    let st = c
        .universe_stats(with_token(pb::StatsRequest {}, &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.num_total_proofs, 3);
    let mv = c
        .multiverse_root(with_token(
            pb::MultiverseRootRequest {
                proof_type: 2,
                specific_ids: vec![],
            },
            &bob,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(mv.multiverse_root.is_none());
    let leaves = c
        .asset_leaves(with_token(
            tapvault_server::compat::AssetLeavesRequest::v07(tid),
            &bob,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(leaves.leaves.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn trusted_network_maps_to_a_tenant() {
    let s = TestServer::start_auth(
        vec![TrustedNetwork::parse("127.0.0.0/8=alice").unwrap()],
        &["alice"],
    )
    .await;
    let mut c = client(&s).await;
    let g = find("valid regtest genesis proof with meta reveal");
    c.insert_proof(courier_request(&g))
        .await
        .expect("credential-less push from a trusted network");
    let alice = s.token("alice", "read", 60).await;
    let st = c
        .universe_stats(with_token(pb::StatsRequest {}, &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.num_total_proofs, 1, "the push landed in alice's tenant");
    assert!(TrustedNetwork::parse("10.8.0.0/24").is_err());
    let n = TrustedNetwork::parse("10.8.0.0/24=alice").unwrap();
    assert!(n.contains("10.8.0.77".parse().unwrap()) && !n.contains("10.8.1.1".parse().unwrap()));
    s.stop().await;
}
