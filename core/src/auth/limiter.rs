//! Failed-authentication limits per client and per address (docs/api.md, `429`).
//!
//! A fixed window per key. Only failures count, but a failure is *reserved* before the check it
//! stands for runs (an Argon2id verification takes tens of milliseconds) and refunded when the
//! check succeeds: otherwise N concurrent wrong guesses would all be evaluated before the first
//! of them was counted. The per-client window is kept per client *and* address, so failures
//! sent from elsewhere under a client's id cannot lock that client out (short of a flood that
//! fills the table, when newcomers share wide overflow windows); guessing a 256-bit secret is
//! hopeless anyway, and the per-address window bounds the noise.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client id as presented, from one address (or from anywhere when none is known). The
    /// id is kept as its keyed 64-bit digest, so that counting an attempt copies nothing: two
    /// ids share a window only if their digests meet, which nobody can aim for without this
    /// process's random key, and which then makes a limit stricter, never absent.
    Client {
        digest: u64,
        addr: Option<IpAddr>,
        is_long: bool,
    },
    Addr(IpAddr),
    /// One of a fixed number of shared windows, for keys that get no window of their own (too
    /// long to keep, or the table is full): they are still counted, never let through.
    Overflow {
        is_client: bool,
        bucket: u16,
    },
}

/// One key's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    count: u32,
    /// Whether an attempt has been refused in this window: the first refusal is the moment
    /// the limit tripped, which the audit log records once.
    has_tripped: bool,
}

impl Window {
    fn new(start: u64) -> Window {
        Window { start, count: 0, has_tripped: false }
    }
}

/// A full window: when it opens again, and whether this refusal is its first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub retry_after: u64,
    pub is_trip: bool,
}

/// A failure counted in a window, to give back if the attempt succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    key: LimitKey,
    window: u64,
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
    windows: DashMap<LimitKey, Window>,
    /// Seeds the overflow buckets per process, so nobody can aim at a victim's bucket.
    buckets: std::collections::hash_map::RandomState,
    /// When stale windows were last swept: at most one sweep per window length, however many
    /// requests arrive past the threshold.
    last_sweep: AtomicU64,
    /// About how many windows there are: `DashMap::len` locks every shard, which is too much
    /// for every authentication on the token hot path.
    size: AtomicUsize,
}

/// Beyond this many tracked keys, stale windows are swept (at most once per window).
const SWEEP_AT: usize = 10_000;
/// Past this many keys no new client window is opened; address windows still are, up to
/// [`ADDR_CAP`]. Past those, keys share [`BUCKETS`] overflow windows per kind: memory stays
/// bounded and every source is still counted (a flood that fills the table makes limits
/// stricter for newcomers, never absent).
const HARD_CAP: usize = 100_000;
const ADDR_CAP: usize = 4 * HARD_CAP;
const BUCKETS: u64 = 65_536;
/// An overflow window holds this many keys' worth of failures: filling all of them takes
/// `BUCKETS × OVERFLOW_SHARE × limit` failures per window (42 million a minute by default).
/// Names too long to keep only ever name nobody (ours are at most 128 bytes; logins are keyed
/// by the person they find), so their looser share guards nothing of value.
const OVERFLOW_SHARE: u32 = 32;
/// Longer names are not ours (client ids are 22 characters, operators' at most 128; logins are
/// limited as the user they name) and do not get a window of their own: they share overflow
/// windows.
const MAX_TRACKED_ID: usize = 128;

impl LimitKey {
    /// A client id (or login) as presented from an address. IPv6 addresses count per /64, the
    /// block one host usually holds, so a host cannot mint fresh keys from its own subnet.
    pub fn client(client_id: &str, addr: Option<IpAddr>) -> LimitKey {
        static NAMES: LazyLock<RandomState> = LazyLock::new(RandomState::new);
        LimitKey::Client {
            digest: NAMES.hash_one(client_id),
            addr: addr.map(prefix),
            is_long: client_id.len() > MAX_TRACKED_ID,
        }
    }

    pub fn addr(addr: IpAddr) -> LimitKey {
        LimitKey::Addr(prefix(addr))
    }
}

fn is_long(key: &LimitKey) -> bool {
    matches!(key, LimitKey::Client { is_long: true, .. })
}

/// An IPv4 client reaching a dual-stack (`[::]`) listener arrives as `::ffff:a.b.c.d`: it is
/// that IPv4 address, not a member of the /64 `::`, which every IPv4 client would share.
fn prefix(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
    }
}

