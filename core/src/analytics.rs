//! What `GET /api/service/analytics` reports, kept in one place: tokens issued to people per
//! day, provider-token requests by outcome, and the registry's counts of a service's users and
//! subscriptions. Counters live in memory, bounded, and start again from zero on a restart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

/// How many days of per-person token counts are kept and reported.
pub const USER_DAYS_KEPT: u64 = 30;
const USER_COUNTS_SWEEP_AT: usize = 100_000;
const USER_COUNTS_CAP: usize = 1_000_000;

/// How a provider-token request ended, as the service analytics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderOutcome {
    /// A stored grant answered at once.
    Ok,
    /// The user was sent to consent.
    ActionRequired,
    /// A hosted flow finished with a stored grant.
    Completed,
    Error,
}

impl ProviderOutcome {
    pub const ALL: [ProviderOutcome; 4] = [
        ProviderOutcome::Ok,
        ProviderOutcome::ActionRequired,
        ProviderOutcome::Completed,
        ProviderOutcome::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProviderOutcome::Ok => "ok",
            ProviderOutcome::ActionRequired => "action_required",
            ProviderOutcome::Completed => "completed",
            ProviderOutcome::Error => "error",
        }
    }
}

/// A service's users and subscriptions, as the registry counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFigures {
    pub users: usize,
    pub active_users: usize,
    pub subscriptions: usize,
    pub active_subscriptions: usize,
}

#[derive(Debug, Default)]
pub struct Analytics {
    /// Tokens issued to people, by (auth id, day since the epoch).
    user_tokens: DashMap<(String, u64), u64>,
    /// The day the per-user counts were last swept of days too old to report.
    user_tokens_swept: AtomicU64,
    /// Provider-token requests by (service id, outcome).
    provider_requests: DashMap<(String, ProviderOutcome), u64>,
}

impl Analytics {
    /// Counts one token for a person today. Bounded without sweeping on every call: past
    /// [`USER_COUNTS_SWEEP_AT`] entries, days too old to report are swept at most once a day,
    /// and past [`USER_COUNTS_CAP`] a (user, day) not yet counted is not counted at all.
    pub fn count_user_token(&self, auth_id: &str, now: u64) {
        let day = now / 86_400;
        let key = (auth_id.to_string(), day);
        if let Some(mut n) = self.user_tokens.get_mut(&key) {
            *n += 1;
            return;
        }
        if self.user_tokens.len() >= USER_COUNTS_SWEEP_AT {
            let swept = self.user_tokens_swept.load(Ordering::Relaxed);
            if day > swept
                && self
                    .user_tokens_swept
                    .compare_exchange(swept, day, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.user_tokens.retain(|(_, d), _| d + USER_DAYS_KEPT > day);
            }
            if self.user_tokens.len() >= USER_COUNTS_CAP {
                return;
            }
        }
        *self.user_tokens.entry(key).or_insert(0) += 1;
    }

    /// Tokens issued per day to any of `users` over the last [`USER_DAYS_KEPT`] days.
    pub fn user_tokens_per_day(&self, users: &[String], now: u64) -> BTreeMap<u64, u64> {
        let today = now / 86_400;
        let mut out = BTreeMap::new();
        for entry in self.user_tokens.iter() {
            let ((user, day), n) = (entry.key(), *entry.value());
            if day + USER_DAYS_KEPT > today && users.contains(user) {
                *out.entry(*day).or_insert(0) += n;
            }
        }
        out
    }

    /// One provider-token request of a service and how it ended.
    pub fn count_provider_request(&self, service_id: &str, outcome: ProviderOutcome) {
        *self.provider_requests.entry((service_id.to_string(), outcome)).or_insert(0) += 1;
    }

    /// A service's provider-token requests by outcome, every outcome listed.
    pub fn provider_requests(&self, service_id: &str) -> [(ProviderOutcome, u64); 4] {
        ProviderOutcome::ALL.map(|o| {
            let n = self.provider_requests.get(&(service_id.to_string(), o)).map_or(0, |v| *v);
            (o, n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_8_per_user_counts_are_swept_at_most_once_a_day() {
        let analytics = Analytics::default();
        let today = 20_000;
        for i in 0..USER_COUNTS_SWEEP_AT {
            analytics.user_tokens.insert((format!("u{i}"), today), 1);
        }
        analytics.count_user_token("ada", today * 86_400);
        assert_eq!(analytics.user_tokens_swept.load(Ordering::Relaxed), today);
        // Nothing was stale, so nothing went; a second new user today does not sweep again.
        assert_eq!(analytics.user_tokens.len(), USER_COUNTS_SWEEP_AT + 1);
        analytics.user_tokens.insert(("old".into(), today - USER_DAYS_KEPT), 1);
        analytics.count_user_token("eve", today * 86_400 + 5);
        assert!(analytics.user_tokens.contains_key(&("old".to_string(), today - USER_DAYS_KEPT)));
        // The next day the stale day goes in one sweep.
        analytics.count_user_token("ada", (today + 1) * 86_400);
        assert!(!analytics.user_tokens.contains_key(&("old".to_string(), today - USER_DAYS_KEPT)));
        assert_eq!(analytics.user_tokens_per_day(&["ada".into()], (today + 1) * 86_400).len(), 2);
    }

    #[test]
    fn provider_requests_are_counted_per_service() {
        let analytics = Analytics::default();
        analytics.count_provider_request("a", ProviderOutcome::Ok);
        analytics.count_provider_request("a", ProviderOutcome::Ok);
        analytics.count_provider_request("b", ProviderOutcome::Error);
        let a = analytics.provider_requests("a");
        assert_eq!(a[0], (ProviderOutcome::Ok, 2));
        assert!(a[1..].iter().all(|(_, n)| *n == 0));
        assert_eq!(analytics.provider_requests("b")[3], (ProviderOutcome::Error, 1));
    }
}
