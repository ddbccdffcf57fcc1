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
    /// The expiry recorded at issue: the truth, whatever the JWT claims.
    pub expires_at: Timestamp,
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
    db.tokens.evict(jti);
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
/// How long a token record read from the database is trusted without
/// reading it again. Revocations reach the cache sooner: at once when made
/// through this `Db` ([`revoke_token`]), and through the
/// [`TOKEN_CHANNEL`] notification (a trigger on `tokens`) when made by
/// another process; this bound covers a notification that is lost.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The channel a token's change is announced on (payload: its jti, or
/// `*` when a tenant changed).
pub const TOKEN_CHANNEL: &str = "tapvault_token_changed";

/// Token records by jti, each for at most [`TOKEN_CACHE_TTL`]: a call
/// carrying a known token costs no database round trip.
#[derive(Clone, Default)]
pub struct TokenCache {
    inner: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (TokenRecord, std::time::Instant)>>,
    >,
}

impl TokenCache {
    /// Most records held; past it the cache starts over (bounded memory
    /// whatever the number of tokens in use).
    const CAP: usize = 100_000;

    fn get(&self, jti: &str) -> Option<TokenRecord> {
        let m = self.inner.lock().ok()?;
        let (rec, at) = m.get(jti)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| rec.clone())
    }
    fn put(&self, jti: &str, rec: TokenRecord) {
        if let Ok(mut m) = self.inner.lock() {
            if m.len() >= Self::CAP {
                m.clear();
            }
            m.insert(jti.to_string(), (rec, std::time::Instant::now()));
        }
    }
    /// Forgets one token (it changed).
    pub fn evict(&self, jti: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(jti);
        }
    }
    /// Forgets every token (notifications may have been missed).
    pub fn clear(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.clear();
        }
    }
}

/// A token's record, from the cache when read less than
/// [`TOKEN_CACHE_TTL`] ago. Unknown tokens are not cached.
pub async fn token_record(db: &Db, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
    if let Some(r) = db.tokens.get(jti) {
        return Ok(Some(r));
    }
    let rec: Option<TokenRecord> = sqlx::query_as(
        "SELECT t.revoked_at IS NOT NULL AS revoked, tn.name AS tenant_name,
                t.tenant_id, t.scopes, tapvault_micros(t.expires_at) AS expires_at
         FROM tokens t LEFT JOIN tenants tn ON tn.id = t.tenant_id WHERE t.jti = $1",
    )
    .bind(jti)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(r) = &rec {
        db.tokens.put(jti, r.clone());
    }
    Ok(rec)
}

/// Keeps `db`'s token cache current with revocations made by other
/// processes (the CLI, a second server): listens on [`TOKEN_CHANNEL`] and
/// evicts each changed token; whenever the listening connection is lost,
/// the whole cache is dropped, since notifications may have been missed.
pub async fn follow_token_changes(db: Db) {
    loop {
        db.tokens.clear();
        let mut l = match sqlx::postgres::PgListener::connect_with(&db.pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("token notifications: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        // Anything revoked before LISTEN took effect is covered by the
        // clear below, made after it.
        if let Err(e) = l.listen(TOKEN_CHANNEL).await {
            tracing::debug!("token notifications: {e}");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        db.tokens.clear();
        loop {
            match l.try_recv().await {
                Ok(Some(n)) if n.payload() == "*" => db.tokens.clear(),
                Ok(Some(n)) => db.tokens.evict(n.payload()),
                // The connection dropped (it reconnects on the next call).
                Ok(None) => db.tokens.clear(),
                Err(e) => {
                    tracing::debug!("token notifications: {e}");
                    break;
                }
            }
        }
    }
}
