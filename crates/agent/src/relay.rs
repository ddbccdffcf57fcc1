//! The relay: tapd's credential-less `universerpc.Universe` calls, taken on
//! loopback and forwarded to the tapvault server with the node's token over
//! pinned TLS. A call is answered only with the server's answer, so a push
//! is acknowledged only after the server committed it; if the server cannot
//! be reached the call fails with UNAVAILABLE and tapd retries.

use crate::state::{now, Failure, StateStore};
use std::sync::Arc;
use std::time::Duration;
use tapvault_api::client::UniverseClient;
use tapvault_api::proto::universerpc::{self as pb, universe_server::Universe};
use tonic::{Request, Response, Status};

/// How long one forwarded call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Relay {
    pub upstream: UniverseClient,
    pub state: Arc<StateStore>,
}

/// Transport failures (server down, TLS, pin mismatch) become UNAVAILABLE so
/// tapd treats them as retryable; the server's own answers pass unchanged
/// (tapd matches some of their texts, e.g. "no universe proof found").
fn upstream_err(s: Status) -> Status {
    use std::error::Error;
    let transport = s.source().is_some()
        || matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        );
    if transport {
        let mut msg = format!("tapvault server unreachable: {}", s.message());
        let mut src = s.source();
        while let Some(e) = src {
            msg.push_str(&format!(": {e}"));
            src = e.source();
        }
        return Status::unavailable(msg);
    }
    if s.code() == tonic::Code::Unauthenticated || s.code() == tonic::Code::PermissionDenied {
        return Status::new(
            s.code(),
            format!(
                "the tapvault server refused the agent's token: {}",
                s.message()
            ),
        );
    }
    s
}

impl Relay {
    async fn forward<Q, R, F, Fut>(
        &self,
        name: &str,
        req: Request<Q>,
        f: F,
    ) -> Result<Response<R>, Status>
    where
        Q: 'static,
        F: FnOnce(UniverseClient, Request<Q>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<R>, Status>>,
    {
        // A proof tapd pushes gets its receipt fetched by the next audit.
        let item = (req.get_ref() as &dyn std::any::Any)
            .downcast_ref::<pb::AssetProof>()
            .and_then(|p| p.asset_leaf.as_ref())
            .map(|l| hex::encode(tapvault_codec::primitives::sha256(&[&l.proof])));
        // Nothing of tapd's metadata is passed on: only the message.
        let mut up = Request::new(req.into_inner());
        up.set_timeout(CALL_TIMEOUT);
        let res = f(self.upstream.clone(), up)
            .await
            .map(|r| Response::new(r.into_inner()))
            .map_err(upstream_err);
        // The server answering (even "not found") is a working relay; only
        // not reaching it or being refused counts as a failure.
        let failed = matches!(
            &res,
            Err(e) if matches!(
                e.code(),
                tonic::Code::Unavailable | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            )
        );
        let pushed = name == "insert_proof" && res.is_ok();
        self.state.update_volatile(|s| {
            if failed {
                s.relay.calls_failed += 1;
                if let Err(e) = &res {
                    s.relay.last_error = Some(Failure {
                        at: now(),
                        what: format!("relay {name}"),
                        error: format!("{:?}: {}", e.code(), e.message()),
                    });
                }
            } else {
                s.relay.calls_ok += 1;
                s.relay.last_ok_at = now();
                if pushed {
                    s.relay.pushes_ok += 1;
                    if let Some(h) = item.clone() {
                        s.log.await_receipt(1, h);
                    }
                }
            }
        });
        if let (true, Err(e)) = (failed, &res) {
            tracing::warn!("relay {name}: {}", e.message());
        }
        res
    }
}

/// One forwarding method per RPC of the service.
macro_rules! forward {
    ($($method:ident : $req:ty => $resp:ty;)*) => {
        #[tonic::async_trait]
        impl Universe for Relay {
            $(
                async fn $method(&self, req: Request<$req>) -> Result<Response<$resp>, Status> {
                    self.forward(stringify!($method), req, |mut c, r| async move { c.$method(r).await })
                        .await
                }
            )*
        }
    };
}

forward! {
    multiverse_root: pb::MultiverseRootRequest => pb::MultiverseRootResponse;
    asset_roots: pb::AssetRootRequest => pb::AssetRootResponse;
    query_asset_roots: pb::AssetRootQuery => pb::QueryRootResponse;
    delete_asset_root: pb::DeleteRootQuery => pb::DeleteRootResponse;
    asset_leaf_keys: pb::AssetLeafKeysRequest => pb::AssetLeafKeyResponse;
    asset_leaves: tapvault_api::compat::AssetLeavesRequest => pb::AssetLeafResponse;
    query_proof: pb::UniverseKey => pb::AssetProofResponse;
    insert_proof: pb::AssetProof => pb::AssetProofResponse;
    push_proof: pb::PushProofRequest => pb::PushProofResponse;
    info: pb::InfoRequest => pb::InfoResponse;
    sync_universe: pb::SyncRequest => pb::SyncResponse;
    list_federation_servers: pb::ListFederationServersRequest => pb::ListFederationServersResponse;
    add_federation_server: pb::AddFederationServerRequest => pb::AddFederationServerResponse;
    delete_federation_server: pb::DeleteFederationServerRequest => pb::DeleteFederationServerResponse;
    universe_stats: pb::StatsRequest => pb::StatsResponse;
    query_asset_stats: pb::AssetStatsQuery => pb::UniverseAssetStats;
    query_events: pb::QueryEventsRequest => pb::QueryEventsResponse;
    set_federation_sync_config: pb::SetFederationSyncConfigRequest => pb::SetFederationSyncConfigResponse;
    query_federation_sync_config: pb::QueryFederationSyncConfigRequest => pb::QueryFederationSyncConfigResponse;
    ignore_asset_out_point: pb::IgnoreAssetOutPointRequest => pb::IgnoreAssetOutPointResponse;
    update_supply_commit: pb::UpdateSupplyCommitRequest => pb::UpdateSupplyCommitResponse;
    fetch_supply_commit: pb::FetchSupplyCommitRequest => pb::FetchSupplyCommitResponse;
    fetch_supply_leaves: pb::FetchSupplyLeavesRequest => pb::FetchSupplyLeavesResponse;
    insert_supply_commit: pb::InsertSupplyCommitRequest => pb::InsertSupplyCommitResponse;
}
