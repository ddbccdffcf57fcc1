//! Group commit: concurrent inserts are coalesced into one transaction (one
//! lock of each tree, one tree update, one commit) without delaying a lone
//! insert. Every caller still gets its reply only after its commit.

use tapvault_store::universe::{insert_leaves, InsertResult, NewLeaf};
use tapvault_store::{Db, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most leaves written in one transaction.
pub const MAX_BATCH: usize = 256;

struct Job {
    tenant: i64,
    leaves: Vec<NewLeaf>,
    reply: oneshot::Sender<Result<Vec<InsertResult>, StoreError>>,
}

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
}

impl Ingestor {
    pub fn start(db: Db) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(worker(db, rx));
        Ingestor { tx }
    }

    /// Stores `leaves` for `tenant` atomically (all or none).
    pub async fn insert(
        &self,
        tenant: i64,
        leaves: Vec<NewLeaf>,
    ) -> Result<Vec<InsertResult>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                tenant,
                leaves,
                reply,
            })
            .await
            .map_err(|_| StoreError::Tree("ingest worker stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Tree("ingest worker stopped".into()))?
    }
}

async fn worker(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut n = jobs[0].leaves.len();
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.leaves.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let mut tenants: Vec<i64> = jobs.iter().map(|j| j.tenant).collect();
        tenants.sort();
        tenants.dedup();
        for t in tenants {
            let (mine, rest): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.tenant == t);
            jobs = rest;
            run_group(&db, t, mine).await;
        }
    }
}

async fn run_group(db: &Db, tenant: i64, jobs: Vec<Job>) {
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
