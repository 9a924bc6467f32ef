//! Server configuration: flags and env vars (docs/api.md, Running) over an optional TOML file over
//! defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The TOML file's shape. Unknown keys are an error, so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub store: Option<String>,
    pub issuer: Option<String>,
    pub default_audience: Option<String>,
    pub access_token_ttl: Option<Duration>,
    pub max_access_token_ttl: Option<Duration>,
    pub body_limit: Option<usize>,
    pub workers: Option<usize>,
    pub refresh_token_ttl: Option<Duration>,
    pub max_assertion_lifetime: Option<Duration>,
    pub grant_cleanup_every: Option<Duration>,
    pub audit_retention: Option<Duration>,
    pub default_role: Option<String>,
    pub invitation_ttl: Option<Duration>,
    pub allow_user_credentials: Option<bool>,
    pub password_queue: Option<usize>,
    pub strict_delegation: Option<bool>,
    pub dpop_proofs: Option<usize>,
    pub max_delegation_depth: Option<usize>,
    pub token_reuse: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub tls_client_cert_header: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    #[serde(default)]
    pub keys: KeysFile,
    #[serde(default)]
    pub rate_limit: RateLimitFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    pub rotate_every: Option<Duration>,
    pub jwks_max_age: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub window: Option<Duration>,
    pub failures_per_client: Option<u32>,
    pub failures_per_address: Option<u32>,
}

/// Seconds, written as a number or as `"30s"`, `"15m"`, `"12h"`, `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub u64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(de)? {
            Raw::Secs(s) => Ok(Duration(s)),
            Raw::Text(t) => parse_duration(&t).map(Duration).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration setting that is neither a number of seconds nor one with a known unit; it reaches
/// the operator inside the TOML error, which names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a duration (e.g. 90, \"30s\", \"15m\", \"12h\", \"7d\")")]
pub struct DurationError(pub String);

pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let bad = || DurationError(text.to_string());
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

/// Why a configuration is refused. Each message names the setting to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", .path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    /// Also an unknown key or a bad duration: serde reports them, with the line, as TOML errors.
    #[error("config {}: {source}", .path.display())]
    BadToml { path: PathBuf, source: toml::de::Error },
    /// A setting outside its bounds. `field` is the setting at fault; `rule` is the whole
    /// sentence shown, which names together the settings that are checked together.
    #[error("{rule}")]
    OutOfRange { field: &'static str, rule: &'static str },
    #[error(
        "issuer '{0}' must be an absolute https URL (http only on a loopback host) without a \
         query or fragment"
    )]
    BadIssuer(String),
    #[error("issuer '{0}' must not contain a user name or password")]
    IssuerCredentials(String),
    #[error("trusted_proxies: '{0}' is not an IP address or CIDR block (e.g. 10.0.0.0/8)")]
    BadProxy(String),
    #[error(
        "tls_cert and tls_key go together, and tls_client_ca needs them or tls_client_cert_header"
    )]
    TlsIncomplete,
    #[error("tls_client_cert_header '{0}' is not a header name")]
    BadCertHeader(String),
}

/// A database URL. Its password never reaches a log: `Debug` shows the URL without it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(pub String);

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                write!(f, "{url}")
            }
            Err(_) => f.write_str("<unparsable store URL>"),
        }
    }
}

impl StoreUrl {
    fn check(&self) -> Result<(), ConfigError> {
        let ok = url::Url::parse(&self.0)
            .is_ok_and(|u| matches!(u.scheme(), "postgres" | "postgresql") && u.host().is_some());
        if ok {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                field: "store",
                rule: "store must be a PostgreSQL URL, postgres://user@host:port/database",
            })
        }
    }
}

