//! Durations counted into fixed buckets with atomics only, so that timing a request or a commit
//! never takes a lock on the path it times; `/metrics` reads them as histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from a token's hundred microseconds to a commit
/// waiting out a slow database.
pub const BOUNDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
pub struct Timings {
    /// Observations at or under each bound (not cumulative; the reader adds them up).
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// What a reader sees: total seconds, count, and (upper bound, observations in that bucket).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sum: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

impl Timings {
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations per bucket (not cumulative), ending with `+Inf` for those past the last
    /// bound. Read without a lock, so a concurrent observation may show in the count and not
    /// yet in its bucket; it is counted under `+Inf` until then, so the buckets add up to the
    /// count.
    pub fn snapshot(&self) -> Snapshot {
        let count = self.count.load(Ordering::Relaxed);
        let mut buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(&b, n)| (b, n.load(Ordering::Relaxed)))
            .collect();
        let bounded: u64 = buckets.iter().map(|b| b.1).sum();
        buckets.push((f64::INFINITY, count.saturating_sub(bounded)));
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        Snapshot { sum, count, buckets }
    }

    /// The observations of both, as one histogram.
    pub fn merged(&self, other: &Timings) -> Snapshot {
        let (a, b) = (self.snapshot(), other.snapshot());
        let buckets =
            a.buckets.iter().zip(&b.buckets).map(|(&(bound, x), &(_, y))| (bound, x + y)).collect();
        Snapshot { sum: a.sum + b.sum, count: a.count + b.count, buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_buckets() {
        let t = Timings::default();
        t.record(Duration::from_micros(50));
        t.record(Duration::from_millis(3));
        t.record(Duration::from_secs(60));
        let s = t.snapshot();
        assert_eq!(s.count, 3);
        assert!((s.sum - 60.00305).abs() < 1e-9, "{}", s.sum);
        let at = |bound: f64| s.buckets.iter().find(|b| b.0 == bound).unwrap().1;
        assert_eq!(
            (at(0.0001), at(0.0025), at(0.005), at(5.0), at(f64::INFINITY)),
            (1, 0, 1, 0, 1)
        );
        assert_eq!(t.merged(&t).buckets.iter().map(|b| b.1).sum::<u64>(), 6);
    }
}
