//! Errors to gRPC statuses, in one place. A reply never carries internal
//! text (SQL, error chains, paths): an internal failure is logged with an
//! error id and the client gets the id.

use tapvault_store::{FailureKind, StoreError};
use tonic::Status;

/// A store failure as the client should see it.
pub fn store_err(e: StoreError) -> Status {
    ApiError::from(e).into()
}

/// A database error as the client should see it.
pub fn db_err(e: sqlx::Error) -> Status {
    ApiError::from(e).into()
}

fn db_api(e: &sqlx::Error) -> ApiError {
    // The quota trigger's own words name the quota; they carry no internals.
    if let Some(m) = tapvault_store::quota::quota_message(e) {
        return ApiError::ResourceExhausted(m);
    }
    by_kind(FailureKind::of_sqlx(e), "database", e)
}

fn by_kind(kind: FailureKind, context: &str, e: &dyn std::fmt::Display) -> ApiError {
    match kind {
        FailureKind::Unavailable => {
            tracing::warn!("database unavailable: {e}");
            ApiError::Unavailable("the database is unavailable, retry later".into())
        }
        FailureKind::ReadOnly => {
            tracing::warn!("database refuses writes: {e}");
            ApiError::Unavailable(
                "the database is read-only at the moment (failover?), retry later".into(),
            )
        }
        FailureKind::Full => {
            tracing::error!("database out of resources: {e}");
            ApiError::too_large("the server's storage is full; nothing was stored")
        }
        FailureKind::Quota => ApiError::too_large("tenant quota exceeded; nothing was stored"),
        FailureKind::Internal => ApiError::internal(context, e),
    }
}

/// An internal failure: logged in full with a fresh id; the reply says
/// only that something failed and which id to look for in the log.
pub fn internal(context: &str, e: impl std::fmt::Display) -> Status {
    ApiError::internal(context, e).into()
}

/// An `anyhow` error from a helper that may wrap a store or database error.
pub fn any_err(context: &str, e: anyhow::Error) -> Status {
    let api = if let Some(StoreError::Db(d)) = e.downcast_ref::<StoreError>() {
        db_api(d)
    } else if let Some(se) = e.downcast_ref::<StoreError>() {
        by_kind(se.kind(), context, se)
    } else if let Some(sq) = e.downcast_ref::<sqlx::Error>() {
        db_api(sq)
    } else {
        ApiError::internal(context, format!("{e:#}"))
    };
    api.into()
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
            | ApiError::Internal(m) => f.write_str(m),
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
            ApiError::Internal(m) => {
                let id = hex::encode(rand::random::<[u8; 6]>());
                tracing::error!(error_id = %id, "{m}");
                Status::internal(format!(
                    "internal error (id {id}; the server's log has the details)"
                ))
            }
        }
    }
}

/// What a write's `INTERNAL` adds: its transaction rolled back (a reply to
/// a write is sent only after its commit, so a failure means no commit).
pub const NOTHING_STORED: &str = "; nothing was stored by this call";

/// `status` as the reply to a call of `path`: an `INTERNAL` answer to a
/// write says that nothing of it was stored; a read's does not.
/// Services generated outside this workspace (gRPC health) decode with
/// prost's own codec, which calls a request that is not protobuf
/// `INTERNAL`: it is `INVALID_ARGUMENT` here too.
pub fn for_call(path: &str, status: Status) -> Status {
    if status.code() == tonic::Code::Internal
        && status
            .message()
            .starts_with("failed to decode Protobuf message")
    {
        return Status::invalid_argument(format!(
            "the message is not a valid request message: {}",
            status.message()
        ));
    }
    if status.code() == tonic::Code::Internal && crate::auth::writes(path) {
        Status::internal(format!("{}{NOTHING_STORED}", status.message()))
    } else {
        status
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Db(d) => db_api(d),
            _ => by_kind(e.kind(), "store", &e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        db_api(&e)
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
