//! Per-tenant usage and quotas (charged by triggers, `migrations/0005`).

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Usage {
    pub bytes: i64,
    pub items: i64,
    pub max_bytes: Option<i64>,
    pub max_items: Option<i64>,
}

/// A tenant's usage and quota (zero and none for a tenant that stored nothing).
pub async fn usage(db: &Db, tenant: TenantId) -> Result<Usage, StoreError> {
    Ok(sqlx::query_as(
        "SELECT bytes, items, max_bytes, max_items FROM tenant_usage WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(&db.pool)
    .await?
    .unwrap_or_default())
}

/// Sets a tenant's quota (`None`: no limit). A quota below current usage
/// refuses further writes; nothing stored is removed.
pub async fn set_quota(
    db: &Db,
    tenant: TenantId,
    max_bytes: Option<i64>,
    max_items: Option<i64>,
) -> Result<Usage, StoreError> {
    Ok(sqlx::query_as(
        "INSERT INTO tenant_usage AS u (tenant_id, max_bytes, max_items) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET max_bytes = $2, max_items = $3
         RETURNING bytes, items, max_bytes, max_items",
    )
    .bind(tenant)
    .bind(max_bytes)
    .bind(max_items)
    .fetch_one(&db.pool)
    .await?)
}

/// The quota a refused write ran into, in words (the trigger's message).
pub fn quota_message(e: &sqlx::Error) -> Option<String> {
    let d = e.as_database_error()?;
    match d.code().as_deref() {
        Some("TVQ01") | Some("TVQ02") => Some(d.message().to_string()),
        _ => None,
    }
}
