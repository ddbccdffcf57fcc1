//! The tower layer in front of every gRPC service: the method's rule from
//! [`access_for_path`], the token (or trusted network) checked, the
//! request's [`TenantId`] and [`Principal`] put in its extensions.

use super::{access_for_path, Access, Authenticator};
use std::sync::Arc;
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

    fn call(&mut self, mut req: http::Request<BoxBody>) -> Self::Future {
        // Take the ready service, leave a clone (tower's readiness contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let path = req.uri().path().to_string();
            let (need, universe) = match access_for_path(&path) {
                Some(Access::Open) => return inner.call(req).await,
                Some(Access::Token { scope, universe }) => (scope, universe),
                None => {
                    return Ok(Status::from(crate::errors::ApiError::denied(format!(
                        "method {path} is not offered to any credentials"
                    )))
                    .into_http())
                }
            };
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let remote = req
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|i| i.remote_addr())
                .or_else(|| {
                    req.extensions()
                        .get::<tonic::transport::server::TlsConnectInfo<
                            tonic::transport::server::TcpConnectInfo,
                        >>()
                        .and_then(|i| i.get_ref().remote_addr())
                })
                .map(|a| a.ip());
            let remote = remote.filter(|_| universe);
            match auth.check(header.as_deref(), remote, need).await {
                Ok(_) if auth.read_only && super::writes(&path) => Ok(Status::from(
                    crate::errors::ApiError::refused(
                        "read-only replica: this server serves reads only (writes go to the primary vault)",
                    ),
                )
                .into_http()),
                Ok(p) => {
                    req.extensions_mut().insert(p.tenant);
                    req.extensions_mut().insert(p);
                    inner.call(req).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
