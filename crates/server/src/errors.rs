//! Errors to gRPC statuses, in one place. A reply never carries internal
//! text (SQL, error chains, paths): an internal failure is logged with an
//! error id and the client gets the id.

use tapvault_store::{FailureKind, StoreError};
use tonic::Status;

/// A store failure as the client should see it.
pub fn store_err(e: StoreError) -> Status {
    if let StoreError::Db(d) = &e {
        return db_err_ref(d);
    }
    by_kind(e.kind(), "store", &e)
}

/// A database error as the client should see it.
pub fn db_err(e: sqlx::Error) -> Status {
    db_err_ref(&e)
}

fn db_err_ref(e: &sqlx::Error) -> Status {
    // The quota trigger's own words name the quota; they carry no internals.
    if let Some(m) = tapvault_store::quota::quota_message(e) {
        return Status::resource_exhausted(m);
    }
    by_kind(FailureKind::of_sqlx(e), "database", e)
}

fn by_kind(kind: FailureKind, context: &str, e: &dyn std::fmt::Display) -> Status {
    match kind {
        FailureKind::Unavailable => {
            tracing::warn!("database unavailable: {e}");
            Status::unavailable("the database is unavailable, retry later")
        }
        FailureKind::ReadOnly => {
            tracing::warn!("database refuses writes: {e}");
            Status::unavailable("the database is read-only at the moment (failover?), retry later")
        }
        FailureKind::Full => {
            tracing::error!("database out of resources: {e}");
            Status::resource_exhausted("the server's storage is full; nothing was stored")
        }
        FailureKind::Quota => {
            Status::resource_exhausted("tenant quota exceeded; nothing was stored")
        }
        FailureKind::Internal => internal(context, e),
    }
}

/// An internal failure: logged in full with a fresh id; the reply says
/// only that something failed and which id to look for in the log.
pub fn internal(context: &str, e: impl std::fmt::Display) -> Status {
    let id = hex::encode(rand::random::<[u8; 6]>());
    tracing::error!(error_id = %id, "{context}: {e}");
    Status::internal(format!(
        "internal error (id {id}); nothing was stored by this call"
    ))
}

/// An `anyhow` error from a helper that may wrap a store or database error.
pub fn any_err(context: &str, e: anyhow::Error) -> Status {
    let kind = if let Some(se) = e.downcast_ref::<StoreError>() {
        se.kind()
    } else if let Some(sq) = e.downcast_ref::<sqlx::Error>() {
        return db_err_ref(sq);
    } else {
        FailureKind::Internal
    };
    by_kind(kind, context, &format!("{e:#}"))
}

/// Something the caller sent is larger than a cap: the same status
/// (RESOURCE_EXHAUSTED) in every service, for a whole message as for an item
/// or a count in it.
pub fn too_large(what: impl std::fmt::Display) -> Status {
    Status::resource_exhausted(what.to_string())
}

/// What a call can fail with, as the API answers it: one variant per gRPC
/// status tapvault uses, one conversion to [`Status`] (`From` below), and
/// `From` for the library errors. Handlers and checks return this; the
/// status a condition gets is decided here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The caller sent something wrong; the message says what.
    InvalidArgument(String),
    NotFound(String),
    PermissionDenied(String),
    Unauthenticated(String),
    /// Refused by design (append-only, passive universe).
    FailedPrecondition(String),
    Unimplemented(String),
    /// Over a size, count or quota cap, or out of storage.
    ResourceExhausted(String),
    /// Retry later (the database is away or read-only).
    Unavailable(String),
    /// A bug or corrupt data: logged in full with an id, never sent.
    Internal(String),
    /// An internal error already logged; the message carries only its id.
    Logged(String),
}

impl ApiError {
    pub fn invalid(m: impl Into<String>) -> Self {
        ApiError::InvalidArgument(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError::NotFound(m.into())
    }
    pub fn denied(m: impl Into<String>) -> Self {
        ApiError::PermissionDenied(m.into())
    }
    pub fn unauthenticated(m: impl Into<String>) -> Self {
        ApiError::Unauthenticated(m.into())
    }
    pub fn refused(m: impl Into<String>) -> Self {
        ApiError::FailedPrecondition(m.into())
    }
    pub fn unimplemented(m: impl Into<String>) -> Self {
        ApiError::Unimplemented(m.into())
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        ApiError::ResourceExhausted(m.into())
    }
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        ApiError::Internal(format!("{context}: {e}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::InvalidArgument(m)
            | ApiError::NotFound(m)
            | ApiError::PermissionDenied(m)
            | ApiError::Unauthenticated(m)
            | ApiError::FailedPrecondition(m)
            | ApiError::Unimplemented(m)
            | ApiError::ResourceExhausted(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m)
            | ApiError::Logged(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Unimplemented(m) => Status::unimplemented(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::Internal(m) => internal("api", m),
            ApiError::Logged(m) => Status::internal(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from_status(store_err(e))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from_status(db_err(e))
    }
}

impl From<tapvault_codec::DecodeError> for ApiError {
    fn from(e: tapvault_codec::DecodeError) -> Self {
        ApiError::InvalidArgument(format!("does not decode: {e}"))
    }
}

impl From<tapvault_verify::VerifyError> for ApiError {
    fn from(e: tapvault_verify::VerifyError) -> Self {
        ApiError::InvalidArgument(format!(
            "proof failed verification ({}): {e}",
            e.check().title()
        ))
    }
}

impl ApiError {
    /// A status already decided (and, for internal ones, already logged
    /// with its id) by `store_err`/`db_err`.
    fn from_status(s: Status) -> Self {
        let m = s.message().to_string();
        match s.code() {
            tonic::Code::Unavailable => ApiError::Unavailable(m),
            tonic::Code::ResourceExhausted => ApiError::ResourceExhausted(m),
            // Keep the id the log line carries: the reply is generic already.
            _ => ApiError::Logged(m),
        }
    }
}

/// The same status with `what: ` in front of its message.
pub fn prefixed(s: Status, what: &str) -> Status {
    Status::new(s.code(), format!("{what}: {}", s.message()))
}
