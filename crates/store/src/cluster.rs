//! A private PostgreSQL cluster owned by `tapvault serve` when no database
//! URL is given: initdb on first start, started with the server (listening
//! only on a unix socket in its own directory), stopped on exit.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivateCluster {
    bin: PathBuf,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    run_as: Option<String>,
}

/// PostgreSQL's server binaries: from PATH, else the newest under
/// /usr/lib/postgresql.
pub fn find_bin_dir() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                return Ok(d);
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).ok_or_else(|| {
        anyhow!(
            "no database URL given and no PostgreSQL server binaries found (initdb/pg_ctl on PATH or under \
             /usr/lib/postgresql/*/bin). Install PostgreSQL (Debian/Ubuntu: `apt install postgresql`) or pass \
             --database-url / DATABASE_URL"
        )
    })
}

pub fn is_root() -> bool {
    // /proc/self is owned by the process's effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl PrivateCluster {
    /// Prepares (initdb if needed) a cluster for `data_dir`. PostgreSQL
    /// refuses to run as root; then the cluster lives under
    /// /var/lib/tapvault-postgres and runs as the `postgres` user.
    pub fn prepare(data_dir: &Path) -> Result<Self> {
        let bin = find_bin_dir()?;
        let (base, run_as) = if is_root() {
            let tag = hex::encode(
                &<sha2::Sha256 as sha2::Digest>::digest(data_dir.to_string_lossy().as_bytes())[..6],
            );
            (
                PathBuf::from("/var/lib/tapvault-postgres").join(tag),
                Some("postgres".to_string()),
            )
        } else {
            (data_dir.join("postgres"), None)
        };
        let c = PrivateCluster {
            bin,
            data: base.join("data"),
            socket_dir: base.join("sock"),
            run_as,
        };
        std::fs::create_dir_all(&c.socket_dir)
            .with_context(|| format!("creating {}", c.socket_dir.display()))?;
        if let Some(u) = &c.run_as {
            let st = Command::new("chown")
                .arg("-R")
                .arg(format!("{u}:"))
                .arg(&base)
                .status()?;
            if !st.success() {
                bail!(
                    "running as root: could not hand {} to user {u} (does it exist?)",
                    base.display()
                );
            }
        }
        if !c.data.join("PG_VERSION").exists() {
            tracing::info!(
                "initialising a private PostgreSQL cluster in {}",
                c.data.display()
            );
            c.run(
                "initdb",
                &[
                    "-D",
                    &c.data.to_string_lossy(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                ],
            )?;
        }
        Ok(c)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let out = match &self.run_as {
            Some(u) => Command::new("runuser")
                .arg("-u")
                .arg(u)
                .arg("--")
                .arg(&exe)
                .args(args)
                .output(),
            None => Command::new(&exe).args(args).output(),
        }
        .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts the cluster; `Ok(false)` if it was already running.
    pub fn start(&self) -> Result<bool> {
        let opts = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}'",
            self.socket_dir.display()
        );
        let log = self.data.join("server.log");
        // A cluster left running by a crash is reused.
        if self
            .run("pg_ctl", &["-D", &self.data.to_string_lossy(), "status"])
            .is_ok()
        {
            return Ok(false);
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )?;
        Ok(true)
    }

    pub fn stop(&self) {
        if let Err(e) = self.stop_with("fast") {
            tracing::warn!("stopping the private PostgreSQL cluster: {e}");
        }
    }

    /// Stops with a `pg_ctl` shutdown mode (`smart`, `fast`, `immediate`).
    pub fn stop_with(&self, mode: &str) -> Result<()> {
        self.run(
            "pg_ctl",
            &["-D", &self.data.to_string_lossy(), "-m", mode, "-w", "stop"],
        )
    }

    /// Whether the cluster's postmaster is running.
    pub fn is_running(&self) -> bool {
        self.run("pg_ctl", &["-D", &self.data.to_string_lossy(), "status"])
            .is_ok()
    }

    /// Connection URL of database `db` over the unix socket.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost/{db}?host={}",
            self.socket_dir.display()
        )
    }
}
