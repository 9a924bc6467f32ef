//! Parsing a token request (RFC 6749 §4.4, §2.3.1, §3.2) from its body and `Authorization`
//! header. No actix here: this is the code the fuzzer drives.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use percent_encoding::percent_decode_str;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::oauth::OAuthError;

pub const CLIENT_ASSERTION_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// How the client said who it is. `Debug` never shows a secret or an assertion.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    None,
    /// `client_secret_basic`.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`.
    Post { client_id: String, secret: String },
    /// `private_key_jwt` (RFC 7523 §2.2).
    Assertion { client_id: Option<String>, assertion: String },
    /// A `client_id` alone: a public client, or a refresh token that speaks for itself.
    ClientId(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { client_id, .. } => write!(f, "Basic({client_id}, <secret>)"),
            Credentials::Post { client_id, .. } => write!(f, "Post({client_id}, <secret>)"),
            Credentials::Assertion { client_id, .. } => {
                write!(f, "Assertion({client_id:?}, <jwt>)")
            }
            Credentials::ClientId(id) => write!(f, "ClientId({id})"),
        }
    }
}

/// The grants this endpoint knows; any other `grant_type` is `unsupported_grant_type`, which
/// the issuer answers once the client is known (RFC 6749 §5.2 orders no checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrantType {
    #[default]
    ClientCredentials,
    RefreshToken,
    /// RFC 8693.
    TokenExchange,
    Unsupported,
}

impl GrantType {
    fn of(name: &str) -> GrantType {
        match name {
            "client_credentials" => GrantType::ClientCredentials,
            "refresh_token" => GrantType::RefreshToken,
            GRANT_TOKEN_EXCHANGE => GrantType::TokenExchange,
            _ => GrantType::Unsupported,
        }
    }

    /// Its `grant_type` value; an unsupported one's stands for every value we do not know.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => GRANT_TOKEN_EXCHANGE,
            GrantType::Unsupported => "urn:tessera:unsupported",
        }
    }
}

/// A parsed token request. `Debug` hides the refresh token.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TokenRequest {
    pub grant_type: GrantType,
    pub scope: Option<String>,
    /// `resource` (RFC 8707) or `audience`; becomes `aud`.
    pub audience: Option<String>,
    pub refresh_token: Option<String>,
    pub credentials: Credentials,
    /// Token exchange (RFC 8693 §2.1), when that is the grant.
    pub exchange: Exchange,
}

/// The parameters of a token exchange request (RFC 8693 §2.1). `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Exchange {
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("has_subject_token", &self.subject_token.is_some())
            .field("subject_token_type", &self.subject_token_type)
            .field("has_actor_token", &self.actor_token.is_some())
            .field("actor_token_type", &self.actor_token_type)
            .field("requested_token_type", &self.requested_token_type)
            .finish()
    }
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("credentials", &self.credentials)
            .field("exchange", &self.exchange)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
}

/// The body's kind from its `Content-Type`; anything else is `415`. A request with no
/// `Content-Type` and an empty body has no media type to be wrong: it is read as an empty form,
/// so it gets the `400` that names the missing parameter.
pub fn body_kind(content_type: Option<&str>, body: &[u8]) -> Result<BodyKind, OAuthError> {
    let Some(content_type) = content_type else {
        return if body.is_empty() {
            Ok(BodyKind::Form)
        } else {
            Err(OAuthError::UnsupportedMediaType)
        };
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(BodyKind::Form)
    } else if media.eq_ignore_ascii_case("application/json") {
        Ok(BodyKind::Json)
    } else {
        Err(OAuthError::UnsupportedMediaType)
    }
}

/// The parameters as sent, before the authentication method is decided.
#[derive(Default)]
struct Params {
    grant_type: Option<GrantType>,
    scope: Option<String>,
    resource: Option<String>,
    audience: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    token: Option<String>,
    token_type_hint: Option<String>,
    exchange: Exchange,
    /// `resource` or `audience` came twice: RFC 8707 §2 answers `invalid_target`, not the
    /// `invalid_request` of any other repeated parameter.
    has_two_targets: bool,
}

