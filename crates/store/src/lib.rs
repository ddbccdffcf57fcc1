//! tapvault's PostgreSQL storage (sqlx). Everything a tenant owns is keyed
//! by its tenant id; every query filters by it.

pub mod backup;
pub mod cluster;
pub mod db;
pub mod export;
pub mod fsck;
pub mod inventory;
pub mod log;
pub mod quota;
pub mod tenants;
pub mod time;
pub mod tree;
pub mod universe;

pub use db::{connect, migrate, Db, FailureKind, StoreError};
pub use tenants::TenantId;
pub use time::Timestamp;
pub use tree::{NodeCache, PgTree};
