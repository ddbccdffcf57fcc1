//! The gRPC accept loop. tonic's own loop ends for good on the first accept
//! error it does not expect (EMFILE when file descriptors run out), and it
//! waits forever for a TLS handshake. This one:
//!
//! * never ends on an accept error: it backs off (5 ms doubling to 1 s) and
//!   keeps accepting, so the port comes back as soon as descriptors do;
//! * caps open connections below the process's descriptor limit (leaving
//!   room for the database pool and files), pausing accepts at the cap;
//! * closes a connection whose TLS handshake (or, without TLS, whose first
//!   byte) has not arrived within the handshake timeout, so idle and
//!   half-open sockets cannot pin descriptors.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connection limits of the gRPC port.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// A connection must finish its TLS handshake (or send its first byte,
    /// without TLS) within this time.
    pub handshake_timeout: Duration,
    /// Most open connections (further ones wait in the kernel's backlog).
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Descriptors kept free for the database pool, log and data files.
const FD_RESERVE: u64 = 128;

/// Raises the soft descriptor limit to the hard one and returns it.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1024;
        }
        if l.rlim_cur < l.rlim_max {
            let want = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                l.rlim_cur = l.rlim_max;
            }
        }
        l.rlim_cur
    }
}

/// The connection cap that fits under a descriptor limit.
pub fn cap_for_nofile(configured: usize, nofile: u64) -> usize {
    let room = nofile.saturating_sub(FD_RESERVE).max(16) as usize;
    configured.min(room)
}

/// One accepted connection: plain TCP or TLS, holding its slot.
pub struct Conn {
    io: ConnIo,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    _slot: OwnedSemaphorePermit,
}

enum ConnIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.local,
            remote_addr: self.remote,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.io {
            ConnIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            ConnIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            ConnIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            ConnIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            ConnIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match &self.io {
            ConnIo::Plain(s) => s.is_write_vectored(),
            ConnIo::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// A rustls server config with tapd's required ALPN (`h2`).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use anyhow::Context as _;
    let certs = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .context("reading the TLS certificate")?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .context("reading the TLS key")?
        .ok_or_else(|| anyhow::anyhow!("no private key in the TLS key file"))?;
    let mut c = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS certificate and key")?;
    c.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(c))
}

/// Whether an accept error is about one connection (retry at once) rather
/// than the process (descriptors, memory: back off).
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Accepts connections for tonic until `listener`'s task is dropped. The
/// stream never yields an error.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
) -> impl tokio_stream::Stream<Item = Result<Conn, io::Error>> {
    let (tx, rx) = mpsc::channel::<Conn>(64);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let mut backoff = Duration::from_millis(5);
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, remote) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(v) => v,
                    Err(e) if per_connection(&e) => continue,
                    Err(e) => {
                        stats.accept_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("gRPC accept failed ({e}); retrying in {backoff:?}");
                        drop(slot);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            backoff = Duration::from_millis(5);
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().ok();
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            let timeout = limits.handshake_timeout;
            let stats = stats.clone();
            tokio::spawn(async move {
                let io = match acceptor {
                    Some(a) => match tokio::time::timeout(timeout, a.accept(stream)).await {
                        Ok(Ok(s)) => ConnIo::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {remote} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            stats
                                .handshake_timeouts
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::debug!("no TLS handshake from {remote} in {timeout:?}");
                            return;
                        }
                    },
                    None => {
                        let mut b = [0u8; 1];
                        match tokio::time::timeout(timeout, stream.peek(&mut b)).await {
                            Ok(Ok(n)) if n > 0 => ConnIo::Plain(stream),
                            Ok(_) => return,
                            Err(_) => {
                                stats
                                    .handshake_timeouts
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                };
                let _ = tx
                    .send(Conn {
                        io,
                        remote: Some(remote),
                        local,
                        _slot: slot,
                    })
                    .await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok)
}

/// Counters of the accept loop (rendered in /metrics).
#[derive(Default, Debug)]
pub struct ConnStats {
    pub accept_errors: std::sync::atomic::AtomicU64,
    pub handshake_timeouts: std::sync::atomic::AtomicU64,
}

use tokio_stream::StreamExt as _;