impl Params {
    /// RFC 6749 §3.2: no parameter twice; an empty value counts as omitted. A value is
    /// copied only into the slot that keeps it.
    fn set(&mut self, name: &str, value: Cow<'_, str>) -> Result<(), OAuthError> {
        if value.is_empty() {
            return Ok(());
        }
        let slot = match name {
            "grant_type" => {
                if self.grant_type.replace(GrantType::of(&value)).is_some() {
                    return Err(OAuthError::InvalidRequest("a parameter was sent more than once"));
                }
                return Ok(());
            }
            "scope" => &mut self.scope,
            "resource" => &mut self.resource,
            "audience" => &mut self.audience,
            "refresh_token" => &mut self.refresh_token,
            "client_id" => &mut self.client_id,
            "client_secret" => &mut self.client_secret,
            "client_assertion_type" => &mut self.client_assertion_type,
            "client_assertion" => &mut self.client_assertion,
            "token" => &mut self.token,
            "token_type_hint" => &mut self.token_type_hint,
            "subject_token" => &mut self.exchange.subject_token,
            "subject_token_type" => &mut self.exchange.subject_token_type,
            "actor_token" => &mut self.exchange.actor_token,
            "actor_token_type" => &mut self.exchange.actor_token_type,
            "requested_token_type" => &mut self.exchange.requested_token_type,
            _ => return Ok(()), // RFC 6749 §3.2: unrecognized parameters are ignored
        };
        if slot.is_some() && matches!(name, "resource" | "audience") {
            self.has_two_targets = true;
            return Ok(());
        }
        if slot.is_some() {
            return Err(OAuthError::InvalidRequest("a parameter was sent more than once"));
        }
        *slot = Some(value.into_owned());
        Ok(())
    }
}

fn read_params(kind: BodyKind, body: &[u8]) -> Result<Params, OAuthError> {
    let mut params = Params::default();
    match kind {
        BodyKind::Form => {
            for (name, value) in form_urlencoded::parse(body) {
                params.set(&name, value)?;
            }
        }
        BodyKind::Json => {
            let mut de = serde_json::Deserializer::from_slice(body);
            de.deserialize_map(JsonParams(&mut params)).map_err(|_| {
                OAuthError::InvalidRequest("the JSON body must be an object of string values")
            })?;
            de.end()
                .map_err(|_| OAuthError::InvalidRequest("trailing data after the JSON body"))?;
        }
    }
    Ok(params)
}

/// A revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1) request.
#[derive(Debug, Clone, PartialEq, Eq)]
/// `token_type_hint` is read (so a repeated one is refused) but not kept: RFC 7009 §2.1 lets a
/// server look the token up without it, and every token here is found the same way.
pub struct TokenQuery {
    pub token: String,
    pub credentials: Credentials,
}

