//! JWT authentication and tenant scoping for every gRPC and HTTP route but
//! health. Tokens: `authorization: Bearer <JWT>`, EdDSA (Ed25519, keys
//! generated into the data dir on first start) or HS256; claims `sub`
//! (tenant), `scope`, `exp`, `iat`, `nbf`, `jti`, `iss`/`aud` = "tapvault".

use anyhow::{Context, Result};
use jsonwebtoken::{
    errors::ErrorKind as JwtErr, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use tapvault_store::tenants::{self, TenantId};
use tapvault_store::Db;
use tonic::Status;

pub const ISSUER: &str = "tapvault";
pub const AUDIENCE: &str = "tapvault";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Push,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Push => "push",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "push" => Some(Scope::Push),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
    /// `"push,read"` or `"push read"`.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut v: Vec<Scope> = s
            .split([',', ' '])
            .filter(|x| !x.is_empty())
            .map(|x| {
                Scope::parse(x).ok_or_else(|| format!("unknown scope {x:?} (push, read, admin)"))
            })
            .collect::<Result<_, _>>()?;
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err("at least one scope is needed".into());
        }
        Ok(v)
    }
}

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
    alg: Algorithm,
    enc: EncodingKey,
    dec: DecodingKey,
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
    tenants::record_token(db, &claims.jti, tid, &claims.scope, claims.exp as i64).await?;
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

/// Who a request acts as.
#[derive(Clone, Debug)]
pub struct Principal {
    pub tenant: TenantId,
    pub scopes: Vec<Scope>,
    /// Acts for the operator tenant: may manage every tenant.
    pub operator: bool,
}

/// A network range whose credential-less calls act as one tenant.
#[derive(Clone, Debug)]
pub struct TrustedNetwork {
    pub net: IpAddr,
    pub prefix: u8,
    pub tenant: String,
}

impl TrustedNetwork {
    /// `10.8.0.0/24=alice`
    pub fn parse(s: &str) -> Result<Self, String> {
        let (cidr, tenant) = s.split_once('=').ok_or("expected CIDR=tenant")?;
        let (ip, prefix) = cidr
            .split_once('/')
            .ok_or("expected a CIDR like 10.8.0.0/24")?;
        let net: IpAddr = ip
            .parse()
            .map_err(|e| format!("bad network address {ip:?}: {e}"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|e| format!("bad prefix {prefix:?}: {e}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if prefix > max || tenant.is_empty() {
            return Err(format!("bad trusted network {s:?}"));
        }
        Ok(TrustedNetwork {
            net,
            prefix,
            tenant: tenant.to_string(),
        })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.net, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            (_, ip) => ip,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                (u32::from(n) & mask) == (u32::from(a) & mask)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                (u128::from(n) & mask) == (u128::from(a) & mask)
            }
            _ => false,
        }
    }
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum AuthMode {
    /// No tokens: every request acts as one tenant (local development).
    Off { tenant: TenantId },
    On {
        keys: Keys,
        trusted: Vec<(TrustedNetwork, TenantId)>,
    },
}

pub struct Authenticator {
    pub db: Db,
    pub mode: AuthMode,
    /// The tenant whose admin tokens manage all tenants.
    pub operator: Option<TenantId>,
}

fn unauth(msg: impl Into<String>) -> Status {
    Status::unauthenticated(msg.into())
}

impl Authenticator {
    /// Validates the bearer token (or a trusted source address) and returns
    /// the principal; `need` is the scope the route requires. `remote` is
    /// given only for tapd's universe service: a trusted network reaches
    /// nothing else.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        remote: Option<IpAddr>,
        need: Scope,
    ) -> Result<Principal, Status> {
        let (keys, trusted) = match &self.mode {
            AuthMode::Off { tenant } => {
                return Ok(Principal {
                    tenant: *tenant,
                    scopes: vec![Scope::Push, Scope::Read, Scope::Admin],
                    operator: true,
                })
            }
            AuthMode::On { keys, trusted } => (keys, trusted),
        };
        let Some(auth) = authorization else {
            if let Some(ip) = remote {
                if let Some((_, tid)) = trusted.iter().find(|(n, _)| n.contains(ip)) {
                    // Stock tapd cannot send credentials; a trusted network
                    // stands in for them (universe push and read only).
                    if need != Scope::Admin {
                        return Ok(Principal {
                            tenant: *tid,
                            scopes: vec![Scope::Push, Scope::Read],
                            operator: false,
                        });
                    }
                }
            }
            return Err(unauth(
                "missing credentials: send `authorization: Bearer <token>`",
            ));
        };
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .ok_or_else(|| unauth("authorization must be `Bearer <token>`"))?
            .trim();
        let claims = self.validate(keys, token)?;
        let rec = tenants::token_record(&self.db, &claims.jti)
            .await
            .map_err(|e| {
                tracing::warn!("checking a token: {e}");
                Status::unavailable(
                    "cannot check the token: the database is unavailable, retry later",
                )
            })?
            .ok_or_else(|| unauth("token is not known to this server (unknown jti)"))?;
        let (revoked, tenant_name, tid, recorded) =
            (rec.revoked, rec.tenant_name, rec.tenant_id, rec.scopes);
        // The scopes recorded when the token was issued are the truth; a
        // token whose claim says more (signed by a leaked key, or edited
        // under HS256) gets no more than was issued.
        let scopes = Scope::parse_list(&recorded)
            .map_err(|e| unauth(format!("recorded token scope: {e}")))?;
        if Scope::parse_list(&claims.scope).ok().as_deref() != Some(&scopes[..]) {
            return Err(unauth(format!(
                "token {} claims scopes it was not issued with",
                claims.jti
            )));
        }
        if revoked {
            return Err(unauth(format!("token {} has been revoked", claims.jti)));
        }
        if tenant_name.as_deref() != Some(claims.sub.as_str()) {
            return Err(Status::permission_denied(format!(
                "unknown tenant {:?}",
                claims.sub
            )));
        }
        if !scopes.contains(&need) {
            return Err(Status::permission_denied(format!(
                "token lacks the `{}` scope (has: {})",
                need.as_str(),
                recorded
            )));
        }
        Ok(Principal {
            tenant: tid,
            scopes,
            operator: self.operator == Some(tid),
        })
    }

