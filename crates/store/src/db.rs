//! Connecting and migrating.

use crate::tenants::TenantId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The shared handles of the store: the pool, the node cache, and the
/// databases the pool may point at.
#[derive(Clone)]
pub struct Db {
    pub pool: PgPool,
    pub cache: crate::tree::NodeCache,
    /// Token records recently read (see [`crate::tenants::token_record`]).
    pub tokens: crate::tenants::TokenCache,
    pub targets: Arc<Targets>,
}

/// The databases a server may use, in the order given, and which one the
/// pool connects to now. A writer uses the one that is not in recovery; a
/// read-only server any that answers. When it fails, [`check_failover`]
/// points the pool at the next good one, and connections made before the
/// switch are dropped the next time they are handed out (no round trip).
pub struct Targets {
    list: Vec<(String, PgConnectOptions)>,
    current: AtomicUsize,
    base: Instant,
    /// Microseconds from `base` to the last switch.
    switched_us: AtomicU64,
    pub read_only: bool,
}

impl Targets {
    /// host:port/database of the database in use.
    pub fn current(&self) -> String {
        self.list[self.current.load(Ordering::Acquire)].0.clone()
    }

    pub fn all(&self) -> Vec<String> {
        self.list.iter().map(|(l, _)| l.clone()).collect()
    }

    fn since_switch(&self) -> Duration {
        let at = Duration::from_micros(self.switched_us.load(Ordering::Acquire));
        self.base.elapsed().saturating_sub(at)
    }
}

fn label(o: &PgConnectOptions) -> String {
    let db = o.get_database().unwrap_or("");
    match o.get_socket() {
        // The private cluster: a unix socket, no TCP port.
        Some(dir) => format!("{}/{db}", dir.display()),
        None => format!("{}:{}/{db}", o.get_host(), o.get_port()),
    }
}

/// A libpq-style URL with several hosts (`postgres://u@h1:5432,h2:5433/db`)
/// as one URL per host, in order; any other URL as itself.
pub fn expand_hosts(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    let (user, rest) = match rest.rsplit_once('@') {
        Some((u, r)) if !u.contains('/') => (format!("{u}@"), r),
        _ => (String::new(), rest),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hosts, tail) = rest.split_at(split);
    if !hosts.contains(',') {
        return vec![url.to_string()];
    }
    hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{user}{h}{tail}"))
        .collect()
}

/// Whether the database at `o` is in recovery (a standby), within 3 s.
async fn probe(o: &PgConnectOptions) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    let fut = async {
        let mut c = sqlx::PgConnection::connect_with(o).await?;
        let r: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut c)
            .await?;
        let _ = c.close().await;
        Ok(r)
    };
    tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// How long a pooled connection may sit idle before it is pinged on
/// acquire (see `connect_many`).
const PING_IDLE: Duration = Duration::from_millis(500);

pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
    connect_many(&[url.to_string()], max_connections, false).await
}

