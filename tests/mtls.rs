//! HTTPS and client certificates (RFC 8705), with certificates made here (rcgen) and curl as
//! the TLS client: `tls_client_auth` by subject DN and by SAN, `self_signed_tls_client_auth`,
//! certificate-bound tokens at the admin API, and the header a TLS-terminating proxy sends.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use serde_json::{Value, json};

use crate::support::{ROOT_ID, ROOT_SECRET, TestServer, claims};

/// A certificate and its key, written as PEM files.
struct Pem {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
    text: String,
}

fn write(dir: &Path, name: &str, cert: &rcgen::Certificate, key: &KeyPair) -> Pem {
    let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Pem { cert: cert_path, key: key_path, der: cert.der().to_vec(), text: cert.pem() }
}

fn client_params(cn: &str, sans: Vec<SanType>) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Acme");
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// A CA, a server certificate for 127.0.0.1, a client certificate it issued, a self-signed
/// client certificate, and one from another CA.
struct Pki {
    ca: Pem,
    server: Pem,
    issued: Pem,
    self_signed: Pem,
    stranger: Pem,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Tessera test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let ca_pem = Pem {
        cert: dir.join("ca.pem"),
        key: dir.join("ca.key"),
        der: ca.der().to_vec(),
        text: ca.pem(),
    };
    std::fs::write(&ca_pem.cert, ca.pem()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server_params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    let server = server_params.signed_by(&server_key, &ca).unwrap();

    let issued_key = KeyPair::generate().unwrap();
    let sans = vec![SanType::DnsName("svc-a.internal".try_into().unwrap())];
    let issued = client_params("svc-a", sans).signed_by(&issued_key, &ca).unwrap();

    let own_key = KeyPair::generate().unwrap();
    let self_signed = client_params("svc-b", Vec::new()).self_signed(&own_key).unwrap();

    let other_ca_key = KeyPair::generate().unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_ca = CertifiedIssuer::self_signed(other_params, other_ca_key).unwrap();
    let stranger_key = KeyPair::generate().unwrap();
    // The same names as the issued one, from a CA nobody configured.
    let sans = vec![SanType::DnsName("svc-a.internal".try_into().unwrap())];
    let stranger = client_params("svc-a", sans).signed_by(&stranger_key, &other_ca).unwrap();

    Pki {
        ca: ca_pem,
        server: write(dir, "server", &server, &server_key),
        issued: write(dir, "issued", &issued, &issued_key),
        self_signed: write(dir, "self", &self_signed, &own_key),
        stranger: write(dir, "stranger", &stranger, &stranger_key),
    }
}

/// One request with curl: `(status, body)`.
fn curl(ca: &Path, client: Option<&Pem>, args: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--cacert"]).arg(ca).args(["-w", "\n%{http_code}"]);
    if let Some(pem) = client {
        cmd.arg("--cert").arg(&pem.cert).arg("--key").arg(&pem.key);
    }
    let out = cmd.args(args).output().expect("curl is installed (.ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn thumbprint(der: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

struct Tls {
    server: TestServer,
    pki: Pki,
    _dir: tempfile::TempDir,
}

impl Tls {
    fn start(tweak: impl FnOnce(&mut tessera::config::Config, &Pki)) -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let server = TestServer::start_with(|c| tweak(c, &pki));
        Tls { server, pki, _dir: dir }
    }

    fn root_token(&self) -> String {
        let url = format!("{}/oauth2/v1/token", self.server.url);
        let auth = format!("{ROOT_ID}:{ROOT_SECRET}");
        let (status, body) = curl(
            &self.pki.ca.cert,
            None,
            &["-u", &auth, "-d", "grant_type=client_credentials", &url],
        );
        assert_eq!(status, 200, "{body}");
        json(&body)["access_token"].as_str().unwrap().to_string()
    }

    fn create_app(&self, body: Value) -> (u16, Value) {
        let url = format!("{}/api/v1/apps", self.server.url);
        let auth = format!("authorization: Bearer {}", self.root_token());
        let body = body.to_string();
        let args = ["-H", &auth, "-H", "content-type: application/json", "-d", &body, &url];
        let (status, body) = curl(&self.pki.ca.cert, None, &args);
        (status, json(&body))
    }

    fn token(&self, client: Option<&Pem>, form: &str) -> (u16, Value) {
        let url = format!("{}/oauth2/v1/token", self.server.url);
        let (status, body) = curl(&self.pki.ca.cert, client, &["-d", form, &url]);
        (status, json(&body))
    }
}

#[test]
fn issue_12_apps_authenticate_with_certificates_and_their_tokens_are_bound_to_them() {
    let tls = Tls::start(|c, pki| {
        c.tls_cert = Some(pki.server.cert.clone());
        c.tls_key = Some(pki.server.key.clone());
        c.tls_client_ca = Some(pki.ca.cert.clone());
    });
    assert!(tls.server.url.starts_with("https://"));
    let meta = json(
        &curl(
            &tls.pki.ca.cert,
            None,
            &[&format!("{}/.well-known/oauth-authorization-server", tls.server.url)],
        )
        .1,
    );
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("tls_client_auth"))
    );