pub fn parse_query(
    kind: BodyKind,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<TokenQuery, OAuthError> {
    let mut params = read_params(kind, body)?;
    let basic = authorization.map(parse_basic).transpose()?;
    let credentials = credentials(&mut params, basic)?;
    let Some(token) = params.token else {
        return Err(OAuthError::InvalidRequest("token is required"));
    };
    Ok(TokenQuery { token, credentials })
}

pub fn parse(
    kind: BodyKind,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<TokenRequest, OAuthError> {
    let mut params = read_params(kind, body)?;
    let basic = authorization.map(parse_basic).transpose()?;
    let credentials = credentials(&mut params, basic)?;
    let Some(grant_type) = params.grant_type else {
        return Err(OAuthError::InvalidRequest("grant_type is required"));
    };
    let disagree = params.resource.is_some()
        && params.audience.is_some()
        && params.resource != params.audience;
    if params.has_two_targets || disagree {
        return Err(OAuthError::InvalidTarget("a token request names at most one resource"));
    }
    Ok(TokenRequest {
        grant_type,
        scope: params.scope,
        audience: params.resource.or(params.audience),
        refresh_token: params.refresh_token,
        credentials,
        exchange: params.exchange,
    })
}

/// RFC 6749 §2.3: exactly one authentication method. A `client_id` in the body beside Basic
/// is tolerated when it names the same client, as several client libraries send both.
fn credentials(
    params: &mut Params,
    basic: Option<(String, String)>,
) -> Result<Credentials, OAuthError> {
    let has_assertion = params.client_assertion.is_some() || params.client_assertion_type.is_some();
    if let Some((client_id, secret)) = basic {
        if params.client_secret.is_some() || has_assertion {
            return Err(OAuthError::InvalidRequest("more than one client authentication method"));
        }
        if params.client_id.as_ref().is_some_and(|id| *id != client_id) {
            return Err(OAuthError::InvalidRequest("client_id differs from the Basic credentials"));
        }
        return Ok(Credentials::Basic { client_id, secret });
    }
    if has_assertion {
        if params.client_secret.is_some() {
            return Err(OAuthError::InvalidRequest("more than one client authentication method"));
        }
        if params.client_assertion_type.as_deref() != Some(CLIENT_ASSERTION_JWT) {
            return Err(OAuthError::InvalidRequest("unsupported client_assertion_type"));
        }
        let Some(assertion) = params.client_assertion.take() else {
            return Err(OAuthError::InvalidRequest("client_assertion is required"));
        };
        return Ok(Credentials::Assertion { client_id: params.client_id.take(), assertion });
    }
    Ok(match (params.client_id.take(), params.client_secret.take()) {
        (Some(client_id), Some(secret)) => Credentials::Post { client_id, secret },
        (Some(client_id), None) => Credentials::ClientId(client_id),
        (None, Some(_)) => {
            return Err(OAuthError::InvalidRequest("client_secret without client_id"));
        }
        (None, None) => Credentials::None,
    })
}

/// `Basic base64(urlencode(id):urlencode(secret))`, scheme name in any case (RFC 7617 §2,
/// RFC 6749 §2.3.1). Another scheme is not a client authentication this endpoint knows.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient { is_basic: false });
    }
    let bad = OAuthError::InvalidClient { is_basic: true };
    let rest = rest.trim();
    let decoded =
        STANDARD.decode(rest).or_else(|_| STANDARD_NO_PAD.decode(rest)).map_err(|_| bad.clone())?;
    let mut text = String::from_utf8(decoded).map_err(|_| bad.clone())?;
    let colon = text.find(':').ok_or_else(|| bad.clone())?;
    if colon == 0 {
        return Err(bad);
    }
    // Most clients send ids and secrets with nothing escaped: then the decoded header becomes
    // the id and only the secret is copied out of it.
    let secret = form_decode(&text[colon + 1..]).ok_or_else(|| bad.clone())?.into_owned();
    let unescaped = match form_decode(&text[..colon]).ok_or_else(|| bad.clone())? {
        Cow::Borrowed(_) => None,
        Cow::Owned(id) => Some(id),
    };
    let id = unescaped.unwrap_or_else(|| {
        text.truncate(colon);
        text
    });
    if id.is_empty() {
        return Err(bad);
    }
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space), borrowing when nothing is
/// escaped.
fn form_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'+' || b == b'%') {
        return Some(Cow::Borrowed(text));
    }
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().ok().map(|s| Cow::Owned(s.into_owned()))
}

/// Reads a JSON object into [`Params`], refusing repeated keys, which serde_json alone would
/// let the last one win.
struct JsonParams<'p>(&'p mut Params);

impl<'de> Visitor<'de> for JsonParams<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                _ if !is_known(&name) => continue,
                _ => return Err(serde::de::Error::custom("values must be strings")),
            };
            self.0
                .set(&name, Cow::Owned(value))
                .map_err(|_| serde::de::Error::custom("repeated parameter"))?;
        }
        Ok(())
    }
}

fn is_known(name: &str) -> bool {
    matches!(
        name,
        "grant_type"
            | "scope"
            | "resource"
            | "audience"
            | "refresh_token"
            | "client_id"
            | "client_secret"
            | "client_assertion_type"
            | "client_assertion"
            | "token"
            | "subject_token"
            | "subject_token_type"
            | "actor_token"
            | "actor_token_type"
            | "requested_token_type"
            | "token_type_hint"
    )
}

