//! Human passwords: Argon2id (OWASP parameters, the crate's defaults), computed on a pool of
//! lowest-priority threads: one hash costs tens of milliseconds of CPU, and a burst of logins
//! must yield the cores to token issuance rather than compete with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::oneshot;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(format!("password must be {MIN_LEN} to {MAX_LEN} characters"));
    }
    Ok(())
}

/// A PHC string (`$argon2id$v=19$...`) with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
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
    Hash(String, oneshot::Sender<Result<String, String>>),
    Verify(String, String, oneshot::Sender<bool>),
}

/// The hashing pool. Cloneable; the threads end when every handle is gone.
#[derive(Clone)]
pub struct PasswordPool {
    jobs: mpsc::Sender<Work>,
    /// Hashes asked for since the start: what a flood of sign-ups costs in CPU.
    hashes: Arc<AtomicU64>,
}

impl PasswordPool {
    pub fn start(threads: usize) -> std::io::Result<PasswordPool> {
        let (jobs, queue) = mpsc::channel::<Work>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
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
                    match work {
                        // A caller that gave up has nobody to answer; that is fine.
                        Ok(Work::Hash(password, reply)) => {
                            let _ = reply.send(hash(&password));
                        }
                        Ok(Work::Verify(password, phc, reply)) => {
                            let _ = reply.send(verify(&password, &phc));
                        }
                        Err(_) => return,
                    }
                }
            })?;
        }
        Ok(PasswordPool { jobs, hashes: Arc::default() })
    }

    /// How many hashes have been asked of the pool.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: String) -> Result<String, String> {
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Hash(password, reply))
            .map_err(|_| "password pool stopped".to_string())?;
        answer.await.map_err(|_| "password pool stopped".to_string())?
    }

    /// False on a wrong password and on any failure.
    pub async fn verify(&self, password: String, phc: String) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Work::Verify(password, phc, reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
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
}
