//! The `tapvault.v1.Admin` service: tenants and tokens over the API (the
//! auth layer has already required the `admin` scope). A tenant's admin
//! manages its own tokens; the operator tenant's admins manage everyone.

use crate::auth::{self, Keys, Principal, Scope};
use crate::errors::ApiError;
use crate::proto::tapvault_v1::{self as pb, admin_server::Admin};
use tapvault_store::Db;
use tapvault_store::TenantId;
use tonic::{Request, Response, Status};

/// The longest token lifetime the API issues.
pub const MAX_TTL_SECS: u64 = 10 * 366 * 86400;

pub struct AdminService {
    pub db: Db,
    pub keys: Keys,
}

fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::unauthenticated("missing credentials").into())
}

fn internal(e: anyhow::Error) -> Status {
    crate::errors::any_err("admin", e)
}

const OPERATOR_ONLY: &str =
    "only the operator tenant's admin tokens (serve --operator-tenant) manage other tenants";

impl AdminService {
    /// The tenant a call names (empty: the caller's), if the caller may
    /// manage it.
    async fn target(&self, p: &Principal, name: &str) -> Result<(TenantId, String), Status> {
        if name.is_empty() {
            let own = tapvault_store::tenants::tenant_name(&self.db, p.tenant)
                .await
                .map_err(crate::errors::store_err)?;
            let own = own.ok_or_else(|| ApiError::denied("the caller's tenant is gone"))?;
            return Ok((p.tenant, own));
        }
        let id = auth::tenant_id(&self.db, name).await.map_err(internal)?;
        match id {
            Some(id) if id == p.tenant || p.operator => Ok((id, name.to_string())),
            // Whether another tenant exists is not a tenant admin's business.
            _ if !p.operator => Err(ApiError::denied(OPERATOR_ONLY).into()),
            _ => Err(ApiError::not_found(format!(
                "unknown tenant {name:?} (add it with AddTenant)"
            ))
            .into()),
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn add_tenant(
        &self,
        req: Request<pb::AddTenantRequest>,
    ) -> Result<Response<pb::AddTenantResponse>, Status> {
        let p = principal(&req)?;
        if !p.operator {
            return Err(ApiError::denied(OPERATOR_ONLY).into());
        }
        let name = req.into_inner().name;
        auth::check_tenant_name(&name).map_err(ApiError::invalid)?;
        let (id, existed) = auth::add_tenant(&self.db, &name).await.map_err(internal)?;
        if !existed {
            tracing::info!("tenant {name:?} added over the API");
        }
        Ok(Response::new(pb::AddTenantResponse {
            id: id.0,
            name,
            existed,
        }))
    }

    async fn list_tenants(
        &self,
        req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let p = principal(&req)?;
        let rows = auth::list_tenants(&self.db).await.map_err(internal)?;
        let tenants = rows
            .into_iter()
            .filter(|t| p.operator || t.id == p.tenant)
            .map(|t| pb::TenantInfo {
                id: t.id.0,
                name: t.name,
                active_tokens: t.active_tokens.try_into().unwrap_or(u32::MAX),
            })
            .collect();
        Ok(Response::new(pb::ListTenantsResponse { tenants }))
    }

    async fn issue_token(
        &self,
        req: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let scopes = Scope::parse_list(&r.scopes.join(",")).map_err(ApiError::invalid)?;
        if r.ttl_seconds == 0 || r.ttl_seconds > MAX_TTL_SECS {
            return Err(ApiError::invalid(format!(
                "ttl_seconds must be between 1 and {MAX_TTL_SECS} (ten years), got {}",
                r.ttl_seconds
            ))
            .into());
        }
        let (_, tenant) = self.target(&p, &r.tenant).await?;
        let (token, claims) = auth::issue(&self.db, &self.keys, &tenant, &scopes, r.ttl_seconds)
            .await
            .map_err(internal)?;
        tracing::info!(
            "token {} issued over the API for tenant {tenant:?} ({})",
            claims.jti,
            claims.scope
        );
        Ok(Response::new(pb::IssueTokenResponse {
            token,
            jti: claims.jti,
            tenant,
            scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
            expires_at: claims.exp as i64,
        }))
    }

    async fn list_tokens(
        &self,
        req: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let (tid, _) = self.target(&p, &r.tenant).await?;
        let rows = auth::list_tokens(&self.db, Some(tid), r.include_inactive)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: rows.into_iter().map(token_pb).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        req: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let p = principal(&req)?;
        let jti = req.into_inner().jti;
        if jti.is_empty() {
            return Err(ApiError::invalid("jti is required").into());
        }
        let scope = (!p.operator).then_some(p.tenant);
        if !auth::revoke(&self.db, &jti, scope)
            .await
            .map_err(internal)?
        {
            return Err(ApiError::not_found(format!(
                "no active token with jti {jti}{}",
                if p.operator { "" } else { " in your tenant" }
            ))
            .into());
        }
        tracing::info!("token {jti} revoked over the API");
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn set_quota(
        &self,
        req: Request<pb::SetQuotaRequest>,
    ) -> Result<Response<pb::QuotaInfo>, Status> {
        let p = principal(&req)?;
        if !p.operator {
            return Err(ApiError::denied(
                "only the operator tenant's admin tokens (serve --operator-tenant) set quotas",
            )
            .into());
        }
        let r = req.into_inner();
        if r.max_bytes < 0 || r.max_items < 0 {
            return Err(
                ApiError::invalid("max_bytes and max_items must be >= 0 (0: no limit)").into(),
            );
        }
        if r.tenant.is_empty() {
            return Err(ApiError::invalid("tenant is required").into());
        }
        let (tid, tenant) = self.target(&p, &r.tenant).await?;
        let lim = |v: i64| (v > 0).then_some(v);
        let u = tapvault_store::quota::set_quota(&self.db, tid, lim(r.max_bytes), lim(r.max_items))
            .await
            .map_err(crate::errors::store_err)?;
        tracing::info!(
            "quota of tenant {tenant:?} set to {} bytes, {} items (0: none)",
            r.max_bytes,
            r.max_items
        );
        Ok(Response::new(quota_pb(tenant, u)))
    }

    async fn get_quota(
        &self,
        req: Request<pb::GetQuotaRequest>,
    ) -> Result<Response<pb::QuotaInfo>, Status> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let (tid, tenant) = self.target(&p, &r.tenant).await?;
        let u = tapvault_store::quota::usage(&self.db, tid)
            .await
            .map_err(crate::errors::store_err)?;
        Ok(Response::new(quota_pb(tenant, u)))
    }
}

pub fn quota_pb(tenant: String, u: tapvault_store::quota::Usage) -> pb::QuotaInfo {
    pb::QuotaInfo {
        tenant,
        bytes: u.bytes,
        items: u.items,
        max_bytes: u.max_bytes.unwrap_or(0),
        max_items: u.max_items.unwrap_or(0),
    }
}

pub fn token_pb(t: auth::TokenRow) -> pb::TokenInfo {
    pb::TokenInfo {
        jti: t.jti,
        tenant: t.tenant,
        scopes: t.scopes.split(' ').map(String::from).collect(),
        issued_at: t.issued_at.secs(),
        expires_at: t.expires_at.secs(),
        revoked_at: t.revoked_at.map(|r| r.secs()).unwrap_or(0),
    }
}
