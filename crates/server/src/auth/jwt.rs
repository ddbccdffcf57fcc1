//! Tokens: EdDSA (Ed25519, keys generated into the data dir) or HS256 JWTs,
//! their claims, issuing (recorded by jti in the store) and the tenant and
//! token records behind them.

use super::Scope;
use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use std::path::Path;
use tapvault_store::tenants::{self, TenantId};
use tapvault_store::{Db, Timestamp};

pub const ISSUER: &str = "tapvault";
pub const AUDIENCE: &str = "tapvault";

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Claims {
    pub sub: String,
    pub scope: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
}

/// Signing and verification keys.
#[derive(Clone)]
pub struct Keys {
    pub(super) alg: Algorithm,
    enc: EncodingKey,
    pub(super) dec: DecodingKey,
}

impl Keys {
    /// Ed25519 keys in `dir` (`jwt-ed25519.pem`, private, 0600; and
    /// `jwt-ed25519.pub.pem`), generated on first use.
    pub fn ed25519_in(dir: &Path) -> Result<Self> {
        let sk = dir.join("jwt-ed25519.pem");
        let pk = dir.join("jwt-ed25519.pub.pem");
        if !sk.exists() {
            std::fs::create_dir_all(dir)?;
            let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
                .context("generating an Ed25519 key")?;
            crate::tls::write_private(&sk, kp.serialize_pem().as_bytes())?;
            std::fs::write(&pk, kp.public_key_pem())?;
        }
        let sk_pem = std::fs::read(&sk).with_context(|| format!("reading {}", sk.display()))?;
        let pk_pem = std::fs::read(&pk).with_context(|| format!("reading {}", pk.display()))?;
        Ok(Keys {
            alg: Algorithm::EdDSA,
            enc: EncodingKey::from_ed_pem(&sk_pem).context("JWT signing key")?,
            dec: DecodingKey::from_ed_pem(&pk_pem).context("JWT verification key")?,
        })
    }

    /// HS256 with a shared secret (at least 32 bytes).
    pub fn hs256(secret: &[u8]) -> Result<Self> {
        anyhow::ensure!(secret.len() >= 32, "HS256 secret must be at least 32 bytes");
        Ok(Keys {
            alg: Algorithm::HS256,
            enc: EncodingKey::from_secret(secret)?,
            dec: DecodingKey::from_secret(secret)?,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn sign(&self, claims: &Claims) -> Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(self.alg),
            claims,
            &self.enc,
        )?)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Issues a token for an existing tenant and records its jti.
pub async fn issue(
    db: &Db,
    keys: &Keys,
    tenant: &str,
    scopes: &[Scope],
    ttl_secs: u64,
) -> Result<(String, Claims)> {
    let tid = tenant_id(db, tenant).await?.ok_or_else(|| {
        anyhow::anyhow!("unknown tenant {tenant:?} (add it with `tapvault tenant add`)")
    })?;
    let iat = now();
    let claims = Claims {
        sub: tenant.to_string(),
        scope: scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        exp: iat + ttl_secs,
        iat,
        nbf: iat,
        jti: hex::encode(rand::random::<[u8; 16]>()),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    };
    let token = keys.sign(&claims)?;
    tenants::record_token(
        db,
        &claims.jti,
        tid,
        &claims.scope,
        Timestamp::from_secs(claims.exp as i64),
    )
    .await?;
    Ok((token, claims))
}

/// Revokes an active token; with `tenant`, only one of that tenant's.
/// False when there is no such unrevoked token.
pub async fn revoke(db: &Db, jti: &str, tenant: Option<TenantId>) -> Result<bool> {
    Ok(tenants::revoke_token(db, jti, tenant).await?)
}

/// Tenant names: 1-64 characters of `[A-Za-z0-9-_.]` (they appear in
/// tokens, logs and file names).
pub fn check_tenant_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "bad tenant name {name:?}: use 1-64 characters of [A-Za-z0-9-_.]"
        ));
    }
    Ok(())
}

/// Adds a tenant if absent: (id, whether it existed).
pub async fn add_tenant(db: &Db, name: &str) -> Result<(TenantId, bool)> {
    check_tenant_name(name).map_err(anyhow::Error::msg)?;
    if let Some(id) = tenant_id(db, name).await? {
        return Ok((id, true));
    }
    Ok((tenants::ensure_tenant(db, name).await?, false))
}

pub async fn tenant_id(db: &Db, name: &str) -> Result<Option<TenantId>> {
    Ok(tenants::tenant_id(db, name).await?)
}

pub use tenants::{TenantRow, TokenRow};

/// Every tenant with its active tokens.
pub async fn list_tenants(db: &Db) -> Result<Vec<TenantRow>> {
    Ok(tenants::list_tenants(db).await?)
}

/// Tokens of one tenant (or all), newest first.
pub async fn list_tokens(
    db: &Db,
    tenant: Option<TenantId>,
    include_inactive: bool,
) -> Result<Vec<TokenRow>> {
    Ok(tenants::list_tokens(db, tenant, include_inactive).await?)
}
