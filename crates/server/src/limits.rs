//! Memory bounds for large calls. tonic buffers a whole request message
//! before the handler sees it, and decoding, verifying and storing a proof
//! holds a few more copies; many concurrent 100 MiB pushes would take the
//! process down. Every gRPC request message starts with a 5-byte prefix
//! giving its length, so this layer reads the prefix, reserves the message's
//! size from a process-wide budget before letting a single byte more in,
//! and releases it when the call is answered. Messages under
//! [`LARGE_CALL`] skip the budget, so small calls (another tenant's
//! InsertProof) are never held up by large ones. A reservation is taken
//! whole, never piecemeal, so waiting calls cannot deadlock each other.

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::Status;

/// Messages at least this large draw on the budget.
pub const LARGE_CALL: u64 = 1 << 20;
/// Default budget: bytes of large messages in flight at once.
pub const DEFAULT_LARGE_CALL_BUDGET: u64 = 512 << 20;
/// How long a large call waits for room before it is turned away.
pub const BUDGET_WAIT: Duration = Duration::from_secs(60);

/// The budget counts KiB (a semaphore's permits are `u32` per acquire).
const UNIT: u64 = 1024;

#[derive(Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    units: u32,
    wait: Duration,
}

impl Budget {
    /// `bytes` of large messages at once; a call waits at most `wait` for room.
    pub fn new(bytes: u64, wait: Duration) -> Self {
        let units = (bytes / UNIT).clamp(1, u32::MAX as u64) as u32;
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
            wait,
        }
    }
    /// Bytes currently reserved.
    pub fn in_use(&self) -> u64 {
        (self.units as u64 - self.sem.available_permits() as u64) * UNIT
    }
}

#[derive(Clone)]
pub struct BudgetLayer {
    pub budget: Budget,
}

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = BudgetService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BudgetService {
            inner,
            budget: self.budget.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BudgetService<S> {
    inner: S,
    budget: Budget,
}

type BoxBody = tonic::body::Body;

/// A body whose first bytes were read ahead (to learn the message size).
struct Prefixed {
    head: Option<Bytes>,
    rest: BoxBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(h) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(h))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        let mut h = self.rest.size_hint();
        let n = self.head.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        h.set_lower(h.lower() + n);
        if let Some(u) = h.upper() {
            h.set_upper(u + n);
        }
        h
    }
}

/// Reads until the 5-byte gRPC prefix is in; returns what was read and
/// the announced message length (None: the body ended first).
async fn read_prefix(body: &mut BoxBody) -> Result<(BytesMut, Option<u64>), Status> {
    let mut head = BytesMut::new();
    while head.len() < 5 {
        match std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            Some(Ok(f)) => {
                if let Ok(mut d) = f.into_data() {
                    while d.has_remaining() {
                        let c = d.chunk();
                        head.extend_from_slice(c);
                        let n = c.len();
                        d.advance(n);
                    }
                }
            }
            Some(Err(e)) => return Err(e),
            None => return Ok((head, None)),
        }
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as u64;
    Ok((head, Some(len)))
}

impl<S> tower::Service<http::Request<BoxBody>> for BudgetService<S>
where
    S: tower::Service<http::Request<BoxBody>, Response = http::Response<BoxBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<BoxBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let budget = self.budget.clone();
        Box::pin(async move {
            let (parts, mut body) = req.into_parts();
            let (head, len) = match read_prefix(&mut body).await {
                Ok(v) => v,
                Err(s) => return Ok(s.into_http()),
            };
            let mut permit = None;
            if let Some(len) = len.filter(|l| *l >= LARGE_CALL) {
                let units = len.div_ceil(UNIT).min(budget.units as u64) as u32;
                match tokio::time::timeout(
                    budget.wait,
                    budget.sem.clone().acquire_many_owned(units),
                )
                .await
                {
                    Ok(Ok(p)) => permit = Some(p),
                    _ => {
                        return Ok(tonic::Status::from(crate::errors::ApiError::too_large(
                            format!(
                            "the server is busy with other large calls ({len} bytes did not fit in \
                             {:?}); retry later",
                            budget.wait
                        ),
                        ))
                        .into_http())
                    }
                }
            }
            let body = tonic::body::Body::new(Prefixed {
                head: (!head.is_empty()).then(|| head.freeze()),
                rest: body,
            });
            let res = inner.call(http::Request::from_parts(parts, body)).await;
            // Unary calls are answered after the request was consumed.
            drop(permit);
            res
        })
    }
}
