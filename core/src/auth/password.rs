//! Human passwords: Argon2id (OWASP parameters, the crate's defaults), computed on a pool of
//! lowest-priority threads: one hash costs tens of milliseconds of CPU, and a burst of logins
//! must yield the cores to token issuance rather than compete with it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::oneshot;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

/// A password outside the length policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password must be {MIN_LEN} to {MAX_LEN} characters")]
pub struct PolicyRefusal;

pub fn check_policy(password: &str) -> Result<(), PolicyRefusal> {
    let n = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(PolicyRefusal);
    }
    Ok(())
}

/// A PHC string (`$argon2id$v=19$...`) with a fresh random salt; `None` only when the hasher
/// refuses (it does not for a password within the policy).
pub fn hash(password: &str) -> Option<String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).ok()
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Verified against when the user is unknown, inactive or has no password, so every failed
/// login costs one Argon2id verification, like a wrong password does.
pub static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash("not a password of anyone's").unwrap_or_default());

enum Work {
    Hash(String, oneshot::Sender<Option<String>>),
    Verify(String, String, oneshot::Sender<bool>),
}

/// Why the pool did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The queue is full: the caller answers `503` with `Retry-After` rather than let a burst
    /// of sign-ins queue without bound behind the lowest-priority threads.
    #[error("the password queue is full")]
    Busy,
    #[error("the password pool stopped")]
    Stopped,
    #[error("the password could not be hashed")]
    Refused,
}

/// Jobs that may wait for a password thread: at tens of milliseconds each on two threads, the
/// last one waits about a second. Past it, sign-ins are turned away rather than queued.
pub const QUEUE: usize = 64;

/// How long a caller turned away by a full queue is told to wait, in seconds.
pub const BUSY_RETRY_AFTER: u64 = 1;

/// The hashing pool. Cloneable; the threads end when every handle is gone.
#[derive(Clone)]
pub struct PasswordPool {
    jobs: mpsc::SyncSender<Work>,
    /// Hashes and verifications computed so far (for metrics, and for tests that check that a
    /// path does, or does not, spend an Argon2id computation).
    done: Arc<AtomicU64>,
    /// Hashes waiting in the queue. New passwords (registration, invitations) may hold at most
    /// half of it, so a flood of sign-ups, which anyone can send, cannot turn every login away.
    hashes_waiting: Arc<AtomicUsize>,
    max_hashes_waiting: usize,
}

impl PasswordPool {
    /// `threads` workers behind a queue of at most `queue` waiting jobs.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<PasswordPool> {
        let max_hashes_waiting = (queue / 2).max(1);
        let (jobs, queue) = mpsc::sync_channel::<Work>(queue);
        let queue = Arc::new(Mutex::new(queue));
        let done = Arc::new(AtomicU64::new(0));
        let hashes_waiting = Arc::new(AtomicUsize::new(0));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let counter = Arc::clone(&done);
            let waiting = Arc::clone(&hashes_waiting);
            std::thread::Builder::new().name(format!("password-{i}")).spawn(move || {
                if let Err(e) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::warn!(error = ?e, "password threads run at normal priority");
                }
                loop {
                    let work = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok(work) = work else { return };
                    counter.fetch_add(1, Ordering::Relaxed);
                    match work {
                        // A caller that gave up has nobody to answer; that is fine.
                        Work::Hash(password, reply) => {
                            waiting.fetch_sub(1, Ordering::Relaxed);
                            let _ = reply.send(hash(&password));
                        }
                        Work::Verify(password, phc, reply) => {
                            let _ = reply.send(verify(&password, &phc));
                        }
                    }
                }
            })?;
        }
        Ok(PasswordPool { jobs, done, hashes_waiting, max_hashes_waiting })
    }

    /// How many hashes and verifications have been taken up so far.
    pub fn computed(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn enqueue(&self, work: Work) -> Result<(), PoolError> {
        self.jobs.try_send(work).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => PoolError::Busy,
            mpsc::TrySendError::Disconnected(_) => PoolError::Stopped,
        })
    }

    /// A PHC string for a password within the policy.
    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        if self.hashes_waiting.fetch_add(1, Ordering::Relaxed) >= self.max_hashes_waiting {
            self.hashes_waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(PoolError::Busy);
        }
        let (reply, answer) = oneshot::channel();
        if let Err(e) = self.enqueue(Work::Hash(password, reply)) {
            self.hashes_waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        answer.await.map_err(|_| PoolError::Stopped)?.ok_or(PoolError::Refused)
    }

    /// `Ok(false)` on a wrong password or an unreadable hash.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, PoolError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Work::Verify(password, phc, reply))?;
        answer.await.map_err(|_| PoolError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc));
        assert!(!verify("wrong horse", &phc));
        assert!(!verify("x", "garbage"));
        assert!(check_policy("short").is_err());
        assert!(!DUMMY.is_empty());
    }

    #[tokio::test]
    async fn issue_8_a_full_queue_answers_busy_and_never_grows() {
        // One thread, a queue of one. Slow jobs until the queue is full: the worker is busy
        // with one Argon2id verification and one more waits.
        let pool = PasswordPool::start(1, 1).unwrap();
        loop {
            let job = Work::Verify("x".into(), DUMMY.clone(), oneshot::channel().0);
            match pool.jobs.try_send(job) {
                Ok(()) => continue,
                Err(mpsc::TrySendError::Full(_)) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pool.verify("x".into(), DUMMY.clone()).await, Err(PoolError::Busy));
        assert_eq!(pool.hash("password".into()).await, Err(PoolError::Busy));
    }

    #[tokio::test]
    async fn issue_8_new_passwords_take_at_most_half_the_queue() {
        let pool = PasswordPool::start(1, 8).unwrap();
        assert_eq!(pool.max_hashes_waiting, 4);
        // Four hashes waiting (as under a sign-up flood): a fifth is turned away, a login's
        // verification still gets in.
        pool.hashes_waiting.store(4, Ordering::Relaxed);
        assert_eq!(pool.hash("a password".into()).await, Err(PoolError::Busy));
        assert_eq!(pool.hashes_waiting.load(Ordering::Relaxed), 4, "the refusal holds no place");
        assert_eq!(pool.verify("x".into(), DUMMY.clone()).await, Ok(false));
        pool.hashes_waiting.store(0, Ordering::Relaxed);
        assert!(pool.hash("a password".into()).await.is_ok());
        assert_eq!(pool.hashes_waiting.load(Ordering::Relaxed), 0);
    }
}
