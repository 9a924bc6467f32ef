//! The trusted issuers as this node holds them: each one's rules and its current key set. The
//! sets are fetched here, off the token path — on a timer when a set's `max-age` runs out, and
//! on a token with an unknown `kid` at most once per [`REFETCH_EVERY`] per issuer — and a
//! failed fetch keeps the last good set (logged and counted), so an issuer's outage never
//! locks its workloads out while their keys are still valid.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tessera_storage::IssuerRecord;

use super::assertion::IssuerRules;
use super::jwks::{JwksError, KeySet, MAX_JWKS};
use crate::auth::url_rule;

/// The least time between two fetches of one issuer's set that a token can cause.
pub const REFETCH_EVERY: u64 = 30;
/// A set's lifetime when its answer names no `max-age`, and the bounds on what it may name.
const DEFAULT_MAX_AGE: u64 = 300;
const MAX_AGE_BOUNDS: (u64, u64) = (REFETCH_EVERY, 86_400);
/// How long one fetch (discovery and set together) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One trusted issuer on this node.
pub struct TrustedIssuer {
    pub record: IssuerRecord,
    pub rules: IssuerRules,
    keys: ArcSwap<KeySet>,
    /// When the current set goes stale (0: never fetched).
    stale_at: AtomicU64,
    last_attempt: AtomicU64,
    /// Fetches that failed, since start: `tessera_federation_jwks_failures_total`.
    pub failures: AtomicU64,
    /// One fetch at a time per issuer; others wait and use what it got.
    fetching: tokio::sync::Mutex<()>,
}

impl TrustedIssuer {
    fn new(record: IssuerRecord) -> TrustedIssuer {
        let rules = IssuerRules {
            issuer: record.issuer.clone(),
            algorithms: record.algorithms.clone(),
            max_token_age: record.max_token_age_secs,
        };
        // A set given in the record is the set, for good; it was checked when written.
        let given = record.jwks.as_deref().and_then(|text| KeySet::parse(text).ok());
        let stale_at = if given.is_some() { u64::MAX } else { 0 };
        TrustedIssuer {
            record,
            rules,
            keys: ArcSwap::from_pointee(given.unwrap_or_default()),
            stale_at: AtomicU64::new(stale_at),
            last_attempt: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    fn is_stale(&self, now: u64) -> bool {
        self.stale_at.load(Ordering::Relaxed) <= now
    }

    /// Fetches the set now unless one was tried within [`REFETCH_EVERY`]; answers the set
    /// to use either way.
    async fn refetch(&self, agent: &ureq::Agent, now: u64) -> Arc<KeySet> {
        if self.record.jwks.is_some() {
            return self.keys();
        }
        let _one = self.fetching.lock().await;
        let last = self.last_attempt.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < REFETCH_EVERY {
            return self.keys();
        }
        self.last_attempt.store(now, Ordering::Relaxed);
        let (agent, record) = (agent.clone(), self.record.clone());
        let fetched = tokio::task::spawn_blocking(move || fetch(&agent, &record)).await;
        match fetched {
            Ok(Ok((set, max_age))) => {
                self.keys.store(Arc::new(set));
                self.stale_at.store(now.saturating_add(max_age), Ordering::Relaxed);
            }
            Ok(Err(why)) => self.failed(&why),
            Err(join) => self.failed(&FetchError::Aborted(join.to_string())),
        }
        self.keys()
    }

    fn failed(&self, why: &FetchError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(issuer = %self.record.issuer, error = %why, "could not fetch the issuer's JWK Set; keeping the last good one");
    }
}

/// Every trusted issuer, by its `issuer` URL.
pub struct Federation {
    issuers: ArcSwap<HashMap<String, Arc<TrustedIssuer>>>,
    agent: ureq::Agent,
}

impl Default for Federation {
    fn default() -> Federation {
        // No redirects: the URL rule judged the URL we were given, not wherever it points.
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(FETCH_TIMEOUT))
            .max_redirects(0)
            .build()
            .into();
        Federation { issuers: ArcSwap::default(), agent }
    }
}

impl Federation {
    /// Takes the registry's issuers; an issuer whose record did not change keeps its keys.
    pub fn publish(&self, records: impl IntoIterator<Item = IssuerRecord>) {
        let old = self.issuers.load();
        let issuers = records
            .into_iter()
            .map(|record| {
                let kept = old.get(&record.issuer).filter(|t| t.record == record).cloned();
                let issuer = kept.unwrap_or_else(|| Arc::new(TrustedIssuer::new(record)));
                (issuer.record.issuer.clone(), issuer)
            })
            .collect();
        self.issuers.store(Arc::new(issuers));
    }

