//! Client certificates (RFC 8705): what a token request's TLS client certificate says, read
//! once per connection, and the two ways an app can be registered to be one —
//! `tls_client_auth` (a certificate from the configured CA with a registered subject DN or SAN)
//! and `self_signed_tls_client_auth` (one of the app's registered certificates). No rustls
//! here: the HTTP layer hands over the DER and whether the chain reached the CA.

use std::net::IpAddr;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

/// A presented client certificate, as far as authentication and binding need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// RFC 8705 §3.1: base64url SHA-256 of the DER, a bound token's `cnf.x5t#S256`.
    pub thumbprint: String,
    /// The subject DN in RFC 4514 form.
    pub subject_dn: String,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    pub san_ip: Vec<IpAddr>,
    pub san_email: Vec<String>,
    /// Whether it chains to the configured client CA (only then may `tls_client_auth` trust
    /// its names).
    pub is_trusted: bool,
}

/// The thumbprint of a certificate's DER (RFC 8705 §3.1).
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

impl ClientCertificate {
    /// Reads a DER certificate; `None` when it is not one.
    pub fn from_der(der: &[u8], is_trusted: bool) -> Option<ClientCertificate> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = cert.tbs_certificate();
        let mut read = ClientCertificate {
            thumbprint: thumbprint(der),
            subject_dn: tbs.subject().to_string(),
            san_dns: Vec::new(),
            san_uri: Vec::new(),
            san_ip: Vec::new(),
            san_email: Vec::new(),
            is_trusted,
        };
        // A certificate with two SAN extensions is malformed (RFC 5280 §4.2): it has no names.
        if let Ok(Some((_, SubjectAltName(names)))) = tbs.get_extension::<SubjectAltName>() {
            for name in names {
                match name {
                    GeneralName::DnsName(n) => read.san_dns.push(n.to_string()),
                    GeneralName::UniformResourceIdentifier(n) => read.san_uri.push(n.to_string()),
                    GeneralName::Rfc822Name(n) => read.san_email.push(n.to_string()),
                    GeneralName::IpAddress(octets) => {
                        if let Some(ip) = ip_from(octets.as_bytes()) {
                            read.san_ip.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(read)
    }
}

fn ip_from(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(octets).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(octets).ok()?)),
        _ => None,
    }
}

/// The one name a `tls_client_auth` app's certificate must carry (RFC 8705 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedName {
    SubjectDn(String),
    SanDns(String),
    SanUri(String),
    SanIp(IpAddr),
    SanEmail(String),
}

impl ExpectedName {
    /// Whether `cert` carries this name. A DN is compared in its RFC 4514 form, ignoring ASCII
    /// case (X.520's caseIgnoreMatch, which the usual attributes use); a DNS name or e-mail
    /// ignoring case; a URI exactly; an address as an address.
    pub fn is_met_by(&self, cert: &ClientCertificate) -> bool {
        match self {
            ExpectedName::SubjectDn(dn) => cert.subject_dn.eq_ignore_ascii_case(dn),
            ExpectedName::SanDns(n) => cert.san_dns.iter().any(|d| d.eq_ignore_ascii_case(n)),
            ExpectedName::SanUri(n) => cert.san_uri.iter().any(|u| u == n),
            ExpectedName::SanIp(ip) => cert.san_ip.contains(ip),
            ExpectedName::SanEmail(n) => cert.san_email.iter().any(|e| e.eq_ignore_ascii_case(n)),
        }
    }
}

/// A subject DN as a registration gives it, in the RFC 4514 form certificates are compared in;
/// `None` when it is not a DN.
pub fn normalize_dn(dn: &str) -> Option<String> {
    let name = Name::from_str(&without_spaces_around_separators(dn)).ok()?;
    if name.is_empty() {
        return None;
    }
    Some(name.to_string())
}

/// RFC 4514 has no spaces around `,`, `+` and `=`, but people (and RFC 2253 tools) write them:
/// unescaped ones there are dropped, escaped ones kept.
fn without_spaces_around_separators(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars();
    // Past an attribute's first `=`, another `=` is part of its value.
    let mut in_value = false;
    while let Some(c) = chars.next() {
        let is_separator = match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
                continue;
            }
            ',' | '+' => {
                in_value = false;
                true
            }
            '=' if !in_value => {
                in_value = true;
                true
            }
            _ => false,
        };
        if !is_separator {
            out.push(c);
            continue;
        }
        while out.ends_with(' ') && !out.ends_with("\\ ") {
            out.pop();
        }
        out.push(c);
        chars = chars.as_str().trim_start_matches(' ').chars();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguished_names_are_compared_in_one_form() {
        assert_eq!(normalize_dn("CN=svc-a, O=Acme").as_deref(), Some("CN=svc-a,O=Acme"));
        assert_eq!(normalize_dn(" CN = svc a , O=Acme ").as_deref(), Some("CN=svc a,O=Acme"));
        assert_eq!(normalize_dn("CN=a=b").as_deref(), Some("CN=a=b"));
        assert_eq!(normalize_dn(""), None);
        assert_eq!(normalize_dn("not a dn"), None);
    }
}

/// The thumbprint of a PEM (or bare base64 DER) certificate an app registers for
/// `self_signed_tls_client_auth`; `None` when it is not a certificate.
pub fn registered_thumbprint(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let cert = Certificate::from_pem(text.as_bytes()).ok()?;
        let der = x509_cert::der::Encode::to_der(&cert).ok()?;
        return Some(thumbprint(&der));
    }
    let der = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    Certificate::from_der(&der).ok()?;
    Some(thumbprint(&der))
}

/// How an app authenticates with a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateAuth {
    /// `tls_client_auth`: chains to the client CA and carries the name.
    Name(ExpectedName),
    /// `self_signed_tls_client_auth`: one of these thumbprints.
    SelfSigned(Vec<String>),
}

impl CertificateAuth {
    pub fn accepts(&self, cert: &ClientCertificate) -> bool {
        match self {
            CertificateAuth::Name(name) => cert.is_trusted && name.is_met_by(cert),
            // No chain to judge: possession of the registered key, which TLS proved, is all.
            CertificateAuth::SelfSigned(thumbprints) => thumbprints.contains(&cert.thumbprint),
        }
    }
}
