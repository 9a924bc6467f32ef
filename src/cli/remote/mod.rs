//! The CLI against a running server: `--server URL` (`TESSERA_SERVER`) with an admin app's
//! `TESSERA_CLIENT_ID` and `TESSERA_CLIENT_SECRET`. Each command gets a token by
//! `client_credentials` and calls the admin API, so every rule the server applies to its
//! callers applies to the CLI too; the answer is printed as a table or as the server's JSON.

mod records;
mod table;

pub use records::{
    APPS, AuditArgs, ISSUERS, IssuerWrite, KEYS, RESOURCES, ROLES, Records, ResourceWrite,
    RoleWrite, SCOPES, SERVICES, ScopeWrite, ServiceWrite, USERS, UserWrite, call, fields,
    run_audit, run_records, segment, token_get,
};
pub use table::Output;

use clap::Args;
use serde_json::Value;

/// Where a command is sent, and how its answer is shown.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// A running server's URL (https://, or http:// on a loopback host); the client is
    /// TESSERA_CLIENT_ID with TESSERA_CLIENT_SECRET.
    #[arg(long, env = "TESSERA_SERVER")]
    pub server: Option<String>,
    /// `table` for people, `json` for scripts (the default when stdout is not a terminal).
    #[arg(long, value_enum)]
    pub output: Option<Output>,
}

impl ServerArgs {
    pub fn output(&self) -> Output {
        self.output.unwrap_or_else(Output::for_stdout)
    }
}

/// Why a call to the server did not succeed; one line each.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("this command needs --server URL (or TESSERA_SERVER)")]
    NoServer,
    #[error("give --server or --data-dir, not both")]
    BothTargets,
    #[error("--server {server}: {refusal}")]
    BadServer { server: String, refusal: tessera_core::auth::url_rule::UrlRefusal },
    #[error("set TESSERA_CLIENT_ID and TESSERA_CLIENT_SECRET to an app's credentials")]
    NoCredentials,
    #[error("cannot reach {url}: {error}")]
    Unreachable { url: String, error: ureq::Error },
    /// The server's own answer to a refused call: its status, error code and message.
    #[error("{status} {error}: {message}")]
    Refused { status: u16, error: String, message: String },
    #[error("{url} answered {status} without a JSON body")]
    NotJson { url: String, status: u16 },
}

/// A session with one server: its base URL and an access token for the admin API.
pub struct Remote {
    base: url::Url,
    agent: ureq::Agent,
    token: String,
}

impl Remote {
    /// Checks the URL and takes a token as the app in `TESSERA_CLIENT_ID`.
    pub fn connect(server: &str) -> Result<Remote, RemoteError> {
        let mut remote = Remote::anonymous(server)?;
        let (id, secret) = credentials()?;
        let answer = remote.token(&id, &secret, None)?;
        remote.token = answer["access_token"].as_str().unwrap_or_default().to_string();
        Ok(remote)
    }

    /// A session with no token yet (`token get` asks for one itself).
    pub fn anonymous(server: &str) -> Result<Remote, RemoteError> {
        // Credentials travel to this URL: plain HTTP only where nobody else can listen.
        let base = tessera_core::auth::url_rule::check(server)
            .map_err(|refusal| RemoteError::BadServer { server: server.into(), refusal })?;
        let config = ureq::Agent::config_builder().http_status_as_error(false).build();
        Ok(Remote { base, agent: config.into(), token: String::new() })
    }

    /// `client_credentials` at the token endpoint; the token response.
    pub fn token(&self, id: &str, secret: &str, scope: Option<&str>) -> Result<Value, RemoteError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let url = self.url("/oauth2/v1/token");
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", encode(id), encode(secret)),
        );
        let res = self
            .agent
            .post(&url)
            .header("authorization", &format!("Basic {basic}"))
            .send_form(form)
            .map_err(|error| RemoteError::Unreachable { url: url.clone(), error })?;
        answer(&url, res)
    }

    /// Calls the admin API; the answer's JSON (`null` for an empty `204`).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RemoteError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        self.send(method, path, "application/json", body)
    }

    /// Calls the admin API with a body of another type; the answer's JSON.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: String,
    ) -> Result<Value, RemoteError> {
        let url = self.url(path);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", content_type);
        let request = request.body(body).map_err(|e| RemoteError::Unreachable {
            url: url.clone(),
            error: ureq::Error::Http(e),
        })?;
        let res = self
            .agent
            .run(request)
            .map_err(|error| RemoteError::Unreachable { url: url.clone(), error })?;
        answer(&url, res)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before they are joined.
fn encode(part: &str) -> String {
    form_urlencoded::byte_serialize(part.as_bytes()).collect()
}

fn credentials() -> Result<(String, String), RemoteError> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (var("TESSERA_CLIENT_ID"), var("TESSERA_CLIENT_SECRET")) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => Err(RemoteError::NoCredentials),
    }
}

/// A 2xx answer's JSON, or the server's refusal in its own words.
fn answer(url: &str, mut res: ureq::http::Response<ureq::Body>) -> Result<Value, RemoteError> {
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    if text.is_empty() && (200..300).contains(&status) {
        return Ok(Value::Null);
    }
    let json: Value = serde_json::from_str(&text)
        .map_err(|_| RemoteError::NotJson { url: url.to_string(), status })?;
    if (200..300).contains(&status) {
        return Ok(json);
    }
    let error = json["error"].as_str().unwrap_or("error").to_string();
    let message =
        json["message"].as_str().or(json["error_description"].as_str()).unwrap_or("").to_string();
    Err(RemoteError::Refused { status, error, message })
}
