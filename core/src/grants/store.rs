//! The GrantStore: the one owner of grant state (refresh families, revocations, used client
//! assertions), with group commit.
//!
//! It runs on a thread of its own rather than as an actix actor because group commit needs to
//! take *everything queued* while a commit was in flight and commit it as one transaction;
//! a mailbox hands messages over one at a time. Callers hold a cloneable [`GrantStore`] handle
//! and await the answer: a write is answered only after its batch is durable.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tessera_storage::{GrantOp, GrantOutcome, Storage, StoreError};
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::timing::Timings;

/// Revoked access tokens (jti → exp), read by bearer checks and introspection.
#[derive(Clone, Default)]
pub struct RevocationSet(Arc<DashMap<String, u64>>);

impl RevocationSet {
    pub fn is_revoked(&self, jti: &str) -> bool {
        // An empty map is the common case: skip the hash and shard lock.
        !self.0.is_empty() && self.0.contains_key(jti)
    }

    /// A revocation committed here, or by another node and read from the change log.
    pub(crate) fn insert(&self, jti: String, exp: u64) {
        self.0.insert(jti, exp);
    }

    fn prune(&self, now: u64) {
        self.0.retain(|_, exp| *exp > now);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

type Answer = Result<GrantOutcome, Arc<StoreError>>;

/// Where an answer goes: an awaiting task, or a thread blocked on it (an actor's own thread,
/// where a runtime forbids blocking on a task channel).
enum Reply {
    Task(oneshot::Sender<Answer>),
    Thread(mpsc::Sender<Answer>),
    /// Nobody waits: the outcome is only logged when the commit fails.
    Nobody,
}

impl Reply {
    fn send(self, answer: Answer) {
        match self {
            Reply::Task(tx) => drop(tx.send(answer)),
            Reply::Thread(tx) => drop(tx.send(answer)),
            Reply::Nobody => {
                if let Err(e) = answer {
                    tracing::error!(error = %e, "a grant operation nobody waits for failed");
                }
            }
        }
    }
}

struct Job {
    op: GrantOp,
    reply: Reply,
}

enum Msg {
    // Boxed: a grant op is a few hundred bytes, and every queued message would pay for it.
    Job(Box<Job>),
    /// Commit what is queued, then stop and report back.
    Stop(mpsc::Sender<()>),
}

/// The handle. Dropping every handle stops the committer thread.
#[derive(Clone)]
pub struct GrantStore {
    jobs: mpsc::Sender<Msg>,
    revoked: RevocationSet,
    /// For reads. Emptied by [`GrantStore::stop`], so no handle keeps the store open after it.
    reader: Arc<std::sync::RwLock<Option<Arc<dyn Storage>>>>,
    /// How long each durable commit took: the committer's batches, and the registry's changes
    /// it records here too.
    commits: Arc<Timings>,
}

/// Commits at most this many operations in one transaction, so one batch never holds the
/// writer for long.
const MAX_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("grant store: {0}")]
    Store(Arc<StoreError>),
    #[error("the grant store has stopped")]
    Stopped,
}

impl GrantError {
    /// Whether the batch failed because the shared database could not be reached.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, GrantError::Store(e) if e.is_unavailable())
    }
}

/// How often the grant store sweeps what has expired, and how long audit events are kept.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    pub every: Duration,
    pub audit_retention: Duration,
}

impl Sweep {
    /// `audit_retention`'s default: 90 days.
    pub const AUDIT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

    /// Every `every`, audit events kept for the default retention.
    pub fn every(every: Duration) -> Sweep {
        Sweep { every, audit_retention: Sweep::AUDIT_RETENTION }
    }
}

impl GrantStore {
    /// Loads the revocation set and starts the committer, which also sweeps expired state
    /// every `sweep.every`, and audit events older than `sweep.audit_retention`.
    pub fn start(
        store: Arc<dyn Storage>,
        clock: SharedClock,
        sweep: Sweep,
    ) -> Result<GrantStore, StoreError> {
        let revoked = RevocationSet::default();
        let now = clock.now();
        for (jti, exp) in store.revoked_access_tokens()? {
            if exp > now {
                revoked.insert(jti, exp);
            }
        }
        let (jobs, queue) = mpsc::channel::<Msg>();
        let thread_store = Arc::clone(&store);
        let thread_revoked = revoked.clone();
        let commits = Arc::new(Timings::default());
        let thread_commits = Arc::clone(&commits);
        std::thread::Builder::new()
            .name("grant-store".into())
            .spawn(move || {
                committer(thread_store, thread_revoked, clock, queue, sweep, &thread_commits)
            })
            .map_err(StoreError::Io)?;
        let reader = Arc::new(std::sync::RwLock::new(Some(store)));
        Ok(GrantStore { jobs, revoked, reader, commits })
    }

