//! The admin API's records from the command line: each kind lists, gets and deletes the same
//! way (`Records`), and writes with flags of its own (`ScopeWrite`, `RoleWrite`, …).

use clap::{Args, Subcommand};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::table::{self, Columns, Output};
use super::{Remote, RemoteError, ServerArgs};

/// A kind of record as the admin API serves it.
pub struct Kind {
    pub path: &'static str,
    /// The list's key (`apps`) and a record's (`app`).
    pub many: &'static str,
    pub one: &'static str,
    pub columns: Columns,
}

pub const APPS: Kind = Kind {
    path: "/api/v1/apps",
    many: "apps",
    one: "app",
    columns: &[
        ("ID", "id"),
        ("CLIENT ID", "clientId"),
        ("NAME", "name"),
        ("SCOPES", "scopes"),
        ("ACTIVE", "isActive"),
    ],
};
pub const SCOPES: Kind = Kind {
    path: "/api/v1/scopes",
    many: "scopes",
    one: "scope",
    columns: &[("ID", "id"), ("NAME", "name"), ("BUILT-IN", "builtIn"), ("NOTE", "note")],
};
pub const ROLES: Kind = Kind {
    path: "/api/v1/roles",
    many: "roles",
    one: "role",
    columns: &[
        ("ID", "id"),
        ("NAME", "name"),
        ("SCOPES", "scopes"),
        ("PRIVILEGED", "privileged"),
        ("BUILT-IN", "builtIn"),
    ],
};
pub const USERS: Kind = Kind {
    path: "/api/v1/users",
    many: "users",
    one: "user",
    columns: &[
        ("AUTH ID", "authId"),
        ("USERNAME", "username"),
        ("EMAIL", "email"),
        ("ROLES", "roles"),
        ("ACTIVE", "isActive"),
    ],
};
pub const SERVICES: Kind = Kind {
    path: "/api/v1/services",
    many: "services",
    one: "service",
    columns: &[("ID", "id"), ("NAME", "name"), ("DESCRIPTION", "description")],
};
pub const RESOURCES: Kind = Kind {
    path: "/api/v1/resources",
    many: "resources",
    one: "resource",
    columns: &[
        ("ID", "id"),
        ("IDENTIFIER", "identifier"),
        ("NAME", "name"),
        ("SCOPES", "scopes"),
        ("TTL", "accessTokenTtlSecs"),
    ],
};
pub const ISSUERS: Kind = Kind {
    path: "/api/v1/issuers",
    many: "issuers",
    one: "issuer",
    columns: &[
        ("ID", "id"),
        ("ISSUER", "issuer"),
        ("ALGORITHMS", "algorithms"),
        ("KEYS", "keys"),
        ("MAX AGE", "maxTokenAgeSecs"),
    ],
};
pub const KEYS: Kind = Kind {
    path: "/api/v1/keys",
    many: "keys",
    one: "keys",
    columns: &[
        ("KID", "kid"),
        ("STATE", "state"),
        ("PUBLISHED", "publishedAt"),
        ("REMOVE AFTER", "removeAfter"),
    ],
};
const AUDIT: Kind = Kind {
    path: "/api/v1/audit",
    many: "events",
    one: "event",
    columns: &[
        ("ID", "id"),
        ("AT", "at"),
        ("ACTOR", "actor"),
        ("ACTION", "action"),
        ("TARGET", "target"),
        ("OUTCOME", "outcome"),
        ("REASON", "reason"),
    ],
};