    pub fn get(&self, issuer: &str) -> Option<Arc<TrustedIssuer>> {
        self.issuers.load().get(issuer).cloned()
    }

    pub fn all(&self) -> Vec<Arc<TrustedIssuer>> {
        self.issuers.load().values().cloned().collect()
    }

    /// The set to check a token with `kid` against: the current one when it knows the key
    /// (or the token names none), even past its `max-age`, which the timer looks after;
    /// otherwise a fresh fetch if one is allowed.
    pub async fn keys_for(
        &self,
        issuer: &TrustedIssuer,
        kid: Option<&str>,
        now: u64,
    ) -> Arc<KeySet> {
        let keys = issuer.keys();
        let known = match kid {
            Some(kid) => keys.knows(kid),
            None => !keys.keys.is_empty(),
        };
        if known {
            return keys;
        }
        issuer.refetch(&self.agent, now).await
    }

    /// Fetches every set that has gone stale; the owner's timer calls this.
    pub async fn refresh_stale(&self, now: u64) {
        for issuer in self.all() {
            if issuer.is_stale(now) {
                issuer.refetch(&self.agent, now).await;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}: {1}")]
    Url(&'static str, url_rule::UrlRefusal),
    #[error("GET {0}: {1}")]
    Http(String, ureq::Error),
    #[error("the discovery document has no jwks_uri, or names another issuer")]
    Discovery,
    #[error("{0}")]
    Set(#[from] JwksError),
    #[error("fetch cut short: {0}")]
    Aborted(String),
}

/// The discovery document's `jwks_uri` when the record names none (OpenID Connect Discovery
/// 1.0 §4; its `issuer` must be the record's, §4.3), then the set and its `max-age`.
fn fetch(agent: &ureq::Agent, record: &IssuerRecord) -> Result<(KeySet, u64), FetchError> {
    let jwks_uri = match &record.jwks_uri {
        Some(uri) => uri.clone(),
        None => {
            let base = record.issuer.trim_end_matches('/');
            let url = format!("{base}/.well-known/openid-configuration");
            url_rule::check(&url).map_err(|e| FetchError::Url("discovery", e))?;
            let (text, _) = get(agent, &url)?;
            let doc: serde_json::Value =
                serde_json::from_str(&text).map_err(|_| FetchError::Discovery)?;
            if doc.get("issuer").and_then(|v| v.as_str()) != Some(record.issuer.as_str()) {
                return Err(FetchError::Discovery);
            }
            let uri = doc.get("jwks_uri").and_then(|v| v.as_str()).ok_or(FetchError::Discovery)?;
            uri.to_string()
        }
    };
    url_rule::check(&jwks_uri).map_err(|e| FetchError::Url("jwks_uri", e))?;
    let (text, max_age) = get(agent, &jwks_uri)?;
    let max_age = max_age.unwrap_or(DEFAULT_MAX_AGE).clamp(MAX_AGE_BOUNDS.0, MAX_AGE_BOUNDS.1);
    Ok((KeySet::parse(&text)?, max_age))
}

/// The body (at most [`MAX_JWKS`]) and the `max-age` of `Cache-Control`, if any.
fn get(agent: &ureq::Agent, url: &str) -> Result<(String, Option<u64>), FetchError> {
    let http = |e| FetchError::Http(url.to_string(), e);
    let mut answer = agent.get(url).header("accept", "application/json").call().map_err(http)?;
    let max_age =
        answer.headers().get("cache-control").and_then(|v| v.to_str().ok()).and_then(max_age);
    let text =
        answer.body_mut().with_config().limit(MAX_JWKS as u64).read_to_string().map_err(http)?;
    Ok((text, max_age))
}

/// `max-age=N` of a `Cache-Control` value (RFC 9111 §5.2.2.1); `no-store`/`no-cache` mean
/// as short as allowed.
fn max_age(value: &str) -> Option<u64> {
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        match lower.split_once('=') {
            Some(("max-age", n)) => n.trim_matches('"').parse().ok(),
            None if lower == "no-store" || lower == "no-cache" => Some(0),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::max_age;

    #[test]
    fn issue_13_max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=3600"), Some(3600));
        assert_eq!(max_age("Max-Age=\"60\", must-revalidate"), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