    /// The durations of durable commits, for `/metrics`.
    pub fn commit_times(&self) -> &Arc<Timings> {
        &self.commits
    }

    pub fn revoked(&self) -> &RevocationSet {
        &self.revoked
    }

    /// The store, for reads (introspection) that need no ordering with writes in flight;
    /// `Stopped` once the store has been let go.
    pub fn store(&self) -> Result<Arc<dyn Storage>, GrantError> {
        let reader = self.reader.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        reader.clone().ok_or(GrantError::Stopped)
    }

    /// Commits everything queued, then stops the committer and waits for it: after this the
    /// committer holds no reference to the store. Later submissions answer `Stopped`.
    pub fn stop(&self) {
        self.reader.write().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let (done, wait) = mpsc::channel();
        if self.jobs.send(Msg::Stop(done)).is_ok() {
            wait.recv().ok();
        }
    }

    /// Queues `op` and waits until the batch holding it is committed.
    pub async fn submit(&self, op: GrantOp) -> Result<GrantOutcome, GrantError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Job(Box::new(Job { op, reply: Reply::Task(reply) })))
            .map_err(|_| GrantError::Stopped)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(GrantError::Store(e)),
            Err(_) => Err(GrantError::Stopped),
        }
    }

    /// Queues `op` for the next commit without waiting for it: for records the caller's
    /// answer does not depend on (an audit event of a limit tripped).
    pub fn submit_detached(&self, op: GrantOp) {
        let job = Job { op, reply: Reply::Nobody };
        if self.jobs.send(Msg::Job(Box::new(job))).is_err() {
            tracing::error!("the grant store is stopped; an operation was dropped");
        }
    }

    /// The same, blocking the calling thread (actors on their own thread, the CLI, tests).
    pub fn submit_blocking(&self, op: GrantOp) -> Result<GrantOutcome, GrantError> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(Msg::Job(Box::new(Job { op, reply: Reply::Thread(reply) })))
            .map_err(|_| GrantError::Stopped)?;
        match answer.recv() {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(GrantError::Store(e)),
            Err(_) => Err(GrantError::Stopped),
        }
    }
}

fn committer(
    store: Arc<dyn Storage>,
    revoked: RevocationSet,
    clock: SharedClock,
    queue: mpsc::Receiver<Msg>,
    sweep: Sweep,
    commits: &Timings,
) {
    let cleanup_every = sweep.every;
    // Swept on a schedule whether the queue is idle or busy: under steady load the queue never
    // times out, and the store must not grow without bound then either.
    let mut last_cleanup = Instant::now();
    loop {
        if last_cleanup.elapsed() >= cleanup_every {
            let now = clock.now();
            let audit_before = now.saturating_sub(sweep.audit_retention.as_secs());
            match store.apply_grants(&[GrantOp::Cleanup { now, audit_before }]) {
                Ok(_) => revoked.prune(now),
                Err(e) => tracing::error!(error = %e, "grant cleanup failed; will retry"),
            }
            last_cleanup = Instant::now();
        }
        let wait = cleanup_every.saturating_sub(last_cleanup.elapsed());
        let first = match queue.recv_timeout(wait) {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Stop(done)) => {
                drop(store);
                done.send(()).ok();
                return;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Group commit: everything that queued up while the last commit ran goes in this one.
        let mut batch = vec![first];
        let mut stop = None;
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Stop(done)) => {
                    stop = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        let ops: Vec<GrantOp> = batch.iter().map(|j| j.op.clone()).collect();
        let started = Instant::now();
        let result = store.apply_grants(&ops);
        commits.record(started.elapsed());
        tracing::debug!(
            ops = ops.len(),
            commit_us = started.elapsed().as_micros() as u64,
            "grant batch"
        );
        match result {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    for (jti, exp) in outcome.revoked_jtis() {
                        revoked.insert(jti.clone(), *exp);
                    }
                    if let GrantOutcome::Cleaned { .. } = outcome {
                        revoked.prune(clock.now());
                    }
                    job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // An outage is the operator's to see once, not an error per request.
                if e.is_unavailable() {
                    tracing::warn!(error = %e, ops = ops.len(), "grant batch not committed");
                } else {
                    tracing::error!(error = %e, ops = ops.len(), "grant batch not committed");
                }
                let e = Arc::new(e);
                for job in batch {
                    job.reply.send(Err(Arc::clone(&e)));
                }
            }
        }
        if let Some(done) = stop {
            drop(store);
            done.send(()).ok();
            return;
        }
    }
}
