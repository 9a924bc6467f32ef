//! HTTPS and client certificates (RFC 8705). rustls with the ring provider serves the
//! certificate; when a client CA is configured the handshake asks for a client certificate but
//! accepts any, having checked only that the client holds its key — a self-signed one must
//! reach the app check, and an app registered by name is judged there against the CA. Each
//! connection's certificate is read once, when it opens; behind a TLS-terminating proxy, a
//! header carries it, believed only from the proxies named in the config.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use base64::Engine;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tessera_core::auth::certificate::ClientCertificate;

use crate::config::Config;

/// What HTTPS and client certificates need, loaded once at start.
pub struct Tls {
    /// The listener's TLS settings; none behind a proxy that terminates TLS.
    pub server: Option<Arc<ServerConfig>>,
    /// Judges whether a client certificate chains to the configured CA.
    trust: Option<Arc<dyn ClientCertVerifier>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls_client_ca: {0}")]
    ClientCa(String),
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |source| TlsError::Unreadable { path: path.into(), source };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.into()));
    }
    Ok(certs)
}

impl Tls {
    /// The TLS settings of `config`: a listener's when it serves HTTPS, and the client CA's
    /// (also behind a proxy, which hands certificates over in a header).
    pub fn load(config: &Config) -> Result<Option<Tls>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let trust = match &config.tls_client_ca {
            None => None,
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(ca)? {
                    roots.add(cert)?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                Some(verifier)
            }
        };
        let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
            return Ok(trust.map(|trust| Tls { server: None, trust: Some(trust) }));
        };
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|source| TlsError::Unreadable { path: key.clone(), source })?;
        let builder =
            ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
        let builder = match &trust {
            None => builder.with_no_client_auth(),
            Some(trust) => {
                builder.with_client_cert_verifier(Arc::new(AnyClientCertificate(Arc::clone(trust))))
            }
        };
        let mut server = builder.with_single_cert(chain, key)?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Tls { server: Some(Arc::new(server)), trust }))
    }

    /// Reads the client certificate of a connection as it opens, for its requests to find.
    pub fn on_connect(
        &self,
    ) -> impl Fn(&dyn std::any::Any, &mut Extensions) + Send + Sync + 'static {
        let trust = self.trust.clone();
        move |conn, data| {
            type Stream = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
            let Some(stream) = conn.downcast_ref::<Stream>() else { return };
            let (_, session) = stream.get_ref();
            let Some((leaf, intermediates)) =
                session.peer_certificates().and_then(|c| c.split_first())
            else {
                return;
            };
            if let Some(cert) = read(leaf, intermediates, trust.as_deref()) {
                data.insert(Arc::new(cert));
            }
        }
    }
}

/// The certificate and whether it chains to the client CA.
fn read(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    trust: Option<&dyn ClientCertVerifier>,
) -> Option<ClientCertificate> {
    let is_trusted =
        trust.is_some_and(|t| t.verify_client_cert(leaf, intermediates, UnixTime::now()).is_ok());
    ClientCertificate::from_der(leaf, is_trusted)
}

/// The client certificate a request came with: from a trusted proxy's header when one is
/// configured and the peer is such a proxy (whose connection carries no client's certificate),
/// else from the TLS connection itself.
pub fn client_certificate(
    req: &HttpRequest,
    config: &Config,
    tls: Option<&Tls>,
) -> Option<Arc<ClientCertificate>> {
    if let Some(header) = &config.tls_client_cert_header {
        let peer = req.peer_addr().map(|a| a.ip());
        if peer.is_some_and(|ip| config.trusted_proxies.iter().any(|c| c.contains(ip))) {
            let value = req.headers().get(header.as_str())?;
            let der = from_header(value.as_bytes())?;
            let trust = tls.and_then(|t| t.trust.as_deref());
            return read(&CertificateDer::from(der), &[], trust).map(Arc::new);
        }
    }
    req.conn_data::<Arc<ClientCertificate>>().cloned()
}

/// A certificate as proxies send it: RFC 9440's `:base64 DER:`, or PEM, URL-encoded (nginx's
/// `$ssl_client_escaped_cert`, AWS's load balancers) or not.
pub fn from_header(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if let Some(inner) = text.strip_prefix(':').and_then(|t| t.strip_suffix(':')) {
        return base64::engine::general_purpose::STANDARD.decode(inner).ok();
    }
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().ok()?;
    let body = decoded
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Asks for a client certificate and takes any whose key the client proves it holds; the CA
/// verifier it wraps checks those proofs and names the CAs in the request.
#[derive(Debug)]
struct AnyClientCertificate(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// An address or a CIDR block, as `trusted_proxies` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = ();

    fn from_str(s: &str) -> Result<Cidr, ()> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| ())?)),
            None => (s.trim(), None),
        };
        let base: IpAddr = addr.parse().map_err(|_| ())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(());
        }
        Ok(Cidr { base, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may reach a dual-stack listener as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        // An IPv4 address in the top 32 bits, so that one mask serves both families.
        let bits = |ip: IpAddr| -> u128 {
            match ip {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if ip.is_ipv4() != self.base.is_ipv4() {
            return false;
        }
        let mask = match self.prefix {
            0 => 0,
            p => u128::MAX << (128 - u32::from(p)),
        };
        bits(ip) & mask == bits(self.base) & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_contain_their_addresses() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
    }

    #[test]
    fn proxies_send_certificates_in_three_spellings() {
        let der = b"\x30\x03\x02\x01\x01";
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        assert_eq!(from_header(format!(":{b64}:").as_bytes()).as_deref(), Some(&der[..]));
        assert_eq!(from_header(pem.as_bytes()).as_deref(), Some(&der[..]));
        let escaped: String =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        assert_eq!(from_header(escaped.as_bytes()).as_deref(), Some(&der[..]));
        assert_eq!(from_header(b"garbage"), None);
    }
}