    let (status, by_dn) = tls.create_app(json!({"name": "dn", "scopes": ["read_app"], "tlsClientAuth": {"subjectDn": "CN=svc-a, O=Acme"}}));
    assert_eq!(status, 201, "{by_dn}");
    assert_eq!(
        by_dn["app"]["tlsClientAuth"]["subjectDn"], "CN=svc-a,O=Acme",
        "kept in RFC 4514 form"
    );
    let (_, by_san) =
        tls.create_app(json!({"name": "san", "tlsClientAuth": {"sanDns": "SVC-A.internal"}}));
    let (_, own) = tls
        .create_app(json!({"name": "own", "selfSignedCertificates": [tls.pki.self_signed.text]}));
    let (_, plain) = tls.create_app(json!({"name": "plain"}));
    for (body, says) in [
        (json!({"name": "x", "tlsClientAuth": {}}), "exactly one"),
        (
            json!({"name": "x", "tlsClientAuth": {"subjectDn": "CN=a", "sanDns": "a"}}),
            "exactly one",
        ),
        (json!({"name": "x", "tlsClientAuth": {"sanIp": "not-an-ip"}}), "not an IP address"),
        (json!({"name": "x", "selfSignedCertificates": ["not a certificate"]}), "PEM certificate"),
        (
            json!({"name": "x", "tlsClientAuth": {"sanDns": "a"}, "selfSignedCertificates": [tls.pki.self_signed.text]}),
            "not both",
        ),
    ] {
        let (status, answer) = tls.create_app(body);
        assert_eq!(status, 400, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(says), "{says}: {answer}");
    }
    let id = |app: &Value| app["app"]["clientId"].as_str().unwrap().to_string();
    let form = |app: &Value| format!("grant_type=client_credentials&client_id={}", id(app));

    // tls_client_auth: the CA's certificate with the registered name, by DN or by SAN.
    for app in [&by_dn, &by_san] {
        let (status, body) = tls.token(Some(&tls.pki.issued), &form(app));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        let c = claims(body["access_token"].as_str().unwrap());
        assert_eq!(c["cnf"], json!({"x5t#S256": thumbprint(&tls.pki.issued.der)}));
        assert_eq!(c["client_id"], id(app));
    }
    // The same names from another CA, a self-signed certificate, or none: refused alike.
    for client in [Some(&tls.pki.stranger), Some(&tls.pki.self_signed), None] {
        let (status, body) = tls.token(client, &form(&by_dn));
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    }
    // self_signed_tls_client_auth: its own certificate, no CA needed; another is refused.
    let (status, body) = tls.token(Some(&tls.pki.self_signed), &form(&own));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        thumbprint(&tls.pki.self_signed.der)
    );
    assert_eq!(tls.token(Some(&tls.pki.issued), &form(&own)).0, 401);
    // An app registered for certificates is not one its secret speaks for.
    let secret_form =
        format!("{}&client_secret={}", form(&by_dn), by_dn["app"]["secret"].as_str().unwrap());
    assert_eq!(tls.token(Some(&tls.pki.issued), &secret_form).0, 401);

    // A secret app over TLS without a certificate gets a plain bearer token.
    let plain_form =
        format!("{}&client_secret={}", form(&plain), plain["app"]["secret"].as_str().unwrap());
    let (status, body) = tls.token(None, &plain_form);
    assert_eq!(status, 200, "{body}");
    assert!(claims(body["access_token"].as_str().unwrap()).get("cnf").is_none());

    // A certificate-bound token opens the admin API only over a connection with that certificate.
    let (_, body) = tls.token(Some(&tls.pki.issued), &form(&by_dn));
    let auth = format!("authorization: Bearer {}", body["access_token"].as_str().unwrap());
    let apps = format!("{}/api/v1/apps", tls.server.url);
    assert_eq!(curl(&tls.pki.ca.cert, Some(&tls.pki.issued), &["-H", &auth, &apps]).0, 200);
    assert_eq!(curl(&tls.pki.ca.cert, None, &["-H", &auth, &apps]).0, 401, "copied, it is useless");
    assert_eq!(curl(&tls.pki.ca.cert, Some(&tls.pki.stranger), &["-H", &auth, &apps]).0, 401);
}

