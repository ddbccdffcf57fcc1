//! A PostgreSQL primary and a streaming standby made with the deploy
//! scripts (`deploy/replica/*.sh`), from the installed `initdb`, on free
//! loopback ports; removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tapvault_store::cluster::{find_bin_dir, is_root};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cmd args` to run as the cluster owner (postgres when we are root).
fn as_owner(cmd: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    };
    c.args(args).env_remove("PGPASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs `cmd args` as the cluster owner; it must succeed.
pub fn run(cmd: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let o = as_owner(cmd, args, env).output().unwrap();
    assert!(
        o.status.success(),
        "{} {args:?}: {}{}",
        cmd.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The deploy scripts, copied next to the clusters: the cluster owner
/// (postgres, when we are root) may not be able to read the checkout.
fn copy_scripts(to: &Path) {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/replica");
    std::fs::create_dir_all(to).unwrap();
    for name in ["primary.sh", "standby.sh", "check.sh", "promote.sh"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

pub struct Pair {
    pub base: PathBuf,
    pub bin: PathBuf,
    pub primary: u16,
    pub standby: u16,
}

impl Pair {
    fn pg_env(&self, port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", "127.0.0.1".into()),
            ("PGPORT", port.to_string()),
            ("PGUSER", "postgres".into()),
            (
                "PATH",
                format!(
                    "{}:{}",
                    std::env::var("PATH").unwrap_or_default(),
                    self.bin.display()
                ),
            ),
        ]
    }

    /// A primary with database `tapvault` and a streaming standby, `mode`
    /// sync or async, set up by the deploy scripts.
    pub fn new(mode: &str) -> Pair {
        // Through symlinks (/usr/local/bin/initdb → the version's bin dir).
        let bin = std::fs::canonicalize(find_bin_dir().unwrap().join("initdb"))
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let base = std::env::temp_dir().join(format!(
            "tapvault-failover-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&base).unwrap();
        copy_scripts(&base.join("scripts"));
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&base)
                .status()
                .unwrap();
        }
        let p = Pair {
            base,
            bin,
            primary: free_port(),
            standby: free_port(),
        };
        let pdata = p.base.join("primary");
        run(
            &p.bin.join("initdb"),
            &[
                "-D",
                pdata.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            &[],
        );
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=on",
            p.primary,
            p.base.display()
        );
        run(
            &p.bin.join("pg_ctl"),
            &[
                "-D",
                pdata.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                p.base.join("primary.log").to_str().unwrap(),
                "-w",
                "start",
            ],
            &[],
        );
        run(
            Path::new("psql"),
            &["-X", "-d", "postgres", "-c", "CREATE DATABASE tapvault"],
            &p.pg_env(p.primary),
        );
        let mut env = p.pg_env(p.primary);
        env.push(("MODE", mode.into()));
        // Reads on the standby see a commit as soon as it is acknowledged.
        env.push(("COMMIT", "remote_apply".into()));
        run(
            Path::new("bash"),
            &[p.script("primary.sh").to_str().unwrap()],
            &env,
        );
        let mut env = p.pg_env(p.primary);
        env.extend([
            ("PRIMARY_HOST", "127.0.0.1".into()),
            ("PRIMARY_PORT", p.primary.to_string()),
            (
                "STANDBY_PGDATA",
                p.base.join("standby").display().to_string(),
            ),
            ("STANDBY_PORT", p.standby.to_string()),
            ("PGBIN", p.bin.display().to_string()),
            ("SOCKET_DIR", p.base.display().to_string()),
            ("START", "1".into()),
        ]);
        run(
            Path::new("bash"),
            &[p.script("standby.sh").to_str().unwrap()],
            &env,
        );
        let mut env = p.pg_env(p.primary);
        env.push(("WANT", mode.into()));
        let t0 = Instant::now();
        loop {
            let check = p.script("check.sh");
            let mut c = as_owner(Path::new("bash"), &[check.to_str().unwrap()], &env);
            if c.output().unwrap().status.success() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the standby never streamed"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    pub fn script(&self, name: &str) -> PathBuf {
        self.base.join("scripts").join(name)
    }

    /// One database: the primary's or the standby's.
    pub fn url_of(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/tapvault")
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/tapvault",
            self.primary, self.standby
        )
    }

    pub fn kill_primary(&self) {
        let pid = std::fs::read_to_string(self.base.join("primary/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_string();
        assert!(Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success());
    }

    pub fn promote(&self) {
        run(
            Path::new("bash"),
            &[self.script("promote.sh").to_str().unwrap()],
            &self.pg_env(self.standby),
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for d in ["primary", "standby"] {
            let data = self.base.join(d);
            let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
            let _ = as_owner(&self.bin.join("pg_ctl"), &args, &[]).output();
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
