//! Tenants and their tokens' records (the tokens themselves are never
//! stored). Every other table is keyed by a [`TenantId`].

use crate::db::{Db, StoreError};
use crate::time::Timestamp;

/// A tenant's id. Requests carry it from the auth layer to every store
/// call; a bare integer never stands for a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct TenantId(pub i64);

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A tenant as listed: id, name, tokens neither revoked nor expired.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub active_tokens: i64,
}

/// A recorded token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub jti: String,
    pub tenant: String,
    pub scopes: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// What a request's token is checked against.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRecord {
    pub revoked: bool,
    /// `None` when the tenant is gone.
    pub tenant_name: Option<String>,
    pub tenant_id: TenantId,
    pub scopes: String,
}

pub async fn tenant_id(db: &Db, name: &str) -> Result<Option<TenantId>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?)
}

pub async fn tenant_name(db: &Db, id: TenantId) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?)
}

/// The id of tenant `name`, creating it if needed.
pub async fn ensure_tenant(db: &Db, name: &str) -> Result<TenantId, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tenants (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING id",
    )
    .bind(name)
    .fetch_one(&db.pool)
    .await?)
}

pub async fn list_tenants(db: &Db) -> Result<Vec<TenantRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tn.id, tn.name, count(t.jti) AS active_tokens
         FROM tenants tn LEFT JOIN tokens t ON t.tenant_id = tn.id
              AND t.revoked_at IS NULL AND t.expires_at > now()
         GROUP BY tn.id, tn.name ORDER BY tn.id",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Records an issued token.
pub async fn record_token(
    db: &Db,
    jti: &str,
    tenant: TenantId,
    scopes: &str,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (jti, tenant_id, scopes, expires_at)
         VALUES ($1, $2, $3, tapvault_time($4))",
    )
    .bind(jti)
    .bind(tenant)
    .bind(scopes)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Revokes an active token; with `tenant`, only one of that tenant's.
/// False when there is no such unrevoked token.
pub async fn revoke_token(
    db: &Db,
    jti: &str,
    tenant: Option<TenantId>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE tokens SET revoked_at = now()
         WHERE jti = $1 AND revoked_at IS NULL AND ($2::BIGINT IS NULL OR tenant_id = $2)",
    )
    .bind(jti)
    .bind(tenant)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Tokens of one tenant (or all), newest first.
pub async fn list_tokens(
    db: &Db,
    tenant: Option<TenantId>,
    include_inactive: bool,
) -> Result<Vec<TokenRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.jti, tn.name AS tenant, t.scopes,
                tapvault_micros(t.issued_at) AS issued_at,
                tapvault_micros(t.expires_at) AS expires_at,
                tapvault_micros(t.revoked_at) AS revoked_at
         FROM tokens t JOIN tenants tn ON tn.id = t.tenant_id
         WHERE ($1::BIGINT IS NULL OR t.tenant_id = $1)
           AND ($2 OR (t.revoked_at IS NULL AND t.expires_at > now()))
         ORDER BY t.issued_at DESC, t.jti",
    )
    .bind(tenant)
    .bind(include_inactive)
    .fetch_all(&db.pool)
    .await?)
}

/// The record of a token by its jti.
pub async fn token_record(db: &Db, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.revoked_at IS NOT NULL AS revoked, tn.name AS tenant_name,
                t.tenant_id, t.scopes
         FROM tokens t LEFT JOIN tenants tn ON tn.id = t.tenant_id WHERE t.jti = $1",
    )
    .bind(jti)
    .fetch_optional(&db.pool)
    .await?)
}