#[test]
fn issue_12_a_proxy_header_is_believed_only_from_trusted_proxies() {
    use base64::Engine;
    let header = |pki: &Pki| {
        format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&pki.issued.der))
    };
    for (proxies, trusted) in [(vec!["127.0.0.0/8"], true), (vec!["10.0.0.0/8"], false)] {
        let tls = Tls::start(|c, pki| {
            c.tls_client_ca = Some(pki.ca.cert.clone());
            c.tls_client_cert_header = Some("client-cert".into());
            c.trusted_proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
        });
        let server = &tls.server;
        let root = server.root_token();
        let res = server.admin(
            "POST",
            "/api/v1/apps",
            &root,
            Some(json!({"name": "behind", "tlsClientAuth": {"subjectDn": "CN=svc-a,O=Acme"}})),
        );
        assert_eq!(res.status, 201, "{}", res.body);
        let body = format!(
            "grant_type=client_credentials&client_id={}",
            res.json()["app"]["clientId"].as_str().unwrap()
        );
        let value = header(&tls.pki);
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("client-cert", value.as_str()),
        ];
        let res = server.request("POST", "/oauth2/v1/token", &headers, Some(body.as_bytes()));
        if trusted {
            assert_eq!(res.status, 200, "{}", res.body);
            assert_eq!(
                claims(res.json()["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
                thumbprint(&tls.pki.issued.der)
            );
        } else {
            assert_eq!(
                res.status, 401,
                "from an untrusted peer the header is nothing: {}",
                res.body
            );
        }
    }
}

#[test]
fn issue_12_verify_needs_the_certificate_a_token_is_bound_to() {
    let tls = Tls::start(|c, pki| {
        c.tls_cert = Some(pki.server.cert.clone());
        c.tls_key = Some(pki.server.key.clone());
        c.tls_client_ca = Some(pki.ca.cert.clone());
    });
    let (_, app) =
        tls.create_app(json!({"name": "dn", "tlsClientAuth": {"sanDns": "svc-a.internal"}}));
    let form = format!(
        "grant_type=client_credentials&client_id={}",
        app["app"]["clientId"].as_str().unwrap()
    );
    let (_, body) = tls.token(Some(&tls.pki.issued), &form);
    let token = body["access_token"].as_str().unwrap().to_string();
    // The JWKS as a file: offline, as a resource server that caches it.
    let jwks = tls._dir.path().join("jwks.json");
    let (_, keys) =
        curl(&tls.pki.ca.cert, None, &[&format!("{}/.well-known/jwks.json", tls.server.url)]);
    std::fs::write(&jwks, keys).unwrap();
    let verify = |cert: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(["token", "verify", "--jwks"]).arg(&jwks);
        if let Some(cert) = cert {
            cmd.arg("--client-cert").arg(cert);
        }
        let out = cmd.arg(&token).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert!(verify(Some(&tls.pki.issued.cert)).0);
    let (ok, said) = verify(None);
    assert!(!ok && said.contains("client certificate"), "{said}");
    let (ok, said) = verify(Some(&tls.pki.stranger.cert));
    assert!(!ok && said.contains("another client certificate"), "{said}");
}