/// What every kind does alike, and its own writes.
#[derive(Subcommand, Debug)]
pub enum Records<W: Subcommand> {
    /// List them (the first 1000).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one.
    Get {
        // Ids are base64url, so one may begin with `-`: still an id, not a flag.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete one.
    Delete {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    #[command(flatten)]
    Write(W),
}

/// A kind's writes: the request each makes.
pub trait Write {
    fn server(&self) -> &ServerArgs;
    /// (method, path under the kind's, body).
    fn request(&self) -> (&'static str, String, Option<Value>);
}

#[derive(Subcommand, Debug)]
pub enum ScopeWrite {
    /// Create a scope.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Rename a scope or change its note (apps and roles holding it follow a rename).
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Write for ScopeWrite {
    fn server(&self) -> &ServerArgs {
        match self {
            ScopeWrite::Create { server, .. } | ScopeWrite::Update { server, .. } => server,
        }
    }

    fn request(&self) -> (&'static str, String, Option<Value>) {
        match self {
            ScopeWrite::Create { name, note, .. } => (
                "POST",
                String::new(),
                Some(fields([("name", json!(name)), ("note", json!(note))])),
            ),
            ScopeWrite::Update { id, name, note, .. } => {
                ("PUT", segment(id), Some(fields([("name", json!(name)), ("note", json!(note))])))
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ResourceWrite {
    /// Register an API that accepts Tessera's tokens (RFC 8707).
    Create {
        /// The `aud` of its tokens: an absolute URI without a fragment.
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        name: String,
        /// A scope apps may be granted for it; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Token lifetime for it, in seconds (wins over the app's).
        #[arg(long)]
        ttl: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Change a resource; a new identifier or fewer scopes reach every app's grant.
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        identifier: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Replaces its scopes.
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
        #[arg(long)]
        ttl: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Write for ResourceWrite {
    fn server(&self) -> &ServerArgs {
        match self {
            ResourceWrite::Create { server, .. } | ResourceWrite::Update { server, .. } => server,
        }
    }

    fn request(&self) -> (&'static str, String, Option<Value>) {
        let body = |identifier: Value, name: Value, scopes: Value, ttl: &Option<u64>| {
            fields([
                ("identifier", identifier),
                ("name", name),
                ("scopes", scopes),
                ("accessTokenTtlSecs", json!(ttl)),
            ])
        };
        match self {
            ResourceWrite::Create { identifier, name, scopes, ttl, .. } => (
                "POST",
                String::new(),
                Some(body(json!(identifier), json!(name), json!(scopes), ttl)),
            ),
            ResourceWrite::Update { id, identifier, name, scopes, ttl, .. } => {
                ("PUT", segment(id), Some(body(json!(identifier), json!(name), json!(scopes), ttl)))
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum IssuerWrite {
    /// Trust an external token issuer (workload identity federation).
    Create {
        /// The exact `iss` of its tokens.
        #[arg(long)]
        issuer: String,
        /// Where its JWK Set is; without this and --jwks, its OIDC discovery document says.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Its JWK Set as JSON, for an issuer the server cannot reach
        /// (`--jwks "$(kubectl get --raw /openid/v1/jwks)"`).
        #[arg(long)]
        jwks: Option<String>,
        /// RS256, ES256 or EdDSA; repeat for several (RS256 when none).
        #[arg(long = "algorithm")]
        algorithms: Vec<String>,
        /// The oldest a token may be, in seconds.
        #[arg(long)]
        max_token_age: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Write for IssuerWrite {
    fn server(&self) -> &ServerArgs {
        match self {
            IssuerWrite::Create { server, .. } => server,
        }
    }

    fn request(&self) -> (&'static str, String, Option<Value>) {
        let IssuerWrite::Create { issuer, jwks_uri, jwks, algorithms, max_token_age, .. } = self;
        // Sent as the object it is; text that is not JSON goes as text, for the server to refuse.
        let jwks = jwks.as_deref().map(|t| serde_json::from_str(t).unwrap_or_else(|_| json!(t)));
        let algorithms = (!algorithms.is_empty()).then_some(algorithms);
        let body = fields([
            ("issuer", json!(issuer)),
            ("jwksUri", json!(jwks_uri)),
            ("jwks", json!(jwks)),
            ("algorithms", json!(algorithms)),
            ("maxTokenAgeSecs", json!(max_token_age)),
        ]);
        ("POST", String::new(), Some(body))
    }
}

#[derive(Subcommand, Debug)]
pub enum RoleWrite {
    /// Create a role.
    Create {
        #[arg(long)]
        name: String,
        /// A scope the role gives; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        note: Option<String>,
        /// Only root may assign a privileged role.
        #[arg(long)]
        privileged: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Change a role; `--scope` replaces its scopes.
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        privileged: Option<bool>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Write for RoleWrite {
    fn server(&self) -> &ServerArgs {
        match self {
            RoleWrite::Create { server, .. } | RoleWrite::Update { server, .. } => server,
        }
    }

    fn request(&self) -> (&'static str, String, Option<Value>) {
        match self {
            RoleWrite::Create { name, scopes, note, privileged, .. } => (
                "POST",
                String::new(),
                Some(role(json!(name), json!(scopes), note, json!(privileged))),
            ),
            RoleWrite::Update { id, name, scopes, note, privileged, .. } => (
                "PUT",
                segment(id),
                Some(role(json!(name), json!(scopes), note, json!(privileged))),
            ),
        }
    }
}

fn role(name: Value, scopes: Value, note: &Option<String>, privileged: Value) -> Value {
    fields([("name", name), ("scopes", scopes), ("note", json!(note)), ("privileged", privileged)])
}

#[derive(Subcommand, Debug)]
pub enum UserWrite {
    /// Change a user; `--role` replaces their roles.
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long = "role")]
        roles: Option<Vec<String>>,
        #[arg(long)]
        active: Option<bool>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Invite a user by email; prints the one-time invitation token.
    Invite {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long = "role")]
        roles: Option<Vec<String>>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Write for UserWrite {
    fn server(&self) -> &ServerArgs {
        match self {
            UserWrite::Update { server, .. } | UserWrite::Invite { server, .. } => server,
        }
    }

    fn request(&self) -> (&'static str, String, Option<Value>) {
        match self {
            UserWrite::Update { id, roles, active, first_name, last_name, .. } => {
                let body = fields([
                    ("roles", json!(roles)),
                    ("isActive", json!(active)),
                    ("firstName", json!(first_name)),
                    ("lastName", json!(last_name)),
                ]);
                ("PUT", segment(id), Some(body))
            }
            UserWrite::Invite { email, username, roles, .. } => {
                let body = fields([
                    ("email", json!(email)),
                    ("username", json!(username)),
                    ("roles", json!(roles)),
                ]);
                ("POST", "/invitations".into(), Some(body))
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ServiceWrite {
    /// Create a service; its first API key is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Change a service.
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Issue another API key; printed once.
    IssueKey {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke an API key.
    RevokeKey {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(allow_hyphen_values = true)]
        key_id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Write for ServiceWrite {
    fn server(&self) -> &ServerArgs {
        match self {
            ServiceWrite::Create { server, .. }
            | ServiceWrite::Update { server, .. }
            | ServiceWrite::IssueKey { server, .. }
            | ServiceWrite::RevokeKey { server, .. } => server,
        }
    }

    fn request(&self) -> (&'static str, String, Option<Value>) {
        match self {
            ServiceWrite::Create { name, description, .. } => {
                let body = fields([("name", json!(name)), ("description", json!(description))]);
                ("POST", String::new(), Some(body))
            }
            ServiceWrite::Update { id, name, description, .. } => {
                let body = fields([("name", json!(name)), ("description", json!(description))]);
                ("PUT", segment(id), Some(body))
            }
            ServiceWrite::IssueKey { id, .. } => {
                ("POST", format!("{}/api-keys", segment(id)), None)
            }
            ServiceWrite::RevokeKey { id, key_id, .. } => {
                ("DELETE", format!("{}/api-keys{}", segment(id), segment(key_id)), None)
            }
        }
    }
}

/// `tessera audit`: a page of the audit log.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Events after this cursor (an event's id, or the `next` of a page).
    #[arg(long)]
    after: Option<String>,
    #[arg(long, default_value_t = 100)]
    page_size: usize,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs one of a kind's commands against the server and prints its answer.
pub fn run_records<W: Subcommand + Write>(
    kind: &Kind,
    command: &Records<W>,
) -> Result<String, RemoteError> {
    let (server, method, path, body) = match command {
        Records::List { server } => (server, "GET", "?pageSize=1000".to_string(), None),
        Records::Get { id, server } => (server, "GET", segment(id), None),
        Records::Delete { id, server } => (server, "DELETE", segment(id), None),
        Records::Write(write) => {
            let (method, path, body) = write.request();
            (write.server(), method, path, body)
        }
    };
    call(kind, server, method, &path, body.as_ref())
}

/// Sends one request under `kind` and renders the answer.
pub fn call(
    kind: &Kind,
    server: &ServerArgs,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<String, RemoteError> {
    let remote = Remote::connect(server.server.as_deref().ok_or(RemoteError::NoServer)?)?;
    let answer = remote.call(method, &format!("{}{path}", kind.path), body)?;
    Ok(render(kind, server.output(), &answer))
}

pub fn run_audit(args: &AuditArgs) -> Result<String, RemoteError> {
    let mut path = format!("?pageSize={}", args.page_size);
    if let Some(after) = &args.after {
        path.push_str(&format!("&after={}", utf8_percent_encode(after, NON_ALPHANUMERIC)));
    }
    call(&AUDIT, &args.server, "GET", &path, None)
}

/// The server's JSON as it came, or: a list as rows, a record as fields (with what came beside
/// it, such as a secret shown once), a deletion as one line.
pub fn render(kind: &Kind, output: Output, answer: &Value) -> String {
    if output == Output::Json {
        return if answer.is_null() { "{}".into() } else { format!("{answer:#}") };
    }
    if answer.is_null() {
        return "done\n".into();
    }
    if let Some(items) = answer[kind.many].as_array() {
        let mut text = table::rows(items, kind.columns);
        if let Some(next) = answer["next"].as_str() {
            text.push_str(&format!("next: {next}\n"));
        }
        return text;
    }
    let mut shown = answer[kind.one].clone();
    if let (Value::Object(fields), Value::Object(beside)) = (&mut shown, answer) {
        for (k, v) in beside.iter().filter(|(k, _)| *k != kind.one) {
            fields.insert(k.clone(), v.clone());
        }
    }
    table::record(if shown.is_null() { answer } else { &shown })
}

/// "/id" with the id percent-encoded: an id from a user may hold anything.
pub fn segment(id: &str) -> String {
    format!("/{}", utf8_percent_encode(id, NON_ALPHANUMERIC))
}

/// A JSON body of the fields that were given.
pub fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let map: Map<String, Value> =
        pairs.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.to_string(), v)).collect();
    Value::Object(map)
}

/// `tessera token get`: `client_credentials` as `TESSERA_CLIENT_ID`.
pub fn token_get(scope: Option<&str>, server: &ServerArgs) -> Result<String, RemoteError> {
    let remote = Remote::anonymous(server.server.as_deref().ok_or(RemoteError::NoServer)?)?;
    let (id, secret) = super::credentials()?;
    let answer = remote.token(&id, &secret, scope)?;
    Ok(match server.output() {
        Output::Json => format!("{answer:#}"),
        Output::Table => answer["access_token"].as_str().unwrap_or_default().to_string(),
    })
}