impl FailureLimiter {
    pub fn new(limits: Limits) -> FailureLimiter {
        FailureLimiter {
            limits,
            windows: DashMap::new(),
            buckets: Default::default(),
            last_sweep: AtomicU64::new(0),
            size: AtomicUsize::new(0),
        }
    }

    fn limit(&self, key: &LimitKey) -> u32 {
        match key {
            LimitKey::Client { .. } => self.limits.per_client,
            LimitKey::Addr(_) => self.limits.per_addr,
            // Shared by every key that lands in it: a flood of unrelated failures must be
            // enormous before it fills the window a newcomer with the right secret lands in.
            LimitKey::Overflow { is_client: true, .. } => {
                self.limits.per_client.saturating_mul(OVERFLOW_SHARE)
            }
            LimitKey::Overflow { is_client: false, .. } => {
                self.limits.per_addr.saturating_mul(OVERFLOW_SHARE)
            }
        }
    }

    /// The window `key` is counted in: its own, or its shared overflow window when it is too
    /// long to keep or the table has no room for it.
    fn window_key(&self, key: LimitKey, now: u64) -> LimitKey {
        if !is_long(&key) && (self.windows.contains_key(&key) || self.has_room(&key, now)) {
            return key;
        }
        self.overflow_of(&key)
    }

    fn overflow_of(&self, key: &LimitKey) -> LimitKey {
        let is_client = !matches!(key, LimitKey::Addr(_));
        LimitKey::Overflow { is_client, bucket: (self.buckets.hash_one(key) % BUCKETS) as u16 }
    }

    /// `Err(retry_after)` when `key` has used up its failures in the current window.
    pub fn check(&self, key: &LimitKey, now: u64) -> Result<(), u64> {
        if self.windows.is_empty() {
            return Ok(());
        }
        match self.windows.get(key) {
            Some(entry) => {
                let Window { start, count, .. } = *entry;
                let ends = start.saturating_add(self.limits.window_secs);
                if now < ends && count >= self.limit(key) { Err(ends - now) } else { Ok(()) }
            }
            None => Ok(()),
        }
    }

    /// Counts one failure for `key` now, unless its window is full (`Err(retry_after)`). The
    /// reservation is [`refund`](Self::refund)ed if the attempt succeeds. Check and count are
    /// one step under the key's lock: concurrent attempts cannot all pass.
    pub fn reserve(&self, key: LimitKey, now: u64) -> Result<Reservation, Full> {
        // A key seen before (a client that authenticates again) is counted in place: no
        // allocation, one lock. Windows stay until a sweep finds them stale.
        if let Some(mut entry) = self.windows.get_mut(&key) {
            let window = self.count(&key, &mut entry, now)?;
            drop(entry);
            return Ok(Reservation { key, window });
        }
        let key = self.window_key(key, now);
        let mut entry = match self.windows.entry(key) {
            Entry::Occupied(held) => held.into_ref(),
            Entry::Vacant(empty) => {
                self.size.fetch_add(1, Ordering::Relaxed);
                empty.insert(Window::new(now))
            }
        };
        let window = self.count(&key, &mut entry, now)?;
        drop(entry);
        Ok(Reservation { key, window })
    }

    /// One more failure in `window`, restarted when it has ended; the window's start, or
    /// `Err(retry_after)` when it is full.
    fn count(&self, key: &LimitKey, window: &mut Window, now: u64) -> Result<u64, Full> {
        let ends = window.start.saturating_add(self.limits.window_secs);
        if now >= ends {
            *window = Window::new(now);
        } else if window.count >= self.limit(key) {
            let is_trip = !window.has_tripped;
            window.has_tripped = true;
            return Err(Full { retry_after: ends - now, is_trip });
        }
        window.count = window.count.saturating_add(1);
        Ok(window.start)
    }