/// The settled configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    /// Where `/metrics` is answered instead of `listen`, when set (and then only there).
    pub metrics_listen: Option<String>,
    pub data_dir: PathBuf,
    /// A shared PostgreSQL store (`postgres://…`) instead of the embedded one in `data_dir`.
    pub store: Option<StoreUrl>,
    /// `None` means `http://<bound address>`, known only after binding.
    pub issuer: Option<String>,
    pub default_audience: Option<String>,
    pub access_token_ttl: u64,
    pub max_access_token_ttl: u64,
    pub body_limit: usize,
    pub workers: Option<usize>,
    pub refresh_token_ttl: u64,
    pub max_assertion_lifetime: u64,
    pub grant_cleanup_every: u64,
    /// How long audit events are kept, in seconds.
    pub audit_retention: u64,
    /// The role new users get (Fusio); never a privileged one.
    pub default_role: String,
    pub invitation_ttl: u64,
    /// `client_credentials` with a user's `username:password` (Fusio); off by default.
    pub allow_user_credentials: bool,
    /// Password checks that may wait for the Argon2id threads; past it, `503`.
    pub password_queue: usize,
    /// A caller without `root` grants (to apps and roles) only scopes it holds; off by default,
    /// so `write_app` and `write_role` can hand out any scope but `root`.
    pub strict_delegation: bool,
    /// DPoP proofs a node remembers for the `jti` replay check (RFC 9449 §11.1), per two
    /// minutes; past it, proofs are answered `503` until the oldest are forgotten.
    pub dpop_proofs: usize,
    /// The most actors a token made by token exchange may name (RFC 8693 `act`).
    pub max_delegation_depth: usize,
    /// Token reuse for every app that does not set `tokenReuse` (docs/api.md, Token reuse).
    pub token_reuse: bool,
    /// HTTPS: the server's certificate chain and private key, PEM.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Ask for client certificates (RFC 8705); those chaining to these CAs may authenticate
    /// `tls_client_auth` apps.
    pub tls_client_ca: Option<PathBuf>,
    /// Behind a TLS-terminating proxy: the header carrying the client certificate.
    pub tls_client_cert_header: Option<String>,
    /// The proxies that header is believed from (addresses or CIDR blocks); from any other
    /// peer it is ignored.
    pub trusted_proxies: Vec<crate::tls::Cidr>,
    pub rotate_every: u64,
    pub jwks_max_age: u64,
    pub rate_window: u64,
    pub failures_per_client: u32,
    pub failures_per_address: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            metrics_listen: None,
            data_dir: PathBuf::from("./tessera-data"),
            store: None,
            issuer: None,
            default_audience: None,
            access_token_ttl: 3600,
            max_access_token_ttl: 86400,
            body_limit: 64 * 1024,
            workers: None,
            refresh_token_ttl: 30 * 86400,
            max_assertion_lifetime: 300,
            grant_cleanup_every: 60,
            audit_retention: 90 * 86400,
            default_role: "consumer".into(),
            invitation_ttl: 7 * 86400,
            allow_user_credentials: false,
            password_queue: tessera_core::auth::password::QUEUE,
            strict_delegation: false,
            // ≈ 8,700 proofs a second, and at most ≈ 50 MB for the two generations kept.
            dpop_proofs: 1 << 20,
            max_delegation_depth: 4,
            token_reuse: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_client_cert_header: None,
            trusted_proxies: Vec::new(),
            rotate_every: 7 * 86400,
            jwks_max_age: 600,
            rate_window: 60,
            failures_per_client: 20,
            failures_per_address: 100,
        }
    }
}

impl Config {
    /// The rules the registry applies to every change, for a server whose issuer is
    /// `issuer_url`.
    pub fn app_limits(&self, issuer_url: &str) -> tessera_core::registry::AppLimits {
        let default_audience = self.default_audience.clone().unwrap_or_else(|| issuer_url.into());
        tessera_core::registry::AppLimits {
            max_token_ttl: self.max_access_token_ttl,
            strict_delegation: self.strict_delegation,
            default_role: self.default_role.clone(),
            own_audiences: vec![issuer_url.to_string(), default_audience],
        }
    }

    /// The grant store's sweep: its period and the audit log's retention.
    pub fn sweep(&self) -> tessera_core::grants::Sweep {
        tessera_core::grants::Sweep {
            every: std::time::Duration::from_secs(self.grant_cleanup_every),
            audit_retention: std::time::Duration::from_secs(self.audit_retention),
        }
    }

