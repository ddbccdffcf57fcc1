//! What the agent has pushed, kept in a JSON file in its data dir so a
//! restart pushes only what changed. Written atomically (temp file, fsync,
//! rename) after every change.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pushed {
    /// SHA-256 of what was pushed, hex.
    pub sha256: String,
    /// Unix seconds.
    pub pushed_at: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Failure {
    pub at: i64,
    pub what: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RelayStats {
    pub calls_ok: u64,
    pub calls_failed: u64,
    pub pushes_ok: u64,
    pub last_ok_at: i64,
    pub last_error: Option<Failure>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunInfo {
    pub started_at: i64,
    pub finished_at: i64,
    pub ok: bool,
    /// Items tapd had that are not on the server after this run.
    pub pending: u64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The newest wallet backup pushed.
    pub wallet_backup: Option<Pushed>,
    /// tapd has no wallet backup RPC (before v0.8).
    pub wallet_backup_unsupported: bool,
    /// Address string → when pushed.
    pub addresses: BTreeMap<String, i64>,
    /// "txid:vout/scriptkey" → the proof file pushed for that output.
    pub proofs: BTreeMap<String, Pushed>,
    pub relay: RelayStats,
    pub last_run: Option<RunInfo>,
    /// Last successful collection (unix seconds).
    pub last_ok_run_at: i64,
    /// The most recent failures, newest last (at most 20).
    pub failures: Vec<Failure>,
    /// Key locators learnt from tapd's wallet (QueryScriptKey /
    /// QueryInternalKey), by "kind/key hex"; `pushed` once the server has it.
    #[serde(default)]
    pub keys: BTreeMap<String, KeyState>,
    /// The last complete inventory pushed.
    #[serde(default)]
    pub inventory: Option<InventoryInfo>,
    /// The audit of the server's receipt log.
    #[serde(default)]
    pub log: LogAudit,
}

/// What the agent keeps to audit the server's receipt log (audit.rs).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LogAudit {
    /// The log key, pinned on first contact (hex).
    pub public_key: Option<String>,
    /// The newest head checked (consistent with every earlier one).
    pub head: Option<tapvault_api::receipts::SavedHead>,
    /// Receipts that push replies carried since the last audit. The audit
    /// moves them into `agent-receipts.json` (every receipt, checked on
    /// every audit), so this file stays small however much is backed up.
    pub new_receipts: Vec<tapvault_api::receipts::SavedReceipt>,
    /// Receipts in `agent-receipts.json` after the last audit.
    pub receipts_kept: u64,
    /// Items relayed whose receipt is still to be fetched: (kind, sha256 hex).
    pub awaiting: Vec<(u32, String)>,
    /// What the last audit found wrong (empty: all held).
    pub problems: Vec<String>,
    pub last_audit_at: i64,
    /// Audits that found a problem, since the state file was created.
    pub failed_audits: u64,
    /// The server has no receipt log (an older tapvault).
    pub unsupported: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyState {
    /// "script" or "internal".
    pub kind: String,
    /// The key as tapd reported it (hex).
    pub key: String,
    /// The internal (raw) key, hex, and its derivation.
    pub raw_key: String,
    pub family: i32,
    pub index: i32,
    /// Tap tweak, hex (empty: BIP-86 / none).
    pub tweak: String,
    pub script_key_type: i32,
    pub pushed: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InventoryInfo {
    pub at: i64,
    pub outputs: u64,
    /// Outputs per tapd script key type name.
    pub by_type: BTreeMap<String, u64>,
    pub leased: u64,
    /// Outgoing transfers tapd reported unconfirmed (their outputs appear
    /// once confirmed, and are collected then).
    pub unconfirmed_transfers: u64,
    /// Outputs without key locators (tapd did not know the key).
    pub without_locators: u64,
}

impl LogAudit {
    /// Keeps the receipts a push's reply carried (once per item).
    pub fn add_receipts(&mut self, entries: &[tapvault_api::proto::tapvault_v1::LogEntry]) {
        for e in entries {
            let r = tapvault_api::receipts::SavedReceipt::of(e);
            if !self
                .new_receipts
                .iter()
                .any(|x| x.kind == r.kind && x.content_hash == r.content_hash)
            {
                self.new_receipts.push(r);
            }
        }
    }

    /// An item relayed without a receipt in the reply (tapd's InsertProof).
    pub fn await_receipt(&mut self, kind: u32, sha256_hex: String) {
        let known = self
            .new_receipts
            .iter()
            .any(|x| x.kind == kind && x.content_hash == sha256_hex)
            || self
                .awaiting
                .iter()
                .any(|(k, h)| *k == kind && *h == sha256_hex);
        if !known {
            self.awaiting.push((kind, sha256_hex));
        }
    }
}

/// The state and its file; every mutation is saved before it returns.
pub struct StateStore {
    path: PathBuf,
    state: Mutex<State>,
    /// Changed in memory since the last save (relay counters).
    dirty: std::sync::atomic::AtomicBool,
}

impl StateStore {
    /// The directory the state file lives in.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("agent-state.json");
        let exists = path.exists();
        let state = Self::read(&path)?;
        let store = StateStore {
            path,
            state: Mutex::new(state),
            dirty: Default::default(),
        };
        if !exists {
            // Fail early on an unwritable dir, and let `status` find it.
            store.update(|_| ())?;
        }
        Ok(store)
    }

    pub fn read(path: &Path) -> Result<State> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{} is not a valid agent state file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The state. A lock poisoned by a panic mid-update still holds the
    /// last saved or updated state: it is used (and said), never replaced by
    /// an empty one, which would push everything again and forget failures.
    pub fn get(&self) -> State {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| {
            tracing::error!(
                "agent state lock was poisoned by a panic; continuing with its contents"
            );
            p.into_inner()
        })
    }

    /// Applies `f` and saves.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let mut g = self.lock();
        let out = f(&mut g);
        let bytes = serde_json::to_vec_pretty(&*g)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(out)
    }

    /// Applies `f` in memory only; [`StateStore::flush`] saves it. For
    /// counters updated on every relayed call, which must not cost an fsync.
    pub fn update_volatile(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Saves if something changed in memory since the last save.
    pub fn flush(&self) -> Result<()> {
        if self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.update(|_| ())?;
        }
        Ok(())
    }

    pub fn record_failure(&self, what: &str, error: &str) {
        tracing::warn!("{what}: {error}");
        let saved = self.update(|s| {
            s.failures.push(Failure {
                at: now(),
                what: what.into(),
                error: error.into(),
            });
            let n = s.failures.len();
            if n > 20 {
                s.failures.drain(..n - 20);
            }
        });
        if let Err(e) = saved {
            // The failure is kept in memory; that it could not be saved is
            // itself a failure worth an error line.
            tracing::error!("saving the agent state after a failure: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_keeps_the_state() {
        let dir = std::env::temp_dir().join(format!("tapvault-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = std::sync::Arc::new(StateStore::open(&dir).unwrap());
        store
            .update(|s| {
                s.addresses.insert("a".into(), 1);
            })
            .unwrap();
        let s2 = store.clone();
        let _ = std::thread::spawn(move || {
            s2.update_volatile(|_| panic!("a panic mid-update"));
        })
        .join();
        assert!(store.state.is_poisoned());
        // Before: an empty default state, and every later update failed.
        assert_eq!(store.get().addresses.len(), 1);
        store
            .update(|s| {
                s.addresses.insert("b".into(), 2);
            })
            .unwrap();
        assert_eq!(
            StateStore::read(&dir.join("agent-state.json"))
                .unwrap()
                .addresses
                .len(),
            2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
