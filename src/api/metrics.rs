//! `GET /metrics`: Prometheus families in the OpenMetrics text format (docs/api.md,
//! Metrics). Counting on a request's path is atomics only: counters and fixed-bucket
//! histograms (`tessera_core::timing`), looked up under a read lock by labels that are static
//! strings, route patterns and status codes, never a client id or a raw path, so the number
//! of series stays bounded. Gauges are read when Prometheus scrapes, not kept up to date.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix_web::{HttpResponse, web};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use tessera_core::oauth::OAuthError;
use tessera_core::oauth::request::GrantType;
use tessera_core::timing::Timings;
use tessera_storage::KeyState;

use crate::api::AppState;
use crate::api::routes::routes;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// How a caller tried to authenticate, as counted when it failed.
#[derive(Clone, Copy, Debug)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    Password,
    Bearer,
    ApiKey,
}

impl AuthMethod {
    fn label(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::Password => "password",
            AuthMethod::Bearer => "bearer",
            AuthMethod::ApiKey => "api_key",
        }
    }
}

/// The label index of a grant type: one we support, or `other`.
pub fn grant_index(grant_type: GrantType) -> usize {
    match grant_type {
        GrantType::ClientCredentials => 0,
        GrantType::RefreshToken => 1,
        GrantType::TokenExchange => 2,
        GrantType::Unsupported => 3,
    }
}

/// The label index of a request whose body could not be read.
pub const UNKNOWN_GRANT: usize = 4;

