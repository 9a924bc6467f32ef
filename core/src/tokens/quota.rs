//! Issuance quotas (docs/api.md, Issuance quotas): an app with `tokenQuota.perMinute` gets at
//! most that many new tokens from a node in a minute, then `429` with `Retry-After`.
//!
//! Counted at each node on its own, as the failed-authentication windows are: a shared count
//! would put a database round trip on every token. The window of an app is one atomic word
//! (its start and its count) found in a sharded map under a shard's read lock, the way the
//! client table is read, and taken with one compare-and-swap; only an app's first token takes
//! a write lock, to add its window. Windows are keyed by client id, not kept in the published
//! client, so that a change to the app (which publishes a new client) does not refill it.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::issuer::Issuer;
use crate::oauth::OAuthError;
use crate::tables::client::Client;

/// A quota's window, in seconds.
pub const WINDOW: u64 = 60;
/// The count's bits in a window word: room for the largest quota
/// (`registry::apps::fields::MAX_TOKENS_PER_MINUTE`, under 2^20).
const COUNT_BITS: u32 = 21;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Past this many windows (apps with a quota that this node has served), the stale ones go.
const MAX_WINDOWS: usize = 100_000;

/// One app's window: `start << COUNT_BITS | count`. A window starts with the first token after
/// the previous one ended.
#[derive(Debug, Default)]
struct Window(AtomicU64);

impl Window {
    /// Takes one token, or says in how many seconds the window frees.
    fn take(&self, limit: u32, now: u64) -> Result<(), u64> {
        let mut seen = self.0.load(Ordering::Relaxed);
        loop {
            let (start, count) = (seen >> COUNT_BITS, seen & COUNT_MASK);
            // A clock that went back is a new window too: no wait longer than one window.
            let next = if now >= start + WINDOW || now < start {
                (now << COUNT_BITS) | 1
            } else if count >= u64::from(limit) {
                return Err(start + WINDOW - now);
            } else {
                seen + 1
            };
            match self.0.compare_exchange_weak(seen, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now_seen) => seen = now_seen,
            }
        }
    }

    fn is_current(&self, now: u64) -> bool {
        let start = self.0.load(Ordering::Relaxed) >> COUNT_BITS;
        now < start + WINDOW
    }
}

/// The windows of the apps this node has issued to under a quota.
#[derive(Debug, Default)]
pub struct Quotas {
    windows: DashMap<String, Window>,
}

impl Quotas {
    /// Takes one token from `client_id`'s window of `limit` a minute, or says in how many
    /// seconds it frees.
    pub fn take(&self, client_id: &str, limit: u32, now: u64) -> Result<(), u64> {
        if let Some(window) = self.windows.get(client_id) {
            return window.take(limit, now);
        }
        if self.windows.len() >= MAX_WINDOWS {
            self.windows.retain(|_, w| w.is_current(now));
        }
        self.windows.entry(client_id.to_string()).or_default().take(limit, now)
    }
}

impl Issuer {
    /// Counts one new token for `client` against its quota, if it has one: `429` with
    /// `Retry-After` when the minute's tokens are used up. Called before anything is signed or
    /// stored, so a refusal changes nothing else.
    pub(super) fn take_quota(&self, client: &Client, now: u64) -> Result<(), OAuthError> {
        let Some(limit) = client.tokens_per_minute else { return Ok(()) };
        self.quotas
            .take(&client.client_id, limit, now)
            .map_err(|retry_after| OAuthError::QuotaExceeded { retry_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_holds_its_limit_then_frees_when_it_ends() {
        let quotas = Quotas::default();
        for _ in 0..3 {
            assert_eq!(quotas.take("a", 3, 1000), Ok(()));
        }
        assert_eq!(quotas.take("a", 3, 1000), Err(60));
        assert_eq!(quotas.take("a", 3, 1059), Err(1));
        assert_eq!(quotas.take("b", 3, 1059), Ok(()), "another app has its own window");
        assert_eq!(quotas.take("a", 3, 1060), Ok(()));
        assert_eq!(quotas.take("a", 1, 1061), Err(59), "a lowered quota holds at once");
        assert_eq!(quotas.take("a", 3, 900), Ok(()), "a clock that went back opens a window");
    }

    #[test]
    fn the_largest_quota_fits_the_count() {
        let quota = crate::registry::apps::fields::MAX_TOKENS_PER_MINUTE;
        assert!(u64::from(quota) < COUNT_MASK);
        let window = Window::default();
        window.0.store((1000 << COUNT_BITS) | u64::from(quota - 1), Ordering::Relaxed);
        assert_eq!(window.take(quota, 1000), Ok(()));
        assert_eq!(window.take(quota, 1000), Err(60));
    }

    #[test]
    fn concurrent_takes_never_pass_the_limit() {
        let quotas = std::sync::Arc::new(Quotas::default());
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let q = &quotas;
                    s.spawn(move || (0..500).filter(|_| q.take("a", 1000, 5000).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 1000);
    }
}
