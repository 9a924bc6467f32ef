//! Failed-authentication limits per client and per address (API.md §2, `429`).
//!
//! A fixed window per key. Only failures count. The per-client window is kept per client *and*
//! address, so failures sent from elsewhere under a client's id cannot lock that client out;
//! guessing a 256-bit secret is hopeless anyway, and the per-address window bounds the noise.

use std::net::IpAddr;

use dashmap::DashMap;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client id as presented, from one address (or from anywhere when none is known).
    Client(String, Option<IpAddr>),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub window_secs: u64,
    pub per_client: u32,
    pub per_addr: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { window_secs: 60, per_client: 20, per_addr: 100 }
    }
}

pub struct FailureLimiter {
    limits: Limits,
    windows: DashMap<LimitKey, (u64, u32)>,
}

/// Beyond this many tracked keys, stale windows are swept on the next failure.
const SWEEP_AT: usize = 10_000;
/// A hard cap: past it (after a sweep), new client windows are not opened; address windows
/// still are, so every source stays bounded while memory does too.
const HARD_CAP: usize = 100_000;
/// Longer client ids are not ours (ours are 22 characters; operators' at most 128) and are not
/// worth a window of their own: the address window covers them.
const MAX_TRACKED_ID: usize = 128;

impl LimitKey {
    /// A client id as presented from an address. IPv6 addresses count per /64, the block one
    /// host usually holds, so a host cannot mint fresh keys from its own subnet.
    pub fn client(client_id: &str, addr: Option<IpAddr>) -> Option<LimitKey> {
        (client_id.len() <= MAX_TRACKED_ID)
            .then(|| LimitKey::Client(client_id.to_string(), addr.map(prefix)))
    }

    pub fn addr(addr: IpAddr) -> LimitKey {
        LimitKey::Addr(prefix(addr))
    }
}

fn prefix(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
    }
}

impl FailureLimiter {
    pub fn new(limits: Limits) -> FailureLimiter {
        FailureLimiter { limits, windows: DashMap::new() }
    }

    fn limit(&self, key: &LimitKey) -> u32 {
        match key {
            LimitKey::Client(..) => self.limits.per_client,
            LimitKey::Addr(_) => self.limits.per_addr,
        }
    }

    /// `Err(retry_after)` when `key` has used up its failures in the current window.
    pub fn check(&self, key: &LimitKey, now: u64) -> Result<(), u64> {
        if self.windows.is_empty() {
            return Ok(());
        }
        match self.windows.get(key) {
            Some(entry) => {
                let (start, count) = *entry;
                let ends = start.saturating_add(self.limits.window_secs);
                if now < ends && count >= self.limit(key) { Err(ends - now) } else { Ok(()) }
            }
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, key: LimitKey, now: u64) {
        let window = self.limits.window_secs;
        if self.windows.len() >= SWEEP_AT {
            self.windows.retain(|_, (start, _)| now < start.saturating_add(window));
            if self.windows.len() >= HARD_CAP
                && matches!(key, LimitKey::Client(..))
                && !self.windows.contains_key(&key)
            {
                return;
            }
        }
        let mut entry = self.windows.entry(key).or_insert((now, 0));
        if now >= entry.0.saturating_add(window) {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_failures_waits_out_its_window_and_others_do_not() {
        let limiter = FailureLimiter::new(Limits { window_secs: 60, per_client: 2, per_addr: 5 });
        let a = LimitKey::Client("a".into(), None);
        limiter.record_failure(a.clone(), 100);
        assert!(limiter.check(&a, 100).is_ok());
        limiter.record_failure(a.clone(), 110);
        assert_eq!(limiter.check(&a, 120), Err(40));
        assert!(limiter.check(&LimitKey::Client("b".into(), None), 120).is_ok());
        let elsewhere = LimitKey::Client("a".into(), Some(IpAddr::from([10, 0, 0, 1])));
        assert!(limiter.check(&elsewhere, 120).is_ok(), "another address is not locked out");
        assert!(limiter.check(&a, 160).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_long_ids_are_not_tracked() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(LimitKey::addr(a), LimitKey::addr(b));
        assert!(LimitKey::client(&"x".repeat(129), Some(a)).is_none());
        assert!(LimitKey::client("abc", Some(a)).is_some());
    }
}
