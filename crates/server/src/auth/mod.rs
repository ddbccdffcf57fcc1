//! JWT authentication and tenant scoping for every gRPC and HTTP route but
//! health. Tokens: `authorization: Bearer <JWT>`, EdDSA (Ed25519, keys
//! generated into the data dir on first start) or HS256; claims `sub`
//! (tenant), `scope`, `exp`, `iat`, `nbf`, `jti`, `iss`/`aud` = "tapvault".

//!
//! `jwt.rs`: keys, claims, issuing and the tenant/token records; `layer.rs`:
//! the tower layer; `trusted.rs`: trusted networks; here: scopes, every
//! method's rule, and the check itself.

mod jwt;
mod layer;
mod trusted;

pub use jwt::{
    add_tenant, check_tenant_name, issue, list_tenants, list_tokens, revoke, tenant_id, Claims,
    Keys, TenantRow, TokenRow, AUDIENCE, ISSUER,
};
pub(crate) use layer::Guarded;
pub use layer::{AuthLayer, AuthService};
pub use trusted::TrustedNetwork;

use crate::errors::ApiError;
use jsonwebtoken::{errors::ErrorKind as JwtErr, Validation};
use std::net::IpAddr;
use tapvault_store::tenants::{self, TenantId};
use tapvault_store::Db;
use tonic::Status;

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

/// Who a request acts as.
#[derive(Clone, Debug)]
pub struct Principal {
    pub tenant: TenantId,
    pub scopes: Vec<Scope>,
    /// Acts for the operator tenant: may manage every tenant.
    pub operator: bool,
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
    /// A read-only server (on a standby): writes are refused.
    pub read_only: bool,
    /// Tokens whose signature and claims were checked: a token is an
    /// immutable string, so only its time window needs checking again.
    pub verified: VerifiedTokens,
}

/// Claims of tokens already validated, by SHA-256 of the token. Bounded:
/// past [`VerifiedTokens::CAP`] entries it starts over.
#[derive(Default)]
pub struct VerifiedTokens(std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>);

impl VerifiedTokens {
    const CAP: usize = 100_000;
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY: u64 = 5;

fn unauth(msg: impl Into<String>) -> Status {
    ApiError::unauthenticated(msg).into()
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
        let claims = self.validate_cached(keys, token)?;
        let rec = tenants::token_record(&self.db, &claims.jti)
            .await
            .map_err(|e| {
                tracing::warn!("checking a token: {e}");
                Status::from(ApiError::Unavailable(
                    "cannot check the token: the database is unavailable, retry later".into(),
                ))
            })?
            .ok_or_else(|| unauth("token is not known to this server (unknown jti)"))?;
        let (revoked, tenant_name, tid, recorded) =
            (rec.revoked, rec.tenant_name, rec.tenant_id, rec.scopes);
        // The recorded expiry is the truth too: a token re-signed with a
        // later `exp` (a leaked key, or HS256) still ends when it was issued
        // to end.
        if tapvault_store::Timestamp::now().secs()
            > rec.expires_at.secs().saturating_add(LEEWAY as i64)
        {
            return Err(unauth(format!("token {} expired", claims.jti)));
        }
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
        match tenant_name.as_deref() {
            Some(n) if n == claims.sub => {}
            Some(_) => {
                return Err(ApiError::denied(format!(
                    "token {} was issued to another tenant than the {:?} its `sub` names",
                    claims.jti, claims.sub
                ))
                .into())
            }
            None => {
                return Err(ApiError::denied(format!(
                    "the tenant of token {} no longer exists",
                    claims.jti
                ))
                .into())
            }
        }
        if !scopes.contains(&need) {
            return Err(ApiError::denied(format!(
                "token lacks the `{}` scope (has: {})",
                need.as_str(),
                recorded
            ))
            .into());
        }
        Ok(Principal {
            tenant: tid,
            scopes,
            operator: self.operator == Some(tid),
        })
    }

    /// [`Self::validate`], once per distinct token; later uses check only
    /// the time window, exactly as the first check did.
    fn validate_cached(&self, keys: &Keys, token: &str) -> Result<Claims, Status> {
        let h = tapvault_codec::primitives::sha256(&[token.as_bytes()]);
        let hit = self.verified.0.lock().ok().and_then(|m| m.get(&h).cloned());
        if let Some(c) = hit {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if now > c.exp.saturating_add(LEEWAY) {
                return Err(unauth("token expired"));
            }
            if now.saturating_add(LEEWAY) < c.nbf {
                return Err(unauth("token not yet valid (nbf in the future)"));
            }
            return Ok(c);
        }
        let c = self.validate(keys, token)?;
        if let Ok(mut m) = self.verified.0.lock() {
            if m.len() >= VerifiedTokens::CAP {
                m.clear();
            }
            m.insert(h, c.clone());
        }
        Ok(c)
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
        v.leeway = LEEWAY;
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
                    // The library's own words name byte offsets and parser
                    // states; the caller needs to know which part is wrong.
                    JwtErr::InvalidToken => {
                        "malformed token: want three base64url parts separated by dots".to_string()
                    }
                    JwtErr::Base64(_) => "malformed token: a part is not base64url".to_string(),
                    JwtErr::Json(_) | JwtErr::Utf8(_) => {
                        "malformed token: its header or claims are not the JSON a token carries"
                            .to_string()
                    }
                    JwtErr::InvalidClaimFormat(c) => {
                        format!("token claim `{c}` has the wrong type")
                    }
                    JwtErr::MissingAlgorithm | JwtErr::InvalidAlgorithmName => {
                        format!("token algorithm not allowed (want {:?})", keys.alg)
                    }
                    _ => "malformed token".to_string(),
                })
            })
    }
}

/// The request's one `authorization` header. Two are refused: which one
/// counts would depend on the proxy in between, and a proxy that adds its
/// own must not let a caller's slip through or vice versa.
pub fn authorization_header(h: &http::HeaderMap) -> Result<Option<String>, Status> {
    let mut all = h.get_all(http::header::AUTHORIZATION).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(unauth(
            "several `authorization` headers: send exactly one `Bearer <token>`",
        ));
    }
    match first.to_str() {
        Ok(v) => Ok(Some(v.to_string())),
        Err(_) => Err(unauth(
            "the `authorization` header is not text: send `Bearer <token>`",
        )),
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
const LOG_READ: &[&str] = &[
    "GetLogKey",
    "GetTreeHead",
    "GetConsistencyProof",
    "GetReceipt",
    "GetReceipts",
    "ListLogEntries",
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

/// Whether a mapped method changes stored data (refused by a read-only
/// server): every `push`-scope method and the Admin calls that write.
pub fn writes(path: &str) -> bool {
    match access_for_path(path) {
        Some(Access::Token {
            scope: Scope::Push, ..
        }) => true,
        Some(Access::Token {
            scope: Scope::Admin,
            ..
        }) => path
            .rsplit('/')
            .next()
            .is_some_and(|m| ["AddTenant", "IssueToken", "RevokeToken", "SetQuota"].contains(&m)),
        _ => false,
    }
}

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
        "tapvault.v1.Log" if LOG_READ.contains(&method) => token(Scope::Read, false),
        // The schema only; clients like grpcurl need it.
        "grpc.reflection.v1alpha.ServerReflection" if method == "ServerReflectionInfo" => {
            token(Scope::Read, false)
        }
        _ => None,
    }
}