impl TokenRequest {
    /// Writes the request back as a form body and `Authorization` header: the inverse of
    /// [`parse`] for every request it returns (the fuzzer checks this).
    pub fn to_form(&self) -> (Option<String>, String) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", self.grant_type.as_str());
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        if let Some(audience) = &self.audience {
            form.append_pair("resource", audience);
        }
        if let Some(token) = &self.refresh_token {
            form.append_pair("refresh_token", token);
        }
        let ex = &self.exchange;
        let exchange = [
            ("subject_token", &ex.subject_token),
            ("subject_token_type", &ex.subject_token_type),
            ("actor_token", &ex.actor_token),
            ("actor_token_type", &ex.actor_token_type),
            ("requested_token_type", &ex.requested_token_type),
        ];
        for (name, value) in exchange {
            if let Some(value) = value {
                form.append_pair(name, value);
            }
        }
        let mut authorization = None;
        match &self.credentials {
            Credentials::None => {}
            Credentials::Basic { client_id, secret } => {
                let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
                authorization = Some(format!("Basic {}", STANDARD.encode(pair)));
            }
            Credentials::Post { client_id, secret } => {
                form.append_pair("client_id", client_id);
                form.append_pair("client_secret", secret);
            }
            Credentials::Assertion { client_id, assertion } => {
                if let Some(id) = client_id {
                    form.append_pair("client_id", id);
                }
                form.append_pair("client_assertion_type", CLIENT_ASSERTION_JWT);
                form.append_pair("client_assertion", assertion);
            }
            Credentials::ClientId(id) => {
                form.append_pair("client_id", id);
            }
        }
        (authorization, form.finish())
    }
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str, auth: Option<&str>) -> Result<TokenRequest, OAuthError> {
        parse(BodyKind::Form, auth, body.as_bytes())
    }

    #[test]
    fn seed_000_lowercase_basic_with_form_body() {
        let auth = format!("basic {}", STANDARD.encode("my%3Aid:s3cr%2Bt"));
        let req =
            form("grant_type=client_credentials&scope=read_user+write_user", Some(&auth)).unwrap();
        assert_eq!(req.scope.as_deref(), Some("read_user write_user"));
        assert_eq!(
            req.credentials,
            Credentials::Basic { client_id: "my:id".into(), secret: "s3cr+t".into() }
        );
    }

    #[test]
    fn repeated_parameters_and_two_methods_are_invalid_requests() {
        assert!(matches!(
            form("grant_type=a&grant_type=b", None),
            Err(OAuthError::InvalidRequest(_))
        ));
        let auth = format!("Basic {}", STANDARD.encode("a:b"));
        assert!(matches!(
            form("grant_type=client_credentials&client_secret=x&client_id=a", Some(&auth)),
            Err(OAuthError::InvalidRequest(_))
        ));
        assert!(matches!(form("scope=a", None), Err(OAuthError::InvalidRequest(_))));
        assert!(matches!(
            parse(BodyKind::Json, None, br#"{"grant_type":"a","grant_type":"b"}"#),
            Err(OAuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn json_bodies_follow_stytch() {
        let req = parse(
            BodyKind::Json,
            None,
            br#"{"grant_type":"client_credentials","client_id":"c","client_secret":"s","scope":"a b","extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            req.credentials,
            Credentials::Post { client_id: "c".into(), secret: "s".into() }
        );
        assert!(parse(BodyKind::Json, None, b"[1]").is_err());
        assert!(parse(BodyKind::Json, None, br#"{"grant_type":5}"#).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            body_kind(Some("application/x-www-form-urlencoded; charset=UTF-8"), b"a=b"),
            Ok(BodyKind::Form)
        );
        assert_eq!(body_kind(Some("Application/JSON"), b"{}"), Ok(BodyKind::Json));
        assert_eq!(body_kind(Some("text/plain"), b"a=b"), Err(OAuthError::UnsupportedMediaType));
        assert_eq!(body_kind(Some("text/plain"), b""), Err(OAuthError::UnsupportedMediaType));
        assert_eq!(body_kind(Some(""), b""), Err(OAuthError::UnsupportedMediaType));
        assert_eq!(body_kind(None, b"a=b"), Err(OAuthError::UnsupportedMediaType));
        assert_eq!(body_kind(None, b""), Ok(BodyKind::Form));
    }

    #[test]
    fn to_form_round_trips() {
        let req = TokenRequest {
            grant_type: GrantType::ClientCredentials,
            scope: Some("a b:c".into()),
            audience: Some("https://api/x?y=1&z".into()),
            refresh_token: None,
            credentials: Credentials::Basic {
                client_id: "i d:+".into(),
                secret: "p@ss:w%rd".into(),
            },
            exchange: Exchange {
                subject_token: Some("a.b.c".into()),
                subject_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
                ..Exchange::default()
            },
        };
        let (auth, body) = req.to_form();
        assert_eq!(form(&body, auth.as_deref()).unwrap(), req);
    }
}
