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
//!   half-open sockets cannot pin descriptors;
//! * closes a connection that has not begun a request within the handshake
//!   timeout of its accept (silent after TLS, or dribbling the HTTP/2
//!   preface), and one with no open request for longer than its idle time:
//!   the handshake timeout until a request of it passed authentication,
//!   then the idle timeout. Pings and other frames do not count: only
//!   requests do, so a connection cannot be held open for free;
//! * when the cap is reached, closes every connection with no open request
//!   to make room, and says so in the log (at most once per 10 s).
//!
//! The services see each connection's [`ConnWatch`] in the request's
//! [`ConnInfo`], and report requests opening and closing through it.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected;

/// Connection limits of a port.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// A connection must finish its TLS handshake (or send its first byte,
    /// without TLS), and begin its first request, within this time; one
    /// whose requests never passed authentication is closed this long after
    /// its last request ended.
    pub handshake_timeout: Duration,
    /// An authenticated connection with no open request is closed after this.
    pub idle_timeout: Duration,
    /// Most open connections (further ones wait in the kernel's backlog).
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 4096,
        }
    }
}

/// What the services tell the accept loop about one connection.
#[derive(Debug)]
pub struct ConnWatch {
    accepted: Instant,
    open: AtomicUsize,
    /// A request has begun on it.
    ever: AtomicBool,
    /// A request of it passed authentication.
    trusted: AtomicBool,
    /// Milliseconds after `accepted` when the last request ended.
    idle_since_ms: AtomicU64,
    /// Closed to make room (set only while no request is open).
    evict: AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl ConnWatch {
    fn new() -> Self {
        ConnWatch {
            accepted: Instant::now(),
            open: AtomicUsize::new(0),
            ever: AtomicBool::new(false),
            trusted: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            evict: AtomicBool::new(false),
            waker: std::sync::Mutex::new(None),
        }
    }

    /// A request began; it counts as open until the guard is dropped (when
    /// its response has been sent, or abandoned).
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.ever.store(true, Ordering::Release);
        RequestGuard(self.clone())
    }

    /// A request of this connection passed authentication: it may idle for
    /// the idle timeout rather than the handshake timeout.
    pub fn trust(&self) {
        self.trusted.store(true, Ordering::Release);
    }

    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
    }

    /// Why the connection should close now, if it should.
    fn expired(&self, limits: &ConnLimits, now: Instant) -> Option<&'static str> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.evict.load(Ordering::Acquire) {
            return Some("closed to make room: the connection cap is reached");
        }
        let (base, limit, why) = self.idle_rule(limits);
        (now >= base + limit).then_some(why)
    }

    fn idle_rule(&self, limits: &ConnLimits) -> (Instant, Duration, &'static str) {
        if !self.ever.load(Ordering::Acquire) {
            return (
                self.accepted,
                limits.handshake_timeout,
                "no request began within the handshake timeout",
            );
        }
        let base =
            self.accepted + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        if self.trusted.load(Ordering::Acquire) {
            (
                base,
                limits.idle_timeout,
                "idle (no open request) for the idle timeout",
            )
        } else {
            (
                base,
                limits.handshake_timeout,
                "no authenticated request, idle for the handshake timeout",
            )
        }
    }

    /// When to look again.
    fn next_check(&self, limits: &ConnLimits, now: Instant) -> Instant {
        if self.open.load(Ordering::Acquire) > 0 {
            return now + limits.idle_timeout.min(limits.handshake_timeout);
        }
        let (base, limit, _) = self.idle_rule(limits);
        (base + limit).max(now + Duration::from_millis(1))
    }
}

/// An open request of a connection (see [`ConnWatch::request`]).
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnWatch>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let w = &self.0;
        let ms = w.accepted.elapsed().as_millis() as u64;
        w.idle_since_ms.store(ms, Ordering::Release);
        if w.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The reader may be parked on a deadline computed while busy.
            w.wake();
        }
    }
}

/// A connection's address and watch, in every request's extensions.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub watch: Arc<ConnWatch>,
}

/// The live connections of a port, for making room at the cap.
#[derive(Default)]
struct Registry {
    conns: std::sync::Mutex<Vec<std::sync::Weak<ConnWatch>>>,
}

impl Registry {
    fn add(&self, w: &Arc<ConnWatch>, cap: usize) {
        let mut v = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= cap.saturating_mul(2).max(64) {
            v.retain(|x| x.strong_count() > 0);
        }
        v.push(Arc::downgrade(w));
    }

    /// Marks every connection with no open request for closing; how many.
    fn evict_idle(&self) -> usize {
        let mut v = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|x| x.strong_count() > 0);
        let mut n = 0;
        for w in v.iter().filter_map(|x| x.upgrade()) {
            if w.open.load(Ordering::Acquire) == 0 && !w.evict.swap(true, Ordering::AcqRel) {
                w.wake();
                n += 1;
            }
        }
        n
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
    watch: Arc<ConnWatch>,
    limits: ConnLimits,
    timer: Pin<Box<tokio::time::Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    /// The connection's watch (what the services report requests to).
    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            remote: self.remote,
            local: self.local,
            watch: self.watch.clone(),
        }
    }

    /// The error that closes the connection, when it has outlived its rules.
    fn closing(&self, now: Instant) -> Option<io::Error> {
        let why = self.watch.expired(&self.limits, now)?;
        tracing::debug!("closing connection from {:?}: {why}", self.remote);
        Some(io::Error::new(io::ErrorKind::TimedOut, why))
    }

    /// Fails the read when the connection has outlived its rules; else
    /// arms the timer for the next look.
    fn check(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        loop {
            let now = Instant::now();
            if let Some(e) = self.closing(now) {
                return Some(e);
            }
            *self.watch.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            let at = self.watch.next_check(&self.limits, now);
            self.timer.as_mut().reset(at.into());
            if self.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
        }
    }
}

enum ConnIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = match &mut self.io {
            ConnIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        // Checked on every read, not only when nothing arrives: a peer
        // streaming pings must not keep an idle connection alive.
        match r {
            Poll::Pending => match self.check(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            Poll::Ready(Ok(())) => match self.closing(Instant::now()) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Ready(Ok(())),
            },
            other => other,
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
    let registry = Arc::new(Registry::default());
    tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let mut backoff = Duration::from_millis(5);
        let mut last_warning: Option<Instant> = None;
        loop {
            let slot = match slots.clone().try_acquire_owned() {
                Ok(s) => s,
                Err(tokio::sync::TryAcquireError::Closed) => return,
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    // At the cap: connections with no open request make room.
                    let evicted = registry.evict_idle();
                    stats.cap_reached.fetch_add(1, Ordering::Relaxed);
                    if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        last_warning = Some(Instant::now());
                        tracing::warn!(
                            "connection cap of {} reached on {}; closing {evicted} connections with \
                             no open request to make room (this warning repeats at most every 10 s)",
                            limits.max_connections,
                            listener
                                .local_addr()
                                .map(|a| a.to_string())
                                .unwrap_or_default()
                        );
                    }
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    slot
                }
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
            let limits = limits.clone();
            let registry = registry.clone();
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
                let watch = Arc::new(ConnWatch::new());
                registry.add(&watch, limits.max_connections);
                let _ = tx
                    .send(Conn {
                        io,
                        remote: Some(remote),
                        local,
                        watch,
                        limits,
                        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
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
    /// Times an accept found every slot taken.
    pub cap_reached: std::sync::atomic::AtomicU64,
}

use tokio_stream::StreamExt as _;