/// Connects to the first of `urls` that can take writes (not in recovery),
/// or with `read_only`, the first that answers.
pub async fn connect_many(
    urls: &[String],
    max_connections: u32,
    read_only: bool,
) -> Result<Db, StoreError> {
    let mut list = Vec::with_capacity(urls.len());
    for u in urls {
        let o = PgConnectOptions::from_str(u)?;
        list.push((label(&o), o));
    }
    let mut chosen = None;
    let mut last_err = None;
    if list.len() == 1 {
        // One database: no choice to make; connect errors speak for
        // themselves.
        chosen = Some(0);
    } else {
        for (i, (l, o)) in list.iter().enumerate() {
            match probe(o).await {
                Ok(rec) if read_only || !rec => {
                    chosen = Some(i);
                    break;
                }
                Ok(_) => tracing::info!("{l} is a standby (in recovery): not writing to it"),
                Err(e) => {
                    tracing::warn!("{l} does not answer: {e}");
                    last_err = Some(e);
                }
            }
        }
    }
    let Some(i) = chosen else {
        return Err(last_err
            .unwrap_or_else(|| {
                sqlx::Error::Configuration(
                    format!(
                        "none of the databases can take writes (all are standbys): {}",
                        list.iter()
                            .map(|(l, _)| l.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                    .into(),
                )
            })
            .into());
    };
    let targets = Arc::new(Targets {
        current: AtomicUsize::new(i),
        base: Instant::now(),
        switched_us: AtomicU64::new(0),
        read_only,
        list,
    });
    let t = targets.clone();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // A call waiting for a connection to a database that is gone fails
        // within its deadline rather than hanging.
        .acquire_timeout(Duration::from_secs(5))
        // sqlx's own check pings before every acquire: a round trip on
        // every request and two on every batch, while the connection was
        // in use a moment ago. Only a connection idle for a while (maybe
        // cut by an outage or a restart since) is pinged; one that breaks
        // in use fails its call, and sqlx closes it.
        .test_before_acquire(false)
        // A connection made before a failover points at the old database.
        .before_acquire(move |c, meta| {
            let fresh = meta.age < t.since_switch();
            Box::pin(async move {
                if !fresh {
                    return Ok(false);
                }
                if meta.idle_for >= PING_IDLE {
                    return Ok(sqlx::Connection::ping(c).await.is_ok());
                }
                Ok(true)
            })
        })
        .connect_with(targets.list[i].1.clone())
        .await?;
    Ok(Db {
        pool,
        cache: crate::tree::NodeCache::new(1_000_000),
        tokens: Default::default(),
        targets,
    })
}

/// Checks that the database in use still fits (up, and writable unless
/// read-only); if not, points the pool at the first one that does and
/// returns its label. `None`: nothing changed (or nothing fits yet, and
/// calls keep failing with "unavailable" until something does).
pub async fn check_failover(db: &Db) -> Result<Option<String>, StoreError> {
    let t = &db.targets;
    let fits = |rec: bool| t.read_only || !rec;
    let cur = t.current.load(Ordering::Acquire);
    let now = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&db.pool),
    )
    .await;
    if let Ok(Ok(rec)) = now {
        if fits(rec) {
            return Ok(None);
        }
    }
    if t.list.len() == 1 {
        return Ok(None);
    }
    let order = (1..=t.list.len()).map(|k| (cur + k) % t.list.len());
    for i in order {
        let (l, o) = &t.list[i];
        if let Ok(rec) = probe(o).await {
            if fits(rec) {
                if i == cur {
                    // The same database, back (a restart): nothing to switch.
                    return Ok(None);
                }
                db.pool.set_connect_options(o.clone());
                t.current.store(i, Ordering::Release);
                let us = t.base.elapsed().as_micros() as u64;
                t.switched_us.store(us, Ordering::Release);
                db.cache.clear();
                db.tokens.clear();
                return Ok(Some(l.clone()));
            }
        }
    }
    Ok(None)
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
        let url = with_database(&admin_url, &name);
        let db = super::connect_many(std::slice::from_ref(&url), 8, false)
            .await
            .expect("connect test database");
        migrate(&db.pool).await.expect("migrate");
        TestDb {
            db,
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

#[cfg(test)]
mod host_tests {
    use super::expand_hosts;

    #[test]
    fn a_multi_host_url_becomes_one_url_per_host_in_order() {
        assert_eq!(
            expand_hosts("postgres://u:p@a:5432,b:5433/tapvault?sslmode=require"),
            vec![
                "postgres://u:p@a:5432/tapvault?sslmode=require",
                "postgres://u:p@b:5433/tapvault?sslmode=require"
            ]
        );
        assert_eq!(
            expand_hosts("postgresql://a,b/db"),
            vec!["postgresql://a/db", "postgresql://b/db"]
        );
        for one in [
            "postgres://postgres@localhost/tapvault?host=/run/x,y",
            "postgres://u@h:1/d",
            "not a url",
        ] {
            assert_eq!(expand_hosts(one), vec![one.to_string()], "{one}");
        }
    }
}