    /// Applies a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Unreadable { path: path.into(), source })?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|source| ConfigError::BadToml { path: path.into(), source })?;
        let mut config = Config::default();
        config.apply(file)?;
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, file: FileConfig) -> Result<(), ConfigError> {
        let d = |v: Option<Duration>| v.map(|d| d.0);
        if let Some(v) = file.listen {
            self.listen = v;
        }
        if let Some(v) = file.data_dir {
            self.data_dir = v;
        }
        self.metrics_listen = file.metrics_listen.or(self.metrics_listen.take());
        if let Some(v) = file.store {
            self.store = Some(StoreUrl(v));
        }
        self.issuer =
            file.issuer.map(|i| i.trim_end_matches('/').to_string()).or(self.issuer.take());
        self.default_audience = file.default_audience.or(self.default_audience.take());
        self.access_token_ttl = d(file.access_token_ttl).unwrap_or(self.access_token_ttl);
        self.max_access_token_ttl =
            d(file.max_access_token_ttl).unwrap_or(self.max_access_token_ttl);
        self.body_limit = file.body_limit.unwrap_or(self.body_limit);
        self.workers = file.workers.or(self.workers);
        self.refresh_token_ttl = d(file.refresh_token_ttl).unwrap_or(self.refresh_token_ttl);
        self.max_assertion_lifetime =
            d(file.max_assertion_lifetime).unwrap_or(self.max_assertion_lifetime);
        self.grant_cleanup_every = d(file.grant_cleanup_every).unwrap_or(self.grant_cleanup_every);
        self.audit_retention = d(file.audit_retention).unwrap_or(self.audit_retention);
        if let Some(role) = file.default_role {
            self.default_role = role;
        }
        self.invitation_ttl = d(file.invitation_ttl).unwrap_or(self.invitation_ttl);
        self.allow_user_credentials =
            file.allow_user_credentials.unwrap_or(self.allow_user_credentials);
        self.password_queue = file.password_queue.unwrap_or(self.password_queue);
        self.strict_delegation = file.strict_delegation.unwrap_or(self.strict_delegation);
        self.dpop_proofs = file.dpop_proofs.unwrap_or(self.dpop_proofs);
        self.max_delegation_depth = file.max_delegation_depth.unwrap_or(self.max_delegation_depth);
        self.token_reuse = file.token_reuse.unwrap_or(self.token_reuse);
        self.tls_cert = file.tls_cert.or(self.tls_cert.take());
        self.tls_key = file.tls_key.or(self.tls_key.take());
        self.tls_client_ca = file.tls_client_ca.or(self.tls_client_ca.take());
        self.tls_client_cert_header =
            file.tls_client_cert_header.or(self.tls_client_cert_header.take());
        if let Some(proxies) = file.trusted_proxies {
            let parse = |p: &String| p.parse().map_err(|_| ConfigError::BadProxy(p.clone()));
            self.trusted_proxies = proxies.iter().map(parse).collect::<Result<_, _>>()?;
        }
        self.rotate_every = d(file.keys.rotate_every).unwrap_or(self.rotate_every);
        self.jwks_max_age = d(file.keys.jwks_max_age).unwrap_or(self.jwks_max_age);
        self.rate_window = d(file.rate_limit.window).unwrap_or(self.rate_window);
        self.failures_per_client =
            file.rate_limit.failures_per_client.unwrap_or(self.failures_per_client);
        self.failures_per_address =
            file.rate_limit.failures_per_address.unwrap_or(self.failures_per_address);
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(store) = &self.store {
            store.check()?;
        }
        let has_certificates = self.tls_cert.is_some() || self.tls_client_cert_header.is_some();
        if self.tls_cert.is_some() != self.tls_key.is_some()
            || (self.tls_client_ca.is_some() && !has_certificates)
        {
            return Err(ConfigError::TlsIncomplete);
        }
        if let Some(name) = &self.tls_client_cert_header
            && actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(ConfigError::BadCertHeader(name.clone()));
        }
        let out_of_range = |field, rule| Err(ConfigError::OutOfRange { field, rule });
        // Bounds keep every `now + duration` far from overflow and every window meaningful.
        const TEN_YEARS: u64 = 10 * 365 * 86400;
        if self.max_access_token_ttl > TEN_YEARS || self.rotate_every > TEN_YEARS {
            let field = if self.max_access_token_ttl > TEN_YEARS {
                "max_access_token_ttl"
            } else {
                "keys.rotate_every"
            };
            return out_of_range(
                field,
                "max_access_token_ttl and keys.rotate_every must be at most 10 years",
            );
        }
        if self.refresh_token_ttl == 0 || self.refresh_token_ttl > TEN_YEARS {
            return out_of_range(
                "refresh_token_ttl",
                "refresh_token_ttl must be between 1 second and 10 years",
            );
        }
        if self.max_assertion_lifetime == 0 || self.max_assertion_lifetime > 3600 {
            return out_of_range(
                "max_assertion_lifetime",
                "max_assertion_lifetime must be between 1 second and 1 hour",
            );
        }
        if self.grant_cleanup_every == 0 || self.grant_cleanup_every > 86400 {
            return out_of_range(
                "grant_cleanup_every",
                "grant_cleanup_every must be between 1 second and 1 day",
            );
        }
        if !(1..=16).contains(&self.max_delegation_depth) {
            return out_of_range(
                "max_delegation_depth",
                "max_delegation_depth must be between 1 and 16",
            );
        }
        if !(1024..=1 << 26).contains(&self.dpop_proofs) {
            return out_of_range("dpop_proofs", "dpop_proofs must be between 1024 and 67108864");
        }
        if self.audit_retention < 86400 || self.audit_retention > 86400 * 3660 {
            return out_of_range(
                "audit_retention",
                "audit_retention must be between 1 day and 10 years",
            );
        }
        if self.jwks_max_age > 86400 * 7 || self.rate_window > 86400 {
            let field = if self.jwks_max_age > 86400 * 7 {
                "keys.jwks_max_age"
            } else {
                "rate_limit.window"
            };
            return out_of_range(
                field,
                "keys.jwks_max_age must be at most 7 days and rate_limit.window at most 1 day",
            );
        }
        if self.access_token_ttl == 0 || self.access_token_ttl > self.max_access_token_ttl {
            return out_of_range(
                "access_token_ttl",
                "access_token_ttl must be between 1 second and max_access_token_ttl",
            );
        }
        if self.jwks_max_age == 0 || self.rotate_every <= self.jwks_max_age {
            return out_of_range(
                "keys.jwks_max_age",
                "keys.jwks_max_age must be positive and shorter than keys.rotate_every",
            );
        }
        // At least 2: new passwords may hold half of it, and logins the rest.
        if !(2..=100_000).contains(&self.password_queue) {
            return out_of_range("password_queue", "password_queue must be from 2 to 100000");
        }
        if self.body_limit < 1024 {
            return out_of_range("body_limit", "body_limit must be at least 1024 bytes");
        }
        if self.rate_window == 0 {
            return out_of_range("rate_limit.window", "rate_limit.window must be positive");
        }
        if let Some(issuer) = &self.issuer {
            check_issuer(issuer)?;
        }
        Ok(())
    }
}

