//! Group commit: concurrent inserts are coalesced into one transaction (one
//! lock of each tree, one tree update, one commit) without delaying a lone
//! insert. Every caller still gets its reply only after its commit.
//!
//! Each tenant has its own worker, so one tenant's large or slow batches
//! never queue another tenant's inserts (tenants share no tree, so their
//! transactions never wait on each other's locks). A worker stops after a
//! minute without work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tapvault_store::universe::{insert_leaves_answered as insert_leaves, InsertResult, NewLeaf};
use tapvault_store::{Db, StoreError, TenantId};
use tokio::sync::{mpsc, oneshot};

/// Most leaves written in one transaction.
pub const MAX_BATCH: usize = 256;

/// How long an idle tenant worker lives.
const IDLE: Duration = Duration::from_secs(60);

/// How long a batch waits for more inserts while another tenant's batch is
/// being written. Each batch costs a fixed amount of CPU (four round trips,
/// the write statement's start-up, the commit) whatever its size; with
/// several tenants pushing, every tenant's batches are small and that cost
/// is paid again and again on cores they share. A lone tenant never waits:
/// its batches grow by themselves while the previous one commits.
const GROUP_WAIT: Duration = Duration::from_millis(1);

struct Job {
    leaves: Vec<NewLeaf>,
    reply: oneshot::Sender<Result<Vec<InsertResult>, StoreError>>,
}

type Workers = Arc<Mutex<HashMap<TenantId, mpsc::Sender<Job>>>>;

#[derive(Clone)]
pub struct Ingestor {
    db: Db,
    workers: Workers,
    /// Workers running a batch now.
    busy: Arc<AtomicUsize>,
}

fn stopped() -> StoreError {
    StoreError::Tree("ingest worker stopped".into())
}

impl Ingestor {
    pub fn start(db: Db) -> Self {
        Ingestor {
            db,
            workers: Default::default(),
            busy: Default::default(),
        }
    }

    fn sender(&self, tenant: TenantId) -> mpsc::Sender<Job> {
        let mut w = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = w.get(&tenant) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        w.insert(tenant, tx.clone());
        tokio::spawn(worker(
            self.db.clone(),
            tenant,
            rx,
            self.workers.clone(),
            self.busy.clone(),
        ));
        tx
    }

    /// Stores `leaves` for `tenant` atomically (all or none); each result
    /// carries the leaf's proofs as committed.
    pub async fn insert(
        &self,
        tenant: TenantId,
        leaves: Vec<NewLeaf>,
    ) -> Result<Vec<InsertResult>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let mut job = Job { leaves, reply };
        // A worker retiring as we send hands the job back; the second
        // attempt starts a fresh one.
        for _ in 0..2 {
            match self.sender(tenant).send(job).await {
                Ok(()) => return rx.await.map_err(|_| stopped())?,
                Err(mpsc::error::SendError(j)) => job = j,
            }
        }
        Err(stopped())
    }
}

async fn worker(
    db: Db,
    tenant: TenantId,
    mut rx: mpsc::Receiver<Job>,
    workers: Workers,
    busy: Arc<AtomicUsize>,
) {
    loop {
        let first = match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some(j)) => j,
            Ok(None) => return,
            Err(_) => {
                // Retire, unless a job slipped in while we looked.
                let retire = {
                    let mut w = workers.lock().unwrap_or_else(|p| p.into_inner());
                    let idle = rx.is_empty();
                    if idle {
                        w.remove(&tenant);
                        rx.close();
                    }
                    idle
                };
                if retire {
                    // Anything sent between the check and the close.
                    while let Ok(j) = rx.try_recv() {
                        run_group(&db, tenant, vec![j]).await;
                    }
                    return;
                }
                continue;
            }
        };
        let others = busy.load(Ordering::Relaxed) > 0;
        let jobs = gather(&mut rx, first, others.then_some(GROUP_WAIT)).await;
        busy.fetch_add(1, Ordering::Relaxed);
        run_group(&db, tenant, jobs).await;
        busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `first` and every job already queued, up to [`MAX_BATCH`] leaves; with
/// `wait`, also what arrives within it.
async fn gather(rx: &mut mpsc::Receiver<Job>, first: Job, wait: Option<Duration>) -> Vec<Job> {
    let until = wait.map(|w| tokio::time::Instant::now() + w);
    let mut n = first.leaves.len();
    let mut jobs = vec![first];
    while n < MAX_BATCH {
        let next = match until {
            None => rx.try_recv().ok(),
            // Queued jobs come at once; then new ones until the deadline.
            Some(u) => tokio::time::timeout_at(u, rx.recv()).await.ok().flatten(),
        };
        let Some(j) = next else { break };
        n += j.leaves.len();
        jobs.push(j);
    }
    jobs
}

async fn run_group(db: &Db, tenant: TenantId, jobs: Vec<Job>) {
    if jobs.len() > 1 {
        let all: Vec<NewLeaf> = jobs.iter().flat_map(|j| j.leaves.iter().cloned()).collect();
        if let Ok(mut results) = insert_leaves(db, tenant, &all).await {
            for j in jobs {
                let rest = results.split_off(j.leaves.len());
                let _ = j.reply.send(Ok(results));
                results = rest;
            }
            return;
        }
        // The shared transaction failed (and rolled back): retry each job
        // alone so one failure cannot sink the others.
    }
    for j in jobs {
        let r = insert_leaves(db, tenant, &j.leaves).await;
        let _ = j.reply.send(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            leaves: Vec::new(),
            reply: oneshot::channel().0,
        }
    }

    /// Sends a job `after` from now.
    fn later(tx: &mpsc::Sender<Job>, after: Duration) {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(job()).await;
        });
    }

    /// Real time, with margins far wider than any scheduling delay.
    #[tokio::test]
    async fn a_batch_waits_only_when_told_and_only_as_long_as_told() {
        let ms = Duration::from_millis;
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(job()).await.unwrap();
        // Alone: what is queued, and nothing that comes later.
        later(&tx, ms(50));
        assert_eq!(gather(&mut rx, job(), None).await.len(), 2);
        // The late one is left for the next batch.
        let next = tokio::time::timeout(ms(2000), rx.recv()).await;
        let first = next.expect("the late job is queued").unwrap();
        // Told to wait: what comes within the wait joins, what comes after
        // it does not.
        later(&tx, ms(20));
        later(&tx, ms(60));
        later(&tx, ms(900));
        let t0 = std::time::Instant::now();
        assert_eq!(gather(&mut rx, first, Some(ms(300))).await.len(), 3);
        assert!(t0.elapsed() >= ms(300));
        let last = tokio::time::timeout(ms(2000), rx.recv()).await;
        assert!(last.expect("the job after the wait is queued").is_some());
    }
}