/// A histogram over [`Timings`], so that an observation is a few relaxed atomic adds.
#[derive(Clone, Debug, Default)]
struct Histogram(Arc<Timings>);

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        encoder.encode_histogram::<NoLabelSet>(s.sum, s.count, &s.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The outcomes a token request can end in: `issued`, `reused` (a token handed out again by
/// `client_credentials`, or a spent refresh token that came back), `quota` (over the app's
/// `tokenQuota`), or an OAuth error code.
const OUTCOMES: [&str; 14] = [
    "issued",
    "reused",
    "quota",
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "invalid_dpop_proof",
    "slow_down",
    "server_error",
    "temporarily_unavailable",
];

/// Every grant label, in [`grant_index`] order.
const GRANT_LABELS: [&str; 5] =
    ["client_credentials", "refresh_token", "token_exchange", "other", "unknown"];

/// Route pattern → status → counter, as one worker thread has met them.
type RouteCounters = HashMap<String, HashMap<u16, Counter>>;

pub struct Metrics {
    registry: Registry,
    /// Tells one server's metrics from another's in the per-thread caches.
    id: u64,
    /// `[grant][outcome]`, made up front: counting a token request takes no lock and no hash.
    tokens: Vec<Vec<Counter>>,
    token_durations: Vec<Histogram>,
    http: Family<HttpLabels, Counter>,
    failed_auth: Family<MethodLabels, Counter>,
    signing_keys: Family<StateLabels, Gauge>,
    registered: Family<KindLabels, Gauge>,
    /// Failed JWK Set fetches per trusted issuer, as the federation counts them.
    jwks_failures: Family<IssuerLabels, Counter>,
    change_lag: Option<Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// Every family of docs/api.md; `tessera_change_lag_seconds` only on a shared store, where
    /// a node follows others.
    pub fn new(commits: Arc<Timings>, shared: bool) -> Metrics {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut registry = Registry::with_prefix("tessera");
        let token_family = Family::<TokenLabels, Counter>::default();
        registry.register(
            "token_requests",
            "Token requests by grant and outcome",
            token_family.clone(),
        );
        let tokens = GRANT_LABELS
            .iter()
            .map(|&grant| {
                OUTCOMES
                    .iter()
                    .map(|&outcome| {
                        token_family.get_or_create(&TokenLabels { grant, outcome }).clone()
                    })
                    .collect()
            })
            .collect();
        let duration_family = Family::<GrantLabels, Histogram>::default();
        registry.register_with_unit(
            "token_request_duration",
            "Token requests from parsed body to answer, by grant",
            Unit::Seconds,
            duration_family.clone(),
        );
        let token_durations = GRANT_LABELS
            .iter()
            .map(|&grant| duration_family.get_or_create(&GrantLabels { grant }).clone())
            .collect();
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern and status",
            http.clone(),
        );
        let failed_auth = Family::<MethodLabels, Counter>::default();
        registry.register(
            "failed_authentications",
            "Failed authentications by method",
            failed_auth.clone(),
        );
        let signing_keys = Family::<StateLabels, Gauge>::default();
        registry.register("signing_keys", "Signing keys by state", signing_keys.clone());
        registry.register_with_unit(
            "store_commit_duration",
            "Durable store commits (grant batches and registry changes)",
            Unit::Seconds,
            // The grant committer's and the registry's commits share one `Timings`.
            Histogram(commits),
        );
        let registered = Family::<KindLabels, Gauge>::default();
        registry.register("registered", "Records by kind", registered.clone());
        let jwks_failures = Family::<IssuerLabels, Counter>::default();
        registry.register(
            "federation_jwks_failures",
            "Failed fetches of a trusted issuer's JWK Set (the last good set is kept)",
            jwks_failures.clone(),
        );
        let change_lag = shared.then(|| {
            let gauge = Gauge::<f64, AtomicU64>::default();
            registry.register_with_unit(
                "change_lag",
                "From the write of the newest change this node applied to its being in force here",
                Unit::Seconds,
                gauge.clone(),
            );
            gauge
        });
        Metrics {
            registry,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            tokens,
            token_durations,
            http,
            failed_auth,
            signing_keys,
            registered,
            jwks_failures,
            change_lag,
        }
    }

    /// One token request: its grant ([`grant_index`]), how it ended (`Ok(true)`: a token
    /// handed out again), and how long it took.
    pub fn token(
        &self,
        grant: usize,
        answer: Result<bool, &OAuthError>,
        took: std::time::Duration,
    ) {
        let outcome = match answer {
            Ok(false) => "issued",
            Ok(true) | Err(OAuthError::RefreshReused) => "reused",
            Err(OAuthError::QuotaExceeded { .. }) => "quota",
            Err(e) => e.code(),
        };
        let outcome = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(OUTCOMES.len() - 1);
        let grant = grant.min(GRANT_LABELS.len() - 1);
        self.tokens[grant][outcome].inc();
        self.token_durations[grant].0.record(took);
    }

    /// One answered request. Each worker thread keeps the counters it has used, so the
    /// common case is a lookup in a map of its own: no lock, no allocation.
    pub fn http_request(&self, route: &str, status: u16) {
        thread_local! {
            static SEEN: std::cell::RefCell<(u64, RouteCounters)> =
                std::cell::RefCell::new((u64::MAX, HashMap::new()));
        }
        SEEN.with_borrow_mut(|(owner, seen)| {
            if *owner != self.id {
                seen.clear();
                *owner = self.id;
            }
            if let Some(counter) = seen.get(route).and_then(|by_status| by_status.get(&status)) {
                counter.inc();
                return;
            }
            let counter =
                self.http.get_or_create(&HttpLabels { route: route.to_string(), status }).clone();
            counter.inc();
            seen.entry(route.to_string()).or_default().insert(status, counter);
        });
    }

    pub fn failed_authentication(&self, method: AuthMethod) {
        self.failed_auth.get_or_create(&MethodLabels { method: method.label() }).inc();
    }
}

routes! {
    "/metrics" => { get: scrape },
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "operations_scrape",
    description = "Prometheus metrics in the OpenMetrics text format.",
    responses(
        (status = 200, description = "Done.", body = String, content_type = "application/openmetrics-text"),
        (status = "default", description = "An error, in the envelope docs/api.md gives each area.", body = Object, content_type = "application/json"),
    ),
)]
async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &state.metrics;
    if let Ok(keys) = state.keyring.list().await {
        for (label, kind) in [
            ("next", KeyState::Next),
            ("current", KeyState::Current),
            ("retiring", KeyState::Retiring),
        ] {
            let n = keys.iter().filter(|k| k.state == kind).count();
            metrics.signing_keys.get_or_create(&StateLabels { state: label }).set(gauge(n));
        }
    }
    if let Ok(counts) = state.registry.counts().await {
        for (kind, n) in [
            ("app", counts.apps),
            ("user", counts.users),
            ("service", counts.services),
            ("resource", counts.resources),
            ("issuer", counts.issuers),
        ] {
            metrics.registered.get_or_create(&KindLabels { kind }).set(gauge(n));
        }
    }
    for trusted in state.issuer.federation().all() {
        let counted = trusted.failures.load(std::sync::atomic::Ordering::Relaxed);
        let labels = IssuerLabels { issuer: trusted.rules.issuer.clone() };
        let counter = metrics.jwks_failures.get_or_create(&labels);
        counter.inc_by(counted.saturating_sub(counter.get()));
    }
    if let (Some(lag), Some(gauge)) = (state.store_health.change_lag(), &metrics.change_lag) {
        gauge.set(lag.as_secs_f64());
    }
    let mut body = String::new();
    // unwrap: writing into a String cannot fail, and every metric here encodes
    prometheus_client::encoding::text::encode(&mut body, &metrics.registry)
        .expect("metrics encode");
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body)
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AuthMethod {
    /// The method a token, introspection or revocation request used, if it named one.
    pub fn of(credentials: &tessera_core::oauth::request::Credentials) -> Option<AuthMethod> {
        use tessera_core::oauth::request::Credentials;
        match credentials {
            Credentials::Basic { .. } => Some(AuthMethod::ClientSecretBasic),
            Credentials::Post { .. } => Some(AuthMethod::ClientSecretPost),
            Credentials::Assertion { .. } => Some(AuthMethod::PrivateKeyJwt),
            Credentials::None | Credentials::ClientId(_) => None,
        }
    }
}