/// The issuer is the base of every URL we publish (metadata, the hosted flow's redirects), so
/// it follows the URL rule, and has no query or fragment (RFC 8414 §2): the endpoint paths are
/// appended to it.
fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    use tessera_core::auth::url_rule::{UrlRefusal, check};
    let bad = || ConfigError::BadIssuer(issuer.to_string());
    if issuer.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    match check(issuer) {
        Ok(url) if url.query().is_none() => Ok(()),
        Err(UrlRefusal::Userinfo) => Err(ConfigError::IssuerCredentials(issuer.to_string())),
        Ok(_) | Err(UrlRefusal::NotHttps | UrlRefusal::Fragment) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_10_a_store_url_is_postgres_and_its_password_never_shows() {
        let url = StoreUrl("postgres://tessera:s3cret@db.internal:5432/tessera".into());
        assert!(url.check().is_ok());
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cret") && shown.contains("db.internal"), "{shown}");
        for bad in ["mysql://db/x", "postgres://", "db.internal:5432", ""] {
            assert!(StoreUrl(bad.into()).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_units() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("7 weeks").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn files_override_defaults_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "access_token_ttl = \"15m\"\nstrict_delegation = true\ntoken_reuse = true\n[keys]\njwks_max_age = 60\n",
        )
        .unwrap();
        let config = Config::from_file(&path).unwrap();
        assert!(config.strict_delegation);
        assert!(!Config::default().strict_delegation);
        assert!(config.token_reuse && !Config::default().token_reuse);
        assert_eq!(config.access_token_ttl, 900);
        assert_eq!(config.jwks_max_age, 60);
        std::fs::write(&path, "max_access_token_ttl = \"99999d\"\n").unwrap();
        assert!(Config::from_file(&path).is_err());
        std::fs::write(&path, "acess_token_ttl = 5\n").unwrap();
        assert!(matches!(Config::from_file(&path), Err(ConfigError::BadToml { .. })));
    }

    #[test]
    fn a_refusal_names_the_setting_at_fault() {
        let config = Config { rotate_every: 11 * 365 * 86400, ..Default::default() };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, ConfigError::OutOfRange { field: "keys.rotate_every", .. }));
        assert_eq!(
            err.to_string(),
            "max_access_token_ttl and keys.rotate_every must be at most 10 years"
        );
        let config = Config { rate_window: 0, ..Default::default() };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, ConfigError::OutOfRange { field: "rate_limit.window", .. }));
    }
}
