//! Connecting and migrating.

use crate::tenants::TenantId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Tree(String),
}

/// What a failed store call means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The database cannot be reached, is restarting, or went away mid-call:
    /// retry later.
    Unavailable,
    /// The database refuses writes (a hot standby, `default_transaction_read_only`).
    ReadOnly,
    /// The database is out of disk, memory or connections.
    Full,
    /// The tenant's quota would be exceeded.
    Quota,
    /// Anything else: a bug or corrupt data.
    Internal,
}

impl StoreError {
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::Db(e) => FailureKind::of_sqlx(e),
            _ => FailureKind::Internal,
        }
    }
}

impl FailureKind {
    /// What a database error means for the caller.
    pub fn of_sqlx(e: &sqlx::Error) -> FailureKind {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => FailureKind::Unavailable,
            sqlx::Error::Protocol(_) => FailureKind::Unavailable,
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                match code.as_str() {
                    "TVQ01" | "TVQ02" => FailureKind::Quota,
                    // read_only_sql_transaction
                    "25006" => FailureKind::ReadOnly,
                    // connection exceptions; admin/crash shutdown; cannot connect now;
                    // serialization failure and deadlock (retryable)
                    c if c.starts_with("08") => FailureKind::Unavailable,
                    "57P01" | "57P02" | "57P03" | "40001" | "40P01" => FailureKind::Unavailable,
                    // insufficient resources (disk full, out of memory, too many connections)
                    c if c.starts_with("53") => FailureKind::Full,
                    _ => FailureKind::Internal,
                }
            }
            _ => FailureKind::Internal,
        }
    }
}

/// The shared handles of the store: the pool and the node cache.
#[derive(Clone)]
pub struct Db {
    pub pool: PgPool,
    pub cache: crate::tree::NodeCache,
}

pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
    let opts = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // A call waiting for a connection to a database that is gone fails
        // within its deadline rather than hanging.
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(opts)
        .await?;
    Ok(Db {
        pool,
        cache: crate::tree::NodeCache::new(1_000_000),
    })
}

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("../../migrations").run(pool).await?;
    Ok(())
}

/// Creates database `name` on the server `pool` connects to, if missing.
pub async fn create_database_if_missing(pool: &PgPool, name: &str) -> Result<(), StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(pool)
            .await?;
    if !exists {
        // A name, not a value: quoted as an identifier.
        let q = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        sqlx::query(sqlx::AssertSqlSafe(q)).execute(pool).await?;
    }
    Ok(())
}

/// One round trip to the database (readiness).
pub async fn ping(db: &Db) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(&db.pool).await?;
    Ok(())
}

/// The settings under which the database can lose a transaction it
/// reported committed (`fsync = off`, `synchronous_commit = off`); empty
/// when it cannot.
pub async fn unsafe_durability(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for name in ["fsync", "synchronous_commit"] {
        let v: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(pool)
            .await?;
        if v == "off" {
            out.push(format!("{name} = off"));
        }
    }
    Ok(out)
}

/// Returns the id of tenant `name`, creating it if needed.
pub async fn ensure_tenant(pool: &PgPool, name: &str) -> Result<TenantId, StoreError> {
    let id: TenantId = sqlx::query_scalar(
        "INSERT INTO tenants (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING id",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// A fresh, migrated database for one test, dropped by [`TestDb::drop_db`].
/// Uses `DATABASE_URL` (default: local PostgreSQL, user postgres).
pub mod testdb {
    use super::*;
    use rand::RngExt;
    use sqlx::{Connection, Executor, PgConnection};

    pub struct TestDb {
        pub db: Db,
        pub name: String,
        pub url: String,
        admin_url: String,
    }

    pub fn admin_url() -> String {
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    pub async fn create() -> TestDb {
        let admin_url = admin_url();
        let name = format!("tapvault_test_{:016x}", rand::rng().random::<u64>());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("tests need PostgreSQL at {admin_url} (set DATABASE_URL): {e}")
        });
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        let opts = PgConnectOptions::from_str(&admin_url)
            .expect("url")
            .database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .expect("connect test database");
        migrate(&pool).await.expect("migrate");
        let url = format!(
            "{}/{name}",
            admin_url
                .rsplit_once('/')
                .map(|(a, _)| a)
                .unwrap_or(&admin_url)
        );
        TestDb {
            db: Db {
                pool,
                cache: crate::tree::NodeCache::new(100_000),
            },
            name,
            url,
            admin_url,
        }
    }

    impl TestDb {
        /// Drops the database. `Pool::close` waits for every checked-out
        /// connection, so a test still holding one would hang here; the
        /// bounded wait plus `WITH (FORCE)` ends those sessions instead.
        pub async fn drop_db(self) {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), self.db.pool.close()).await;
            if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
                let _ = admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    )))
                    .await;
            }
        }
    }
}
