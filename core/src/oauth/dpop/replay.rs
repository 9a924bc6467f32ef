//! The `jti` replay check of RFC 9449 §11.1, per node and in bounded memory. A proof is
//! accepted only within [`MAX_SKEW`] of its `iat`, so a `jti` must be remembered for at most
//! twice that: entries live in two generations that each span that long, the older dropped
//! whole when a new one starts, and no entry carries a time of its own.

use std::collections::HashSet;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{MAX_SKEW, Proof};

/// Independent locks, so that concurrent proofs rarely wait on one another.
const SHARDS: usize = 32;
/// A generation spans every `iat` a proof accepted at its start may still be replayed under.
const GENERATION: u64 = 2 * MAX_SKEW;

/// Whether a proof was new here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    First,
    Again,
    /// This node holds as many as it may; the proof was not remembered.
    Full,
}

pub struct ReplayWindow {
    shards: Box<[Mutex<Generations>]>,
    per_shard: usize,
    /// Mixed into every key, so that no client can aim its proofs at one shard and fill it.
    salt: [u8; 16],
}

#[derive(Default)]
struct Generations {
    started: u64,
    current: HashSet<u128>,
    previous: HashSet<u128>,
}

impl ReplayWindow {
    /// Remembers up to `capacity` proofs per generation.
    pub fn new(capacity: usize) -> ReplayWindow {
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        let mut salt = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut salt);
        ReplayWindow { shards, per_shard: capacity.div_ceil(SHARDS).max(1), salt }
    }

    /// Records the proof's (key, `jti`) at `now`: [`Seen::First`] the first time.
    pub fn record(&self, proof: &Proof, now: u64) -> Seen {
        // A jti is the client's to choose: keyed with the proof's key, so one client's jti never
        // collides with another's, and hashed, so its length costs nothing here.
        let mut hasher = Sha256::new();
        hasher.update(self.salt);
        hasher.update(proof.jkt.as_bytes());
        hasher.update([0]);
        hasher.update(proof.jti.as_bytes());
        let digest = hasher.finalize();
        let key = u128::from_le_bytes(digest[..16].try_into().expect("16 bytes"));
        let shard = &self.shards[(key as usize) % SHARDS];
        // A poisoned lock only means another thread panicked mid-insert: the sets are whole.
        let mut g = shard.lock().unwrap_or_else(|e| e.into_inner());
        if now >= g.started.saturating_add(GENERATION) {
            // Two generations gone by: nothing either holds can still be replayed.
            let previous = if now >= g.started.saturating_add(2 * GENERATION) {
                HashSet::new()
            } else {
                std::mem::take(&mut g.current)
            };
            g.previous = previous;
            g.current.clear();
            g.started = now;
        }
        if g.current.contains(&key) || g.previous.contains(&key) {
            return Seen::Again;
        }
        if g.current.len() >= self.per_shard {
            return Seen::Full;
        }
        g.current.insert(key);
        Seen::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(jti: &str) -> Proof {
        Proof { jkt: "k".into(), jti: jti.into(), iat: 0 }
    }

    #[test]
    fn a_jti_is_refused_for_as_long_as_its_proof_is_acceptable() {
        let window = ReplayWindow::new(1000);
        assert_eq!(window.record(&proof("a"), 1_000), Seen::First);
        for later in [1_000, 1_060, 1_119, 1_120, 1_200, 1_239] {
            assert_eq!(window.record(&proof("a"), later), Seen::Again, "at {later}");
        }
        // Another key's identical jti is another proof.
        let other = Proof { jkt: "other".into(), ..proof("a") };
        assert_eq!(window.record(&other, 1_000), Seen::First);
    }

    #[test]
    fn memory_is_bounded() {
        let window = ReplayWindow::new(SHARDS);
        let outcomes: Vec<Seen> =
            (0..10 * SHARDS).map(|i| window.record(&proof(&i.to_string()), 5)).collect();
        assert!(outcomes.contains(&Seen::Full));
        assert!(outcomes.iter().filter(|s| **s == Seen::First).count() <= SHARDS);
        // Once the generations have passed, there is room again.
        assert_eq!(window.record(&proof("late"), 5 + 2 * GENERATION), Seen::First);
    }
}
