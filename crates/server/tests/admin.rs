//! The Admin API on a real server: the operator tenant's admins manage
//! every tenant and token; other tenants' admins only their own tokens.
#![allow(clippy::result_large_err)]

mod common;
use common::*;
use tapvault_server::client::{admin_client, channel, AdminClient, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tonic::Code;

fn admin(s: &TestServer, token: Option<&str>) -> AdminClient {
    let ch = channel(&s.running().grpc_addr.to_string(), &Trust::Plaintext).unwrap();
    admin_client(ch, token).unwrap()
}

fn issue_req(tenant: &str, scopes: &[&str], ttl: u64) -> v1::IssueTokenRequest {
    v1::IssueTokenRequest {
        tenant: tenant.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ttl_seconds: ttl,
    }
}

async fn tokens_of(
    c: &mut AdminClient,
    tenant: &str,
    include_inactive: bool,
) -> Vec<v1::TokenInfo> {
    c.list_tokens(v1::ListTokensRequest {
        tenant: tenant.into(),
        include_inactive,
    })
    .await
    .unwrap()
    .into_inner()
    .tokens
}

async fn tenant_names(c: &mut AdminClient) -> Vec<String> {
    c.list_tenants(v1::ListTenantsRequest {})
        .await
        .unwrap()
        .into_inner()
        .tenants
        .into_iter()
        .map(|t| t.name)
        .collect()
}

async fn status(s: &TestServer, token: &str) -> Result<v1::StatusResponse, tonic::Status> {
    let (mut b, _) = s.clients(Some(token));
    b.status(v1::StatusRequest::default())
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn operator_manages_tenants_and_tokens() {
    let s = TestServer::start_auth_full(vec![], &["ops", "alice"], false, Some("ops")).await;
    let ops_token = s.token("ops", "admin", 3600).await;
    let mut ops = admin(&s, Some(&ops_token));

    let added = ops
        .add_tenant(v1::AddTenantRequest { name: "bob".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(!added.existed);
    let again = ops
        .add_tenant(v1::AddTenantRequest { name: "bob".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(again.existed);
    assert_eq!(again.id, added.id);
    let e = ops
        .add_tenant(v1::AddTenantRequest {
            name: "no spaces".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("bad tenant name"), "{e:?}");
    let names = tenant_names(&mut ops).await;
    assert_eq!(names, ["ops", "alice", "bob"]);

    // A token for the new tenant works, is listed, and stops working once
    // revoked.
    let tokens_before = s.count("tokens").await;
    for (req, what) in [
        (issue_req("bob", &["root"], 3600), "unknown scope"),
        (issue_req("bob", &[], 3600), "at least one scope"),
        (issue_req("bob", &["read"], 0), "ttl_seconds"),
        (issue_req("bob", &["read"], u64::MAX), "ttl_seconds"),
    ] {
        let e = ops.issue_token(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}");
        assert!(e.message().contains(what), "{e:?}");
    }
    let e = ops
        .issue_token(issue_req("carol", &["read"], 3600))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("unknown tenant \"carol\""), "{e:?}");
    assert_eq!(
        s.count("tokens").await,
        tokens_before,
        "refusals store nothing"
    );

    let bob = ops
        .issue_token(issue_req("bob", &["push", "read"], 3600))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.tenant, "bob");
    assert_eq!(bob.scopes, ["push", "read"]);
    status(&s, &bob.token).await.expect("bob's token works");
    let listed = tokens_of(&mut ops, "bob", false).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].jti, bob.jti);
    assert_eq!(listed[0].revoked_at, 0);

    ops.revoke_token(v1::RevokeTokenRequest {
        jti: bob.jti.clone(),
    })
    .await
    .unwrap();
    let e = status(&s, &bob.token).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("revoked"), "{e:?}");
    let e = ops
        .revoke_token(v1::RevokeTokenRequest {
            jti: bob.jti.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "revoking twice");
    let active = tokens_of(&mut ops, "bob", false).await;
    assert!(active.is_empty());
    let all = tokens_of(&mut ops, "bob", true).await;
    assert_eq!(all.len(), 1);
    assert!(all[0].revoked_at > 0);
    s.stop().await;
}

#[tokio::test]
async fn tenant_admins_stay_in_their_tenant() {
    let s = TestServer::start_auth_full(vec![], &["ops", "alice", "bob"], false, Some("ops")).await;
    let bob_token = s.token("bob", "read", 3600).await;
    let bob_jti = tapvault_server::auth::list_tokens(&s.running().db, None, false)
        .await
        .unwrap()[0]
        .jti
        .clone();
    let alice_token = s.token("alice", "admin", 3600).await;
    let mut alice = admin(&s, Some(&alice_token));

    // Her own tokens: yes.
    let own = alice
        .issue_token(issue_req("", &["push"], 600))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.tenant, "alice");
    let mine = tokens_of(&mut alice, "", false).await;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|t| t.tenant == "alice"));
    let seen = tenant_names(&mut alice).await;
    assert_eq!(seen, ["alice"], "other tenants are not listed");

    // Anything of another tenant: no.
    let e = alice
        .add_tenant(v1::AddTenantRequest {
            name: "mallory".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("operator tenant"), "{e:?}");
    for tenant in ["bob", "nobody"] {
        let e = alice
            .issue_token(issue_req(tenant, &["read"], 600))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{tenant}");
        let e = alice
            .list_tokens(v1::ListTokensRequest {
                tenant: tenant.into(),
                include_inactive: true,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{tenant}");
    }
    let e = alice
        .revoke_token(v1::RevokeTokenRequest {
            jti: bob_jti.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    status(&s, &bob_token)
        .await
        .expect("bob's token survives alice's attempt");
    let tenants: i64 = s.count("tenants").await;
    assert_eq!(tenants, 3, "mallory was not added");

    // Without the admin scope, or without a token: refused before the call.
    let e = admin(&s, Some(&bob_token))
        .list_tenants(v1::ListTenantsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("lacks the `admin` scope"), "{e:?}");
    let e = admin(&s, None)
        .list_tenants(v1::ListTenantsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    s.stop().await;
}

#[tokio::test]
async fn without_an_operator_tenant_nobody_adds_tenants_over_the_api() {
    let s = TestServer::start_auth_full(vec![], &["alice"], false, None).await;
    let t = s.token("alice", "admin", 3600).await;
    let e = admin(&s, Some(&t))
        .add_tenant(v1::AddTenantRequest { name: "bob".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(s.count("tenants").await, 1);
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_operator_tenant_stops_the_start() {
    let tdb = tapvault_store::db::testdb::create().await;
    let dir = std::env::temp_dir().join(format!("tapvault-test-{}", tdb.name));
    let mut cfg = tapvault_server::ServeConfig::new(dir.clone());
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(tdb.url.clone());
    cfg.operator_tenant = Some("nobody".into());
    let e = tapvault_server::start(cfg).await.err().expect("refused");
    assert!(
        format!("{e:#}").contains("--operator-tenant names unknown tenant \"nobody\""),
        "{e:#}"
    );
    tdb.drop_db().await;
    let _ = std::fs::remove_dir_all(dir);
}
