//! TLS (ALPN h2, the generated certificate), message limits and the HTTP port.
#![allow(clippy::result_large_err)]

mod common;
use common::*;
use std::sync::Arc;
use tapvault_server::proto::universerpc as pb;
use tapvault_server::proto::universerpc::universe_client::UniverseClient;
use tapvault_server::VerifyLevel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client_config(cert_pem: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &cert_pem[..]) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    cfg
}

#[tokio::test]
async fn tls_negotiates_h2_with_the_generated_certificate() {
    let s = TestServer::start(VerifyLevel::Full, true).await;
    let pem = s.running().cert_pem.clone().expect("TLS on by default");
    assert!(s.dir.join("tls.cert").exists() && s.dir.join("tls.key").exists());
    // A raw TLS handshake the way grpc-go does it: ALPN must come back h2.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&pem)));
    let tcp = tokio::net::TcpStream::connect(s.running().grpc_addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);
    // And a real gRPC call over TLS.
    let ch = tonic::transport::Channel::from_shared(format!(
        "https://localhost:{}",
        s.running().grpc_addr.port()
    ))
    .unwrap()
    .tls_config(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&pem))
            .domain_name("localhost"),
    )
    .unwrap()
    .connect()
    .await
    .unwrap();
    let info = UniverseClient::new(ch)
        .info(pb::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_ne!(info.runtime_id, 0);
    // (the channel is dropped here, so shutdown does not wait for it)
    // The certificate is reused on restart (clients pin it).
    let dir = s.dir.clone();
    let before = std::fs::read(dir.join("tls.cert")).unwrap();
    let files = tapvault_server::tls::TlsFiles::in_dir(&dir);
    assert_eq!(files.load_or_create(&[]).unwrap().0, before);
    assert_eq!(
        tapvault_server::tls::cert_fingerprint(&before)
            .unwrap()
            .len(),
        64
    );
    s.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let code = buf[9..12].parse().unwrap();
    (code, buf)
}

#[tokio::test]
async fn http_health_ready_and_metrics() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let mut c = s.client().await;
    c.insert_proof(courier_request(&find(
        "valid regtest genesis proof with meta reveal",
    )))
    .await
    .unwrap();
    let _ = c
        .query_proof(query_key(&courier_request(&find(
            "valid regtest genesis proof with meta reveal",
        ))))
        .await
        .unwrap();
    let http = s.running().http_addr;
    let (code, body) = http_get(http, "/healthz").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(http, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(http, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("tapvault_proofs_inserted_total{outcome=\"new\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("tapvault_query_proof_seconds_count 1"),
        "{body}"
    );
    let (code, _) = http_get(http, "/nope").await;
    assert_eq!(code, 404);
    s.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_refuses_new_calls() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let addr = s.running().grpc_addr;
    s.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
