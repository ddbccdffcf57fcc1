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

/// Silent after TLS, a dribbled preface, idle and half-sent HTTP requests:
/// each is closed within the handshake timeout, and at the cap idle
/// connections make room, so a legitimate caller gets in at once. (Before,
/// a connection that finished TLS was held forever: as many as the cap,
/// with no credentials, locked every caller out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_a_full_cap_makes_room() {
    use std::time::{Duration, Instant};
    const CAP: usize = 40;
    let handshake = Duration::from_secs(2);
    let s = TestServer::start_with(&["alice"], |c| {
        c.tls = true;
        c.conn_limits.max_connections = CAP;
        c.conn_limits.handshake_timeout = handshake;
        c.conn_limits.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let pem = s.running().cert_pem.clone().unwrap();
    let addr = s.running().grpc_addr;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&pem)));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    // The cap, filled by clients that finish TLS and send nothing.
    let mut silent = Vec::new();
    for _ in 0..CAP {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        silent.push(connector.connect(name.clone(), tcp).await.expect("TLS"));
    }
    // A legitimate caller gets in while they are still held.
    let tok = s.token("alice", "read", 600).await;
    let (_, mut u) = tapvault_server::client::clients(
        tapvault_server::client::channel(
            &format!("localhost:{}", addr.port()),
            &tapvault_server::client::Trust::from_fingerprint(
                &tapvault_server::tls::cert_fingerprint(&pem).unwrap(),
            )
            .unwrap(),
        )
        .unwrap(),
        Some(&tok),
    )
    .unwrap();
    let t0 = Instant::now();
    tokio::time::timeout(handshake * 2, u.info(pb::InfoRequest {}))
        .await
        .expect("a legitimate call is not locked out by silent connections")
        .expect("served at the cap");
    let legit = t0.elapsed();
    assert!(
        legit < handshake,
        "a legitimate call took {legit:?} at the cap"
    );

    // Every silent one is closed by the server, within the timeout.
    let t0 = Instant::now();
    for mut c in silent {
        // The server's own HTTP/2 settings come first; then the close.
        let mut b = [0u8; 256];
        let closed = tokio::time::timeout(handshake * 3, async {
            loop {
                match c.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a silent TLS connection was still open after {:?}",
            t0.elapsed()
        );
    }

    // The HTTP/2 preface dribbled a byte at a time: closed all the same.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut c = connector.connect(name.clone(), tcp).await.unwrap();
    let t0 = Instant::now();
    let mut closed = false;
    for byte in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".iter().cycle().take(40) {
        if c.write_all(&[*byte]).await.is_err() || c.flush().await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !closed {
        let mut b = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(1), c.read(&mut b)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("a dribbling client is open after {:?}", t0.elapsed()),
            }
        }
    }
    assert!(t0.elapsed() < handshake * 6, "{:?}", t0.elapsed());

    // The HTTP port: idle sockets and a half-sent request are closed too.
    let http = s.running().http_addr;
    let mut socks = Vec::new();
    for i in 0..20 {
        let mut t = tokio::net::TcpStream::connect(http).await.unwrap();
        if i % 2 == 0 {
            t.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        }
        socks.push(t);
    }
    let t0 = Instant::now();
    for mut t in socks {
        let mut b = [0u8; 64];
        let r = tokio::time::timeout(handshake * 3, t.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "an idle HTTP connection was open after {:?}",
            t0.elapsed()
        );
    }
    let (code, _) = http_get(http, "/healthz").await;
    assert_eq!(code, 200);
    u.info(pb::InfoRequest {}).await.unwrap();
    s.stop().await;
}
