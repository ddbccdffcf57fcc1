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
/// The server is `DATABASE_URL`, else the local PostgreSQL on
/// 127.0.0.1:5432 (user postgres), else a private cluster this helper
/// starts once per machine and user (PostgreSQL merely installed, as on a
/// newcomer's laptop) and every later test run reuses. Test-only: behind
/// the `testdb` feature.
#[cfg(feature = "testdb")]
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

    /// `url` naming database `db` instead (a query, e.g. a socket
    /// directory `?host=/run/…`, is kept).
    pub fn with_database(url: &str, db: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let base = base.rsplit_once('/').map(|(a, _)| a).unwrap_or(base);
        match query {
            Some(q) => format!("{base}/{db}?{q}"),
            None => format!("{base}/{db}"),
        }
    }

    #[test]
    fn with_database_keeps_a_socket_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database(
                "postgres://postgres@localhost/postgres?host=/var/lib/x/sock",
                "t1"
            ),
            "postgres://postgres@localhost/t1?host=/var/lib/x/sock"
        );
    }

    pub fn admin_url() -> String {
        static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        URL.get_or_init(|| {
            if let Ok(u) = std::env::var("DATABASE_URL") {
                return u;
            }
            // Where the local server is looked for (TAPVAULT_TEST_PG_ADDR lets a
            // machine with one check the fallback below).
            let local: std::net::SocketAddr = std::env::var("TAPVAULT_TEST_PG_ADDR")
                .ok()
                .and_then(|a| a.parse().ok())
                .unwrap_or(([127, 0, 0, 1], 5432).into());
            if std::net::TcpStream::connect_timeout(&local, std::time::Duration::from_secs(1))
                .is_ok()
            {
                return format!("postgres://postgres@{local}/postgres");
            }
            // Nothing answers: our own cluster, the same code `serve` runs
            // without a database URL, in a directory shared by test runs.
            let dir = std::env::temp_dir().join("tapvault-test-cluster");
            let c = crate::cluster::PrivateCluster::prepare(&dir).unwrap_or_else(|e| {
                panic!("no DATABASE_URL, nothing on 127.0.0.1:5432, and no private cluster: {e:#}")
            });
            if let Err(e) = c.start() {
                panic!("starting the tests' private PostgreSQL cluster: {e:#}");
            }
            c.url("postgres")
        })
        .clone()
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
        let url = with_database(&admin_url, &name);
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
