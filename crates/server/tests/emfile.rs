//! The accept loop survives EMFILE: when the process runs out of file
//! descriptors, accept() fails; tonic's own loop ended for good there (the
//! port stayed closed after the attacker left). Ours backs off and keeps
//! accepting. Alone in its test binary: it lowers this process's limit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tapvault_server::listener::{incoming, ConnLimits, ConnStats};
use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

/// Sets the soft limit (the hard one stays, so it can be raised again).
fn set_nofile(n: u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_cur = n.min(l.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &l), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_loop_backs_off_on_emfile_and_keeps_accepting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Clients waiting in the backlog before anything is accepted.
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let stats = Arc::new(ConnStats::default());
    let limits = ConnLimits {
        idle_timeout: std::time::Duration::from_secs(300),
        handshake_timeout: Duration::from_millis(500),
        max_connections: 100_000,
    };
    // Room for a handful of accepted sockets only.
    set_nofile(open_fds() + 8);
    let mut conns = Box::pin(incoming(listener, None, limits, stats.clone()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        stats.accept_errors.load(Ordering::Relaxed) > 0,
        "accept() should have hit EMFILE"
    );
    // The attacker leaves; descriptors come back.
    drop(clients);
    set_nofile(4096);
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"PRI").await.unwrap();
    let me = c.local_addr().unwrap();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(conn) = conns.next().await {
            let conn = conn.unwrap();
            use tonic::transport::server::Connected;
            if conn.connect_info().remote == Some(me) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the loop stopped accepting after EMFILE");
}
