//! The provider's token endpoint (RFC 6749 §4.1.3 and §6), called with our client credentials.
//! One agent serves every call, so its connection pool and its settings are decided once.

use std::time::Duration;

use serde::Deserialize;
use tessera_storage::ProviderRecord;

/// A provider's token response (RFC 6749 §5.1), as much of it as a grant keeps.
#[derive(Deserialize)]
pub(crate) struct ProviderTokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Why a provider's token endpoint gave us no tokens.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No answer: name resolution, connection, TLS or the timeout.
    #[error("provider token request failed: {0}")]
    Transport(ureq::Error),
    /// An error status (RFC 6749 §5.2): a spent code, a revoked refresh token, wrong credentials.
    #[error("provider token endpoint answered HTTP {0}")]
    Status(u16),
    #[error("provider token answer unreadable: {0}")]
    Body(ureq::Error),
    #[error("provider token answer is not a token response: {0}")]
    Parse(#[from] serde_json::Error),
    /// The blocking call's thread panicked or the runtime shut down under it.
    #[error("provider token request cut short: {0}")]
    Aborted(#[from] tokio::task::JoinError),
}

impl ExchangeError {
    fn from_send(e: ureq::Error) -> ExchangeError {
        match e {
            ureq::Error::StatusCode(status) => ExchangeError::Status(status),
            other => ExchangeError::Transport(other),
        }
    }
}

/// The client of every provider's token endpoint. Cheap to clone: the agent is shared.
#[derive(Clone)]
pub(crate) struct ProviderClient {
    agent: ureq::Agent,
}

impl ProviderClient {
    pub(crate) fn new() -> ProviderClient {
        // No redirects: a 3xx would turn the POST (with our client secret) into a request to a URL
        // the URL rule never judged.
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .max_redirects(0)
            .build()
            .into();
        ProviderClient { agent }
    }

    /// RFC 6749 §4.1.3 at the provider: the code for tokens.
    pub(crate) async fn exchange(
        &self,
        provider: &ProviderRecord,
        code: &str,
        redirect_uri: &str,
    ) -> Result<ProviderTokenAnswer, ExchangeError> {
        let params =
            [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        self.token_request(provider, &params).await
    }

    /// RFC 6749 §6 at the provider: a refresh token for new tokens.
    pub(crate) async fn refresh(
        &self,
        provider: &ProviderRecord,
        refresh_token: &str,
    ) -> Result<ProviderTokenAnswer, ExchangeError> {
        let params = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        self.token_request(provider, &params).await
    }

    /// A form POST to the provider's token URL, client authenticated by secret in the body
    /// (RFC 6749 §2.3.1). Blocking I/O, so on the blocking pool: never on an HTTP worker.
    async fn token_request(
        &self,
        provider: &ProviderRecord,
        params: &[(&str, &str)],
    ) -> Result<ProviderTokenAnswer, ExchangeError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let body = form
            .append_pair("client_id", &provider.client_id)
            .append_pair("client_secret", &provider.client_secret)
            .finish();
        let agent = self.agent.clone();
        let url = provider.token_url.clone();
        tokio::task::spawn_blocking(move || post(&agent, &url, body)).await?
    }
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    body: String,
) -> Result<ProviderTokenAnswer, ExchangeError> {
    let mut res = agent
        .post(url)
        .header("accept", "application/json")
        .content_type("application/x-www-form-urlencoded")
        .send(body)
        .map_err(ExchangeError::from_send)?;
    let text = res.body_mut().read_to_string().map_err(ExchangeError::Body)?;
    parse_answer(&text)
}

fn parse_answer(text: &str) -> Result<ProviderTokenAnswer, ExchangeError> {
    Ok(serde_json::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_answer_keeps_its_tokens_and_lifetime() {
        let text = r#"{"access_token":"at","refresh_token":"rt","expires_in":3600,"token_type":"bearer","scope":"a b"}"#;
        let answer = parse_answer(text).unwrap();
        assert_eq!(answer.access_token, "at");
        assert_eq!(answer.refresh_token.as_deref(), Some("rt"));
        assert_eq!(answer.expires_in, Some(3600));
    }

    #[test]
    fn refresh_token_and_lifetime_are_optional() {
        let answer = parse_answer(r#"{"access_token":"at","token_type":"bearer"}"#).unwrap();
        assert_eq!(answer.access_token, "at");
        assert!(answer.refresh_token.is_none() && answer.expires_in.is_none());
    }

    #[test]
    fn an_answer_without_an_access_token_is_a_parse_error() {
        for text in
            [r#"{"error":"invalid_grant"}"#, "<html>moved</html>", "", r#"{"access_token":7}"#]
        {
            assert!(matches!(parse_answer(text), Err(ExchangeError::Parse(_))), "{text}");
        }
    }

    #[test]
    fn an_error_status_is_told_apart_from_a_failed_transport() {
        assert!(matches!(
            ExchangeError::from_send(ureq::Error::StatusCode(400)),
            ExchangeError::Status(400)
        ));
        assert!(matches!(
            ExchangeError::from_send(ureq::Error::HostNotFound),
            ExchangeError::Transport(_)
        ));
    }
}
