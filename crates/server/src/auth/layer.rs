//! The tower layer in front of every gRPC service: the method's rule from
//! [`access_for_path`], the token (or trusted network) checked, the
//! request's [`TenantId`] and [`Principal`] put in its extensions.

use super::{access_for_path, Access, Authenticator};
use std::sync::Arc;
use tapvault_api::listener::ConnInfo;
use tonic::Status;

/// Tower layer enforcing [`Authenticator`] on every gRPC call but health.
#[derive(Clone)]
pub struct AuthLayer {
    pub auth: Arc<Authenticator>,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

type BoxBody = tonic::body::Body;

impl<S> tower::Service<http::Request<BoxBody>> for AuthService<S>
where
    S: tower::Service<http::Request<BoxBody>, Response = http::Response<BoxBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<BoxBody>) -> Self::Future {
        // Take the ready service, leave a clone (tower's readiness contract).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let path = req.uri().path().to_string();
            // The request is open on its connection until its response is
            // sent: the accept loop closes only connections with none open.
            let conn = req.extensions().get::<ConnInfo>().cloned();
            let guard = conn.as_ref().map(|c| c.watch.request());
            let res = Self::handle(inner, auth, req, &path, conn).await?;
            // A unary call's error is its headers (trailers-only): an
            // INTERNAL is worded for the call (crate::errors::for_call).
            let res = match tonic::Status::from_header_map(res.headers()) {
                Some(st) if st.code() == tonic::Code::Internal => {
                    crate::errors::for_call(&path, st).into_http()
                }
                _ => res,
            };
            Ok(match guard {
                Some(g) => res.map(|b| BoxBody::new(Guarded::new(b, g))),
                None => res,
            })
        })
    }
}

/// A response body holding its request's place on its connection (gRPC
/// here, HTTP in `serve_http`): the request counts as open until it is
/// sent or dropped.
pub(crate) struct Guarded<B> {
    body: B,
    _guard: tapvault_api::listener::RequestGuard,
}

impl<B> Guarded<B> {
    pub(crate) fn new(body: B, guard: tapvault_api::listener::RequestGuard) -> Self {
        Guarded {
            body,
            _guard: guard,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl<S> AuthService<S>
where
    S: tower::Service<http::Request<BoxBody>, Response = http::Response<BoxBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    async fn handle(
        mut inner: S,
        auth: Arc<Authenticator>,
        mut req: http::Request<BoxBody>,
        path: &str,
        conn: Option<ConnInfo>,
    ) -> Result<http::Response<BoxBody>, S::Error> {
        let (need, universe) = match access_for_path(path) {
            Some(Access::Open) => return inner.call(req).await,
            Some(Access::Token { scope, universe }) => (scope, universe),
            None => {
                return Ok(Status::from(crate::errors::ApiError::denied(format!(
                    "method {path} is not offered to any credentials"
                )))
                .into_http())
            }
        };
        let header = match super::authorization_header(req.headers()) {
            Ok(h) => h,
            Err(s) => return Ok(s.into_http()),
        };
        let remote = conn.as_ref().and_then(|c| c.remote).map(|a| a.ip());
        let remote = remote.filter(|_| universe);
        match auth.check(header.as_deref(), remote, need).await {
            Ok(_) if auth.read_only && super::writes(path) => Ok(Status::from(
                crate::errors::ApiError::refused(
                    "read-only replica: this server serves reads only (writes go to the primary vault)",
                ),
            )
            .into_http()),
            Ok(p) => {
                if let Some(c) = &conn {
                    c.watch.trust();
                }
                req.extensions_mut().insert(p.tenant);
                req.extensions_mut().insert(p);
                inner.call(req).await
            }
            Err(status) => Ok(status.into_http()),
        }
    }
}