    fn validate(&self, keys: &Keys, token: &str) -> Result<Claims, Status> {
        // Refuse unsigned tokens explicitly (jsonwebtoken would only call
        // them malformed).
        if let Some(h) = token.split('.').next() {
            use base64::Engine;
            if let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h) {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&json) {
                    if v["alg"]
                        .as_str()
                        .map(|a| a.eq_ignore_ascii_case("none"))
                        .unwrap_or(false)
                    {
                        return Err(unauth("unsigned tokens (alg none) are refused"));
                    }
                }
            }
        }
        let mut v = Validation::new(keys.alg);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.validate_nbf = true;
        v.leeway = 5;
        v.set_required_spec_claims(&["exp", "iat", "nbf", "sub", "iss", "aud", "jti"]);
        jsonwebtoken::decode::<Claims>(token, &keys.dec, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                unauth(match e.kind() {
                    JwtErr::ExpiredSignature => "token expired".to_string(),
                    JwtErr::ImmatureSignature => {
                        "token not yet valid (nbf in the future)".to_string()
                    }
                    JwtErr::InvalidIssuer => format!("wrong token issuer (want {ISSUER})"),
                    JwtErr::InvalidAudience => format!("wrong token audience (want {AUDIENCE})"),
                    JwtErr::InvalidAlgorithm => {
                        format!("token algorithm not allowed (want {:?})", keys.alg)
                    }
                    JwtErr::InvalidSignature => "bad token signature".to_string(),
                    JwtErr::MissingRequiredClaim(c) => format!("token lacks the `{c}` claim"),
                    _ => format!("malformed token: {e}"),
                })
            })
    }
}

/// What a gRPC method needs. Every method of every service is listed here;
/// a method that is not (a new RPC, a typo) is refused for everyone: access
/// is granted by mapping, never by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credentials (gRPC health only).
    Open,
    /// A token with this scope. `universe` marks tapd's universe service,
    /// the only one a trusted network may reach without a token.
    Token { scope: Scope, universe: bool },
}

const UNIVERSE_PUSH: &[&str] = &[
    "InsertProof",
    // Refused by the service, but writes by nature: a push token's business.
    "DeleteAssetRoot",
    "PushProof",
    "SyncUniverse",
    "AddFederationServer",
    "DeleteFederationServer",
    "SetFederationSyncConfig",
    "IgnoreAssetOutPoint",
    "UpdateSupplyCommit",
    "InsertSupplyCommit",
];
const UNIVERSE_READ: &[&str] = &[
    "MultiverseRoot",
    "AssetRoots",
    "QueryAssetRoots",
    "AssetLeafKeys",
    "AssetLeaves",
    "QueryProof",
    "Info",
    "ListFederationServers",
    "UniverseStats",
    "QueryAssetStats",
    "QueryEvents",
    "QueryFederationSyncConfig",
    "FetchSupplyCommit",
    "FetchSupplyLeaves",
];
const BACKUP_PUSH: &[&str] = &[
    "PushWalletBackup",
    "PushAddresses",
    "PushTapscript",
    "PushProofFile",
    "PushInventory",
];
const BACKUP_READ: &[&str] = &[
    "ListLeaves",
    "GetProofFile",
    "ListWalletBackups",
    "GetWalletBackup",
    "ListAddresses",
    "ListTapscripts",
    "Status",
    "ListInventory",
];
const ADMIN: &[&str] = &[
    "AddTenant",
    "ListTenants",
    "IssueToken",
    "ListTokens",
    "RevokeToken",
    "SetQuota",
    "GetQuota",
];

/// The access rule of a gRPC method path (`/package.Service/Method`), or
/// `None` when the method is not mapped (refused).
pub fn access_for_path(path: &str) -> Option<Access> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let token = |scope, universe| Some(Access::Token { scope, universe });
    match service {
        "grpc.health.v1.Health" if ["Check", "Watch"].contains(&method) => Some(Access::Open),
        "universerpc.Universe" if UNIVERSE_PUSH.contains(&method) => token(Scope::Push, true),
        "universerpc.Universe" if UNIVERSE_READ.contains(&method) => token(Scope::Read, true),
        "tapvault.v1.Backup" if BACKUP_PUSH.contains(&method) => token(Scope::Push, false),
        "tapvault.v1.Backup" if BACKUP_READ.contains(&method) => token(Scope::Read, false),
        "tapvault.v1.Admin" if ADMIN.contains(&method) => token(Scope::Admin, false),
        // The schema only; clients like grpcurl need it.
        "grpc.reflection.v1alpha.ServerReflection" if method == "ServerReflectionInfo" => {
            token(Scope::Read, false)
        }
        _ => None,
    }
}

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
                    return Ok(Status::permission_denied(format!(
                        "method {path} is not offered to any credentials"
                    ))
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
