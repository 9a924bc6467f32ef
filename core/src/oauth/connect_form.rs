//! What a browser sends to the hosted provider-token flow — the sign-in and sign-out forms and
//! the provider's callback query — parsed here, without actix, so the fuzzer can drive it.
//!
//! Values that end up in a `Location` header or a cookie name (the request state) are accepted
//! only in the alphabet of the tokens we mint, so nothing a browser sends can split a header.
//! A repeated parameter is refused (RFC 6749 §3.1, and the same reason: two values are an
//! ambiguity an attacker chooses); parameters we do not know are ignored, as providers add
//! their own to callbacks (`scope`, `iss`, `session_state`).

/// Longest state we mint or accept (ours are 43 characters).
pub const MAX_STATE: usize = 128;
const MAX_LOGIN: usize = 320;
/// A 256-character password is at most 1024 bytes of UTF-8.
const MAX_PASSWORD: usize = 1024;
const MAX_CODE: usize = 4096;
const MAX_ERROR: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    Missing(&'static str),
    Repeated(&'static str),
    TooLong(&'static str),
    /// A state or CSRF token outside the alphabet of the tokens we mint.
    NotOurs(&'static str),
}

/// The sign-in form. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInForm {
    pub state: String,
    pub csrf: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm")
            .field("state", &self.state)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The sign-out form: the CSRF token, and the request to go back to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOutForm {
    pub csrf: String,
    pub state: Option<String>,
}

/// The provider's redirect back to us (RFC 6749 §4.1.2 and §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackQuery {
    pub state: String,
    pub code: Option<String>,
    pub error: Option<String>,
}

/// Whether `s` could be a token we minted: URL-safe base64 characters, bounded.
pub fn is_state_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_STATE
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The named parameters of a urlencoded string, each at most once and within its length.
fn fields<const N: usize>(
    bytes: &[u8],
    names: [(&'static str, usize); N],
) -> Result<[Option<String>; N], FormError> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (key, value) in form_urlencoded::parse(bytes) {
        let Some(i) = names.iter().position(|(n, _)| *n == key) else { continue };
        let (name, max) = names[i];
        if out[i].is_some() {
            return Err(FormError::Repeated(name));
        }
        if value.len() > max {
            return Err(FormError::TooLong(name));
        }
        out[i] = Some(value.into_owned());
    }
    Ok(out)
}

fn token(value: Option<String>, name: &'static str) -> Result<String, FormError> {
    let value = value.ok_or(FormError::Missing(name))?;
    if is_state_token(&value) { Ok(value) } else { Err(FormError::NotOurs(name)) }
}

pub fn parse_sign_in(body: &[u8]) -> Result<SignInForm, FormError> {
    let [state, csrf, username, password] = fields(
        body,
        [
            ("state", MAX_STATE),
            ("csrf", MAX_STATE),
            ("username", MAX_LOGIN),
            ("password", MAX_PASSWORD),
        ],
    )?;
    Ok(SignInForm {
        state: token(state, "state")?,
        csrf: token(csrf, "csrf")?,
        username: username.ok_or(FormError::Missing("username"))?,
        password: password.ok_or(FormError::Missing("password"))?,
    })
}

pub fn parse_sign_out(body: &[u8]) -> Result<SignOutForm, FormError> {
    let [csrf, state] = fields(body, [("csrf", MAX_STATE), ("state", MAX_STATE)])?;
    let state = state.filter(|s| !s.is_empty()).map(|s| token(Some(s), "state")).transpose()?;
    Ok(SignOutForm { csrf: token(csrf, "csrf")?, state })
}

pub fn parse_callback(query: &str) -> Result<CallbackQuery, FormError> {
    let [state, code, error] =
        fields(query.as_bytes(), [("state", MAX_STATE), ("code", MAX_CODE), ("error", MAX_ERROR)])?;
    Ok(CallbackQuery { state: token(state, "state")?, code, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_8_forms_refuse_repeats_foreign_states_and_missing_tokens() {
        let ok = parse_sign_in(b"state=abc_-1&csrf=xyz&username=ada&password=correct+horse&x=1");
        assert_eq!(ok.as_ref().map(|f| f.password.as_str()), Ok("correct horse"));
        assert!(!format!("{:?}", ok.unwrap()).contains("horse"), "Debug hides the password");
        assert_eq!(
            parse_sign_in(b"state=a%0d%0aX:1&csrf=x&username=a&password=p"),
            Err(FormError::NotOurs("state"))
        );
        assert_eq!(
            parse_sign_in(b"state=a&username=a&password=p"),
            Err(FormError::Missing("csrf"))
        );
        assert_eq!(
            parse_sign_in(b"state=a&state=b&csrf=x&username=a&password=p"),
            Err(FormError::Repeated("state"))
        );
        assert_eq!(
            parse_callback("state=s1&code=c&iss=https%3A%2F%2Fgh&scope=repo"),
            Ok(CallbackQuery { state: "s1".into(), code: Some("c".into()), error: None })
        );
        assert_eq!(parse_callback("code=c"), Err(FormError::Missing("state")));
        assert_eq!(parse_callback("state=s&code=a&code=b"), Err(FormError::Repeated("code")));
        assert_eq!(
            parse_sign_out(b"csrf=t&state="),
            Ok(SignOutForm { csrf: "t".into(), state: None })
        );
        let long = format!("state={}&csrf=t&username=a&password=p", "a".repeat(MAX_STATE + 1));
        assert_eq!(parse_sign_in(long.as_bytes()), Err(FormError::TooLong("state")));
    }
}
