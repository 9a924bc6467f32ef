//! The follower: on a store that several nodes share, each node reads the change log
//! (`version > N`) and brings its snapshots in line — registry records, the key ring,
//! revocations — so a change made at any node is in force here soon after it commits. It reads
//! when the store tells it of a commit (PostgreSQL's LISTEN) and at least every poll;
//! correctness rests on polling alone, being told only makes it sooner.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tessera_storage::{Storage, StoreError, parse_revocation_entry};

use crate::grants::RevocationSet;
use crate::keys::{KeyRingError, KeyRingHandle};
use crate::registry::follow::Touched;
use crate::registry::{RegistryError, RegistryHandle};

/// How often a node reads the change log at the least: a change is in force everywhere within
/// about this even when no notification comes.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// A lag past this is logged as a warning: a change is meant to be in force everywhere
/// within a second.
const LATE: Duration = Duration::from_secs(1);

/// What a poll brought in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Caught {
    pub changes: usize,
    pub keys: bool,
    pub revoked: usize,
    pub touched: Touched,
    /// From the newest change's write to its being in force here, when the store keeps times.
    pub lag: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    #[error("the change log read was cancelled")]
    Aborted,
}

impl FollowError {
    /// Whether the poll failed because the store could not be reached, rather than on what it
    /// read.
    pub fn is_unavailable(&self) -> bool {
        match self {
            FollowError::Store(e) => e.is_unavailable(),
            FollowError::Registry(e) => e.is_unavailable(),
            FollowError::Keys(e) => e.is_unavailable(),
            FollowError::Aborted => false,
        }
    }
}

/// Whether the store answered this node's last poll of the change log, and how late the last
/// change it applied came in. Kept in memory so that a readiness probe never waits on a
/// database that does not answer; a store no follower polls (the embedded one) is always
/// reachable and has no lag.
#[derive(Clone, Debug, Default)]
pub struct StoreHealth(Arc<Health>);

#[derive(Debug, Default)]
struct Health {
    unreachable: AtomicBool,
    /// Microseconds, plus one: zero means no change was applied yet.
    lag: AtomicU64,
}

impl StoreHealth {
    pub fn is_reachable(&self) -> bool {
        !self.0.unreachable.load(Ordering::Relaxed)
    }

    /// From the write of the newest change this node applied to its being in force here, by
    /// the store's clock; `None` before the first.
    pub fn change_lag(&self) -> Option<Duration> {
        let stored = self.0.lag.load(Ordering::Relaxed);
        stored.checked_sub(1).map(Duration::from_micros)
    }

    fn set_reachable(&self, reachable: bool) {
        self.0.unreachable.store(!reachable, Ordering::Relaxed);
    }

    fn set_lag(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX - 1);
        self.0.lag.store(micros.saturating_add(1), Ordering::Relaxed);
    }
}

pub struct Follower {
    store: Arc<dyn Storage>,
    registry: RegistryHandle,
    keyring: KeyRingHandle,
    revoked: RevocationSet,
    health: StoreHealth,
    /// The last version this node has applied.
    seen: u64,
}

impl Follower {
    /// `seen` is the store's version read before the snapshots were loaded: whatever came
    /// after is applied again, which is harmless, and nothing is missed.
    pub fn new(
        store: Arc<dyn Storage>,
        registry: RegistryHandle,
        keyring: KeyRingHandle,
        revoked: RevocationSet,
        seen: u64,
    ) -> Follower {
        Follower { store, registry, keyring, revoked, health: StoreHealth::default(), seen }
    }

    /// What `/readyz` reads: updated after every poll.
    pub fn health(&self) -> StoreHealth {
        self.health.clone()
    }

    /// Polls until the runtime stops. A failed poll (the store unreachable) keeps what this
    /// node has and tries again; the node goes on issuing from its snapshots meanwhile.
    pub async fn run(mut self) {
        let mut failing_since: Option<Instant> = None;
        loop {
            let store = Arc::clone(&self.store);
            if tokio::task::spawn_blocking(move || store.wait_for_change(POLL_EVERY)).await.is_err()
            {
                // The runtime is shutting down.
                return;
            }
            let polled = self.poll().await;
            // A poll that failed on what it read still reached the store.
            self.health.set_reachable(!matches!(&polled, Err(e) if e.is_unavailable()));
            match polled {
                Ok(caught) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(after = ?since.elapsed(), version = self.seen, "change log readable again; caught up");
                    }
                    if let Some(lag) = caught.lag {
                        self.health.set_lag(lag);
                        if lag > LATE {
                            tracing::warn!(
                                ?lag,
                                version = self.seen,
                                changes = caught.changes,
                                "applied changes late"
                            );
                        } else {
                            tracing::debug!(
                                ?lag,
                                version = self.seen,
                                changes = caught.changes,
                                "applied changes"
                            );
                        }
                    }
                }
                Err(e) => {
                    if failing_since.is_none() {
                        tracing::warn!(error = %e, "cannot follow the change log; serving the last snapshots");
                        failing_since = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Reads what changed since the last poll and applies it. `seen` moves only once every
    /// part applied, so a failure is retried whole on the next poll.
    pub async fn poll(&mut self) -> Result<Caught, FollowError> {
        let store = Arc::clone(&self.store);
        let since = self.seen;
        let changes = tokio::task::spawn_blocking(move || store.changes_since(since))
            .await
            .map_err(|_| FollowError::Aborted)??;
        let Some(&(last, _)) = changes.last() else { return Ok(Caught::default()) };
        let mut caught = Caught { changes: changes.len(), ..Caught::default() };
        for (_, entry) in &changes {
            if caught.touched.mark(entry) {
                continue;
            }
            if entry.starts_with("keys:") {
                caught.keys = true;
            } else if let Some((jti, exp)) = parse_revocation_entry(entry) {
                self.revoked.insert(jti.to_string(), exp);
                caught.revoked += 1;
            }
        }
        if caught.touched.any() {
            self.registry.reload(caught.touched).await?;
        }
        if caught.keys {
            self.keyring.reload().await?;
        }
        self.seen = last;
        // Read after the changes are in force, so the lag covers applying them. A store that
        // cannot say leaves it unknown; that is no reason to apply the changes again.
        let store = Arc::clone(&self.store);
        caught.lag = tokio::task::spawn_blocking(move || store.change_age(last))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        Ok(caught)
    }
}