    /// Gives back a failure: the attempt succeeded. Only into the window it was taken from — a
    /// later one never counted it, and must not lose another attempt's failure. The window
    /// itself stays (empty) for the client's next attempt, until a sweep finds it stale.
    pub fn refund(&self, reservation: &Reservation) {
        let Reservation { key, window } = reservation;
        if let Some(mut entry) = self.windows.get_mut(key)
            && entry.start == *window
        {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    /// Takes back a failure counted in `key`'s current window without a reservation at hand
    /// (the attempt turned out not to have been judged). A no-op when there is none.
    pub fn forgive(&self, key: LimitKey) {
        let key = if !is_long(&key) && self.windows.contains_key(&key) {
            key
        } else {
            self.overflow_of(&key)
        };
        let window = self.windows.get(&key).map(|w| w.start);
        if let Some(window) = window {
            self.refund(&Reservation { key, window });
        }
    }

    /// Counts one failure that was not reserved.
    pub fn record_failure(&self, key: LimitKey, now: u64) {
        // A full window stays full; the answer to this request is already decided.
        let _ = self.reserve(key, now);
    }

    /// Whether a new window may be opened for `key`, after sweeping stale windows once per
    /// window length when the table is large.
    fn has_room(&self, key: &LimitKey, now: u64) -> bool {
        if self.size.load(Ordering::Relaxed) < SWEEP_AT {
            return true;
        }
        let window = self.limits.window_secs;
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now >= last.saturating_add(window)
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.windows.retain(|_, w| now < w.start.saturating_add(window));
            self.size.store(self.windows.len(), Ordering::Relaxed);
        }
        let len = self.size.load(Ordering::Relaxed);
        match key {
            LimitKey::Client { .. } => len < HARD_CAP,
            LimitKey::Addr(_) => len < ADDR_CAP,
            LimitKey::Overflow { .. } => true,
        }
    }

    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_failures_waits_out_its_window_and_others_do_not() {
        let limiter = FailureLimiter::new(Limits { window_secs: 60, per_client: 2, per_addr: 5 });
        let a = LimitKey::client("a", None);
        limiter.record_failure(a, 100);
        assert!(limiter.check(&a, 100).is_ok());
        limiter.record_failure(a, 110);
        assert_eq!(limiter.check(&a, 120), Err(40));
        assert!(limiter.check(&LimitKey::client("b", None), 120).is_ok());
        let elsewhere = LimitKey::client("a", Some(IpAddr::from([10, 0, 0, 1])));
        assert!(limiter.check(&elsewhere, 120).is_ok(), "another address is not locked out");
        assert!(limiter.check(&a, 160).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_ipv4_mapped_addresses_are_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(LimitKey::addr(a), LimitKey::addr(b));
        let mapped: IpAddr = "::ffff:127.9.9.9".parse().unwrap();
        let other: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(LimitKey::addr(mapped), LimitKey::Addr(IpAddr::from([127, 9, 9, 9])));
        assert_ne!(LimitKey::addr(mapped), LimitKey::addr(other), "issue 8: not one /64 `::`");
    }

    #[test]
    fn issue_8_reservations_admit_at_most_the_limit_and_refunds_give_back() {
        let limiter = FailureLimiter::new(Limits { window_secs: 60, per_client: 3, per_addr: 9 });
        let a = LimitKey::client("a", None);
        // Three attempts in flight at once: the fourth is refused before it is evaluated.
        let held: Vec<_> = (0..3).map(|_| limiter.reserve(a, 100).unwrap()).collect();
        assert_eq!(limiter.reserve(a, 101), Err(Full { retry_after: 59, is_trip: true }));
        let again = limiter.reserve(a, 101);
        assert_eq!(again, Err(Full { retry_after: 59, is_trip: false }), "a window trips once");
        // Two of them succeed: their reservations are given back.
        limiter.refund(&held[0]);
        limiter.refund(&held[1]);
        let again = limiter.reserve(a, 102).unwrap();
        limiter.refund(&again);
        limiter.refund(&held[2]);
        assert_eq!(limiter.check(&a, 103), Ok(()), "a window back at zero holds nothing");
        // An attempt from an ended window succeeding takes nothing from the new one.
        let old = limiter.reserve(a, 200).unwrap();
        let _new = limiter.reserve(a, 261).unwrap();
        limiter.refund(&old);
        assert_eq!(
            limiter.windows.get(&a).map(|w| (w.start, w.count)),
            Some((261, 1)),
            "the new one still counts"
        );
    }

    #[test]
    fn issue_8_a_full_table_is_swept_once_per_window_and_never_lets_a_key_through() {
        let limiter = FailureLimiter::new(Limits { window_secs: 60, per_client: 3, per_addr: 9 });
        for i in 0..HARD_CAP {
            limiter.record_failure(LimitKey::client(&format!("c{i}"), None), 100);
        }
        assert_eq!(limiter.tracked(), HARD_CAP);
        // Still fresh: no new client window of its own, and no sweep per request.
        limiter.record_failure(LimitKey::client("new", None), 101);
        let swept_at = limiter.last_sweep.load(Ordering::Relaxed);
        limiter.record_failure(LimitKey::client("newer", None), 102);
        assert_eq!(limiter.last_sweep.load(Ordering::Relaxed), swept_at);
        // A newcomer is counted in a shared window: limited, not let through.
        let newcomer = LimitKey::client("victim", None);
        let admitted = (0..200).filter(|_| limiter.reserve(newcomer, 102).is_ok()).count();
        assert!(admitted <= 3 * OVERFLOW_SHARE as usize, "{admitted}");
        // An address still gets its own window.
        limiter.record_failure(LimitKey::Addr(IpAddr::from([10, 0, 0, 1])), 102);
        assert!(limiter.windows.contains_key(&LimitKey::Addr(IpAddr::from([10, 0, 0, 1]))));
        // A window later the stale ones go in one sweep.
        limiter.record_failure(LimitKey::client("later", None), 200);
        assert_eq!(limiter.tracked(), 1);
        // A name too long to keep shares a window too: still limited.
        let long = LimitKey::client(&"x".repeat(300), None);
        let admitted = (0..200).filter(|_| limiter.reserve(long, 201).is_ok()).count();
        assert_eq!(admitted, 3 * OVERFLOW_SHARE as usize);
        assert!(!limiter.windows.contains_key(&long));
        limiter.forgive(long);
        assert!(limiter.reserve(long, 201).is_ok(), "a forgiven failure frees its place");
    }

    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// An attempt begins for key `k`: its failure is reserved.
        Begin(u8),
        /// The oldest attempt in flight for `k` succeeds: its reservation is given back.
        Succeed(u8),
        /// The oldest attempt in flight for `k` fails: nothing to do.
        Fail(u8),
        Advance(u8),
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]
        /// Against a reference model of fixed windows: an attempt is admitted exactly when its
        /// window holds fewer than `limit` failures and attempts in flight; so however attempts
        /// interleave, a window never admits more than `limit` attempts that fail.
        #[test]
        fn issue_8_reservations_follow_the_window_model(ops in proptest::collection::vec(
            proptest::prop_oneof![
                (0u8..3).prop_map(Op::Begin),
                (0u8..3).prop_map(Op::Succeed),
                (0u8..3).prop_map(Op::Fail),
                (0u8..40).prop_map(Op::Advance),
            ],
            1..120,
        )) {
            let limit = 3;
            let limiter =
                FailureLimiter::new(Limits { window_secs: 60, per_client: limit, per_addr: 100 });
            let key = |k: u8| LimitKey::client(&format!("c{k}"), None);
            // Per key: (window start, counted), and the attempts in flight (window each began in).
            let mut model: std::collections::HashMap<u8, (u64, u32)> = Default::default();
            let mut in_flight: std::collections::HashMap<u8, Vec<Reservation>> = Default::default();
            let mut failed_per_window: std::collections::HashMap<(u8, u64), u32> = Default::default();
            let mut now = 1_000u64;
            for op in ops {
                match op {
                    Op::Begin(k) => {
                        let (start, count) = model.entry(k).or_insert((now, 0));
                        if now >= *start + 60 {
                            (*start, *count) = (now, 0);
                        }
                        let admitted = *count < limit;
                        let reserved = limiter.reserve(key(k), now);
                        prop_assert_eq!(reserved.is_ok(), admitted);
                        if let Ok(reservation) = reserved {
                            *count += 1;
                            prop_assert_eq!(reservation.window, *start);
                            in_flight.entry(k).or_default().push(reservation);
                        }
                    }
                    Op::Succeed(k) | Op::Fail(k) => {
                        let Some(reservation) = in_flight.get_mut(&k).filter(|v| !v.is_empty()).map(|v| v.remove(0)) else { continue };
                        let started = reservation.window;
                        if matches!(op, Op::Succeed(_)) {
                            limiter.refund(&reservation);
                            // The refund lands only in the window it was taken from.
                            if let Some((start, count)) = model.get_mut(&k)
                                && *start == started {
                                    *count = count.saturating_sub(1);
                                }
                        } else {
                            *failed_per_window.entry((k, started)).or_insert(0) += 1;
                        }
                    }
                    Op::Advance(secs) => now += u64::from(secs),
                }
            }
            prop_assert!(failed_per_window.values().all(|&n| n <= limit), "{failed_per_window:?}");
        }
    }
}
