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

/// Bytes of memory a large call holds per byte of its message at its
/// peak: the body buffered by tonic and the message decoded from it
/// (`bytes` fields are copied out of the buffer).
pub const HELD_PER_BYTE: u64 = 2;

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

/// The request body as tonic will read it, checked on the way: every
/// message's 5-byte prefix (a compressed flag only with a `grpc-encoding`,
/// flags 0 or 1) and that the body does not end inside a message. tonic
/// answers both with `INTERNAL`; they are the caller's mistakes, so the
/// body fails with `INVALID_ARGUMENT` naming them, and tonic passes that
/// status on as it is.
struct Framed {
    head: Option<Bytes>,
    rest: BoxBody,
    /// The call names a `grpc-encoding` other than identity.
    encoded: bool,
    /// Prefix bytes of the next message seen so far.
    prefix: Vec<u8>,
    /// Bytes of the current message still to come, and its announced size.
    remaining: u64,
    announced: u64,
    /// A unary request must carry one message (tonic calls its absence
    /// `INTERNAL`); `seen` says whether one began.
    need_message: bool,
    seen: bool,
    failed: bool,
}

impl Framed {
    fn new(head: Option<Bytes>, rest: BoxBody, encoded: bool, need_message: bool) -> Self {
        Framed {
            head,
            rest,
            encoded,
            prefix: Vec::with_capacity(5),
            remaining: 0,
            announced: 0,
            need_message,
            seen: false,
            failed: false,
        }
    }

    fn scan(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len() as u64);
                self.remaining -= n;
                data = &data[n as usize..];
                continue;
            }
            let n = (5 - self.prefix.len()).min(data.len());
            self.prefix.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.prefix.len() == 5 {
                match self.prefix[0] {
                    0 => {}
                    1 if self.encoded => {}
                    1 => {
                        return Err(Status::invalid_argument(
                            "a message has its compressed flag set, but the call names no \
                             grpc-encoding: send it uncompressed (flag 0)",
                        ))
                    }
                    f => {
                        return Err(Status::invalid_argument(format!(
                            "a message's compressed flag is {f}: only 0 and 1 exist"
                        )))
                    }
                }
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]) as u64;
                self.announced = len;
                self.remaining = len;
                self.seen = true;
                self.prefix.clear();
            }
        }
        Ok(())
    }

    fn at_end(&self) -> Result<(), Status> {
        if self.need_message && !self.seen && self.prefix.is_empty() {
            return Err(Status::invalid_argument(
                "the request carries no message (a gRPC call sends one, length-prefixed)",
            ));
        }
        if !self.prefix.is_empty() {
            return Err(Status::invalid_argument(format!(
                "the request ends inside a message's 5-byte length prefix ({} bytes of it sent)",
                self.prefix.len()
            )));
        }
        if self.remaining > 0 {
            return Err(Status::invalid_argument(format!(
                "the request ends inside a message: its length prefix announces {} bytes, {} \
                 followed",
                self.announced,
                self.announced - self.remaining
            )));
        }
        Ok(())
    }
}

impl Body for Framed {
    type Data = Bytes;
    type Error = Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match self.head.take() {
            Some(h) => Some(Ok(Frame::data(h))),
            None => std::task::ready!(Pin::new(&mut self.rest).poll_frame(cx)),
        };
        let checked = match &frame {
            Some(Ok(f)) => match f.data_ref() {
                Some(d) => {
                    let d = d.clone();
                    self.scan(&d)
                }
                None => Ok(()),
            },
            Some(Err(_)) => Ok(()),
            None => self.at_end(),
        };
        match checked {
            Ok(()) => Poll::Ready(frame),
            Err(s) => {
                self.failed = true;
                Poll::Ready(Some(Err(s)))
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        // A unary request with no message yet must be polled to its end,
        // where it fails (tonic would not poll an ended body, and call the
        // missing message INTERNAL).
        if self.need_message && !self.seen && !self.failed {
            return false;
        }
        self.failed
            || (self.head.is_none()
                && self.rest.is_end_stream()
                && self.prefix.is_empty()
                && self.remaining == 0)
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
            // Over the limit: refused from the prefix, before the body is
            // read (tonic would buffer it whole to say OUT_OF_RANGE).
            if let Some(len) = len.filter(|l| *l > crate::MAX_MESSAGE_BYTES as u64) {
                return Ok(
                    tonic::Status::from(crate::errors::ApiError::too_large(format!(
                        "the message is {len} bytes; at most {} are accepted",
                        crate::MAX_MESSAGE_BYTES
                    )))
                    .into_http(),
                );
            }
            if let Some(len) = len.filter(|l| *l >= LARGE_CALL) {
                // What a call holds at its peak, not just its message: the
                // buffer tonic reads it into and the decoded copy.
                let held = len.saturating_mul(HELD_PER_BYTE);
                let units = held.div_ceil(UNIT).min(budget.units as u64) as u32;
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
            let encoded = parts
                .headers
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
            // Reflection is the one call whose requests stream (and may be none).
            let unary = !parts.uri.path().starts_with("/grpc.reflection.");
            let body = tonic::body::Body::new(Framed::new(
                (!head.is_empty()).then(|| head.freeze()),
                body,
                encoded,
                unary,
            ));
            let res = inner.call(http::Request::from_parts(parts, body)).await;
            // Unary calls are answered after the request was consumed.
            drop(permit);
            res
        })
    }
}
