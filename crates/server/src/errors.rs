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
