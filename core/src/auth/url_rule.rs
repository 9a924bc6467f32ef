//! The one rule for a URL that a user gives us and that Tessera later sends a browser or a
//! request to: service callback URIs, provider endpoints, the issuer (docs/api.md). Every part
//! is judged as the WHATWG URL parser reads it (the parser browsers use), never by splitting the
//! text, so `https://good.example\@evil.example` or `https://evil.example#@good.example` are
//! judged by the host they actually reach.

use std::fmt;

use url::{Host, Url};

/// Why a URL is refused; each caller words the message for its own field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not an absolute URL, no host, or a scheme other than `https` (and `http` on a loopback
    /// host).
    NotHttps,
    /// `user@` or `user:password@` before the host: credentials in a URL leak into logs and
    /// histories, and they are the classic way to make a URL look like it goes elsewhere.
    Userinfo,
    /// A fragment is never sent to the server, and RFC 6749 §3.1.2 forbids it in a redirection
    /// endpoint.
    Fragment,
}

impl fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlRefusal::NotHttps => "not an absolute https URL (http only on a loopback host)",
            UrlRefusal::Userinfo => "a URL with a user name or password",
            UrlRefusal::Fragment => "a URL with a fragment",
        })
    }
}

/// Parses `text` and applies the rule: `https`, or `http` on a loopback host (127.0.0.0/8,
/// `::1`, `localhost`) for development and tests; no user name or password; no fragment.
pub fn check(text: &str) -> Result<Url, UrlRefusal> {
    // The parser would drop or encode them, but the text as given is what a `Location`
    // header later carries, and a control character cannot go there.
    if text.chars().any(char::is_control) {
        return Err(UrlRefusal::NotHttps);
    }
    let url = Url::parse(text).map_err(|_| UrlRefusal::NotHttps)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Userinfo);
    }
    let host = url.host().ok_or(UrlRefusal::NotHttps)?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        _ => return Err(UrlRefusal::NotHttps),
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Fragment);
    }
    Ok(url)
}

/// Decided on the parsed host: `http://127.0.0.1.evil.example` is a domain, `http://127.1` is
/// 127.0.0.1.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => *domain == "localhost",
        Host::Ipv4(addr) => addr.is_loopback(),
        Host::Ipv6(addr) => addr.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Option<String> {
        check(text).ok().and_then(|u| u.host_str().map(str::to_string))
    }

    #[test]
    fn issue_8_control_characters_are_refused() {
        for text in
            ["http://127.0.0.1:1/cb\u{1}x", "https://a.example/\u{7f}", "https://a.example/\r\n"]
        {
            assert_eq!(check(text).err(), Some(UrlRefusal::NotHttps), "{text:?}");
        }
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert_eq!(host("https://app.acme.com/cb?x=1"), Some("app.acme.com".into()));
        for ok in [
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.2/cb",
            "http://127.1/cb",
            "http://localhost/cb",
            "http://LOCALHOST/cb",
            "http://[::1]:8080/cb",
            "http://[0:0:0:0:0:0:0:1]/cb",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "ftp://app.acme.com/cb",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,x",
            "/relative/cb",
            "https://",
            "",
        ] {
            assert_eq!(check(bad).err(), Some(UrlRefusal::NotHttps), "{bad}");
        }
    }

    #[test]
    fn the_host_is_the_parsers() {
        // A backslash is a slash to the parser (and to browsers): the host is good.example.
        assert_eq!(host("https://good.example\\@evil.example/"), Some("good.example".into()));
        assert_eq!(host("https://%65vil.example/"), Some("evil.example".into()));
        assert_eq!(
            check("http://127.0.0.1\\@evil.example/").map(|u| u.host_str().map(str::to_string)),
            Ok(Some("127.0.0.1".into()))
        );
        assert_eq!(check("https://evil.example#@good.example").err(), Some(UrlRefusal::Fragment));
        assert_eq!(check("https://app.acme.com/cb#").err(), Some(UrlRefusal::Fragment));
    }

    #[test]
    fn userinfo_is_refused() {
        for bad in [
            "https://user@good.example/",
            "https://user:pass@good.example/",
            "https://:pass@good.example/",
            "http://localhost:80@evil.example/",
            "http://127.0.0.1@evil.example/",
        ] {
            assert_eq!(check(bad).err(), Some(UrlRefusal::Userinfo), "{bad}");
        }
    }
}
