//! The agent's audit of the server's receipt log, after every collection:
//! the newest head is signed by the pinned log key and extends the last head
//! checked (consistency), every item the agent pushed or relayed has its
//! entry, and every receipt is included under the newest head. Anything
//! else is a loud error: `agent status` (non-zero exit), an error-level log
//! line, and the failed-audit counter.

use crate::state::StateStore;
use std::collections::HashMap;
use tapvault_api::client::LogClient;
use tapvault_api::proto::tapvault_v1 as v1;
use tapvault_api::receipts::{self as rc, SavedHead, SavedReceipt};

/// Every receipt the agent holds, in its data dir: a JSON list, the format
/// `tapvault audit --receipts` reads.
pub const RECEIPTS_FILE: &str = "agent-receipts.json";

fn read_receipts(path: &std::path::Path) -> anyhow::Result<Vec<SavedReceipt>> {
    use anyhow::Context;
    if !path.exists() {
        return Ok(Vec::new());
    }
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&b).with_context(|| format!("{} is not a receipts file", path.display()))
}

/// Written like the state file: a temp file, fsync, rename.
fn write_receipts(path: &std::path::Path, r: &[SavedReceipt]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec(r)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Receipts asked for per call (the server's cap).
const CHUNK: usize = 10_000;

pub struct Auditor {
    pub log: LogClient,
    pub state: std::sync::Arc<StateStore>,
}

impl Auditor {
    /// One audit; returns the problems found (also saved in the state).
    pub async fn run(&mut self) -> anyhow::Result<Vec<String>> {
        let st = self.state.get().log;
        if st.unsupported {
            return Ok(Vec::new());
        }
        let file = self.state.dir().join(RECEIPTS_FILE);
        let mut receipts = read_receipts(&file)?;
        // Receipts pushes brought since the last audit join the file's.
        let fresh = st.new_receipts.clone();
        let mut seen: std::collections::HashSet<(u32, String)> = receipts
            .iter()
            .map(|r| (r.kind, r.content_hash.clone()))
            .collect();
        for r in &fresh {
            if seen.insert((r.kind, r.content_hash.clone())) {
                receipts.push(r.clone());
            }
        }
        let mut problems = Vec::new();
        let outcome = self.check(&st, receipts, &mut problems).await;
        let (head, receipts, resolved) = match outcome {
            Ok(x) => x,
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                tracing::warn!(
                    "the tapvault server has no receipt log (older version): not audited"
                );
                self.state.update(|s| s.log.unsupported = true)?;
                return Ok(Vec::new());
            }
            Err(s) => {
                // Not reaching the server is the collector's failure to
                // report; the audit waits for the next run.
                tracing::warn!("receipt log audit skipped: {}", s.message());
                return Ok(Vec::new());
            }
        };
        for p in &problems {
            tracing::error!("receipt log audit: {p}");
        }
        let failed = !problems.is_empty();
        let out = problems.clone();
        write_receipts(&file, &receipts)?;
        self.state.update(|s| {
            if let Some(h) = head {
                s.log.public_key = Some(h.public_key.clone());
                s.log.head = Some(h);
            }
            // Only what this audit took: a push or relay during it stays
            // for the next one.
            s.log.new_receipts.retain(|r| !fresh.contains(r));
            s.log.awaiting.retain(|a| !resolved.contains(a));
            s.log.receipts_kept = receipts.len() as u64;
            s.log.problems = problems;
            s.log.last_audit_at = crate::state::now();
            if failed {
                s.log.failed_audits += 1;
            }
        })?;
        Ok(out)
    }

    /// The checks; returns the head to keep (none when it must not replace
    /// the saved one), the receipts, and the relayed items whose receipt
    /// was found.
    #[allow(clippy::type_complexity)]
    async fn check(
        &mut self,
        st: &crate::state::LogAudit,
        mut receipts: Vec<SavedReceipt>,
        problems: &mut Vec<String>,
    ) -> Result<(Option<SavedHead>, Vec<SavedReceipt>, Vec<(u32, String)>), tonic::Status> {
        let pinned: Option<[u8; 32]> = st
            .public_key
            .as_deref()
            .and_then(|k| hex::decode(k).ok())
            .and_then(|b| b.try_into().ok());
        let h = self
            .log
            .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
            .await?
            .into_inner();
        let head = match rc::verify_head(&h, pinned.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                problems.push(e.to_string());
                return Ok((None, receipts, Vec::new()));
            }
        };
        let mut keep_head = true;

        // The log only grew since the last head checked.
        if let Some(saved) = &st.head {
            match saved.verify() {
                Ok(old) => {
                    let res = if old.head.tree_size > head.head.tree_size {
                        Err(rc::LogError(format!(
                            "the log shrank: {} entries, {} at the last audit",
                            head.head.tree_size, old.head.tree_size
                        )))
                    } else {
                        let p = self
                            .log
                            .get_consistency_proof(v1::GetConsistencyProofRequest {
                                from_size: old.head.tree_size,
                                to_size: head.head.tree_size,
                            })
                            .await?
                            .into_inner();
                        rc::verify_consistency(&old, &head, &p.hashes)
                    };
                    if let Err(e) = res {
                        problems.push(e.to_string());
                        keep_head = false;
                    }
                }
                Err(e) => problems.push(format!("the state file's saved head: {e}")),
            }
        }

        // Receipts for relayed items, then every receipt's inclusion.
        let mut queries: Vec<v1::GetReceiptRequest> = Vec::new();
        for (k, h) in &st.awaiting {
            if let Ok(b) = hex::decode(h) {
                queries.push(v1::GetReceiptRequest {
                    kind: *k,
                    content_hash: b,
                });
            }
        }
        let awaiting_n = queries.len();
        for r in &receipts {
            queries.push(v1::GetReceiptRequest {
                kind: r.kind,
                content_hash: hex::decode(&r.content_hash).unwrap_or_default(),
            });
        }
        let mut answers = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(CHUNK) {
            answers.extend(
                self.log
                    .get_receipts(v1::GetReceiptsRequest {
                        items: chunk.to_vec(),
                    })
                    .await?
                    .into_inner()
                    .receipts,
            );
        }
        // Heads other than the one checked above (the log grew meanwhile)
        // must be signed by the same key and extend it.
        let mut heads: HashMap<u64, Option<rc::VerifiedHead>> = HashMap::new();
        heads.insert(head.head.tree_size, Some(head.clone()));
        let mut resolved = Vec::new();
        let held: std::collections::HashSet<(u32, String)> = receipts
            .iter()
            .map(|r| (r.kind, r.content_hash.clone()))
            .collect();
        for (i, a) in answers.iter().enumerate() {
            let saved = if i < awaiting_n {
                None
            } else {
                Some(&receipts[i - awaiting_n])
            };
            let what = || match saved {
                Some(r) => r.describe(),
                None => format!(
                    "{} {}",
                    tapvault_codec::log::Kind::from_code(a.kind as u8)
                        .map(|k| k.name())
                        .unwrap_or("item"),
                    hex::encode(&a.content_hash)
                ),
            };
            if !a.found {
                problems.push(format!(
                    "{}: {}",
                    what(),
                    if a.problem.is_empty() {
                        "no receipt"
                    } else {
                        &a.problem
                    }
                ));
                continue;
            }
            let Some(e) = a.entry.as_ref() else {
                problems.push(format!("{}: a receipt without its entry", what()));
                continue;
            };
            let entry = match rc::entry_of(e) {
                Ok(x) => x,
                Err(err) => {
                    problems.push(format!("{}: {err}", what()));
                    continue;
                }
            };
            if let Some(r) = saved {
                if r.index != entry.index || r.leaf_hash != hex::encode(entry.leaf_hash()) {
                    problems.push(format!(
                        "{}: the log now holds it as entry {} instead (history rewritten)",
                        r.describe(),
                        entry.index
                    ));
                    continue;
                }
            }
            let Some(hpb) = a.head.as_ref() else {
                problems.push(format!(
                    "{}: not covered by a signed head although acknowledged before the audit",
                    what()
                ));
                continue;
            };
            let size = hpb.tree_size;
            if let std::collections::hash_map::Entry::Vacant(slot) = heads.entry(size) {
                let v = match rc::verify_head(hpb, Some(&head.public_key)) {
                    Ok(v) if size > head.head.tree_size => {
                        let p = self
                            .log
                            .get_consistency_proof(v1::GetConsistencyProofRequest {
                                from_size: head.head.tree_size,
                                to_size: size,
                            })
                            .await?
                            .into_inner();
                        match rc::verify_consistency(&head, &v, &p.hashes) {
                            Ok(()) => Some(v),
                            Err(e) => {
                                problems.push(e.to_string());
                                None
                            }
                        }
                    }
                    Ok(_) => {
                        problems.push(format!("a receipt came under an older head of size {size}"));
                        None
                    }
                    Err(e) => {
                        problems.push(e.to_string());
                        None
                    }
                };
                slot.insert(v);
            }
            let Some(Some(h)) = heads.get(&size) else {
                continue;
            };
            if let Err(err) = rc::verify_inclusion(h, &entry, &a.inclusion_proof) {
                problems.push(err.to_string());
                continue;
            }
            if saved.is_none() {
                let r = SavedReceipt::of(e);
                resolved.push((a.kind, hex::encode(&a.content_hash)));
                if !held.contains(&(r.kind, r.content_hash.clone())) {
                    receipts.push(r);
                }
            }
        }
        let keep = keep_head.then(|| SavedHead::of(&head));
        Ok((keep, receipts, resolved))
    }
}
