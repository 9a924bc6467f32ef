//! Public keys that verify JWS signatures from outside: DPoP proofs (Ed25519, P-256) and
//! trusted issuers' workload tokens (RSA, P-256, Ed25519). Where the CPU has what graviola's
//! formally verified assembly needs, P-256 and RSA use it (four and over ten times faster than
//! the portable crates here); elsewhere the portable RustCrypto crates do the same work. No C.

/// A decoded public key, checked once, ready to verify with.
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    #[cfg(target_arch = "x86_64")]
    P256Fast(Box<graviola::signing::ecdsa::VerifyingKey<graviola::signing::ecdsa::P256>>),
    Rsa(Box<rsa::RsaPublicKey>),
    #[cfg(target_arch = "x86_64")]
    RsaFast(Box<graviola::signing::rsa::VerifyingKey>),
}

/// RFC 7518 §3.3: smaller RSA moduli are refused.
pub const MIN_RSA_BYTES: usize = 256;
/// Larger than any key in use, and bounds the work one verification can cost.
pub const MAX_RSA_BYTES: usize = 512;

impl PublicKey {
    /// An Ed25519 key; a small-order one is refused, since it "verifies" signatures nobody
    /// made, and that is what lets [`verify`](Self::verify) use the cofactorless equation.
    pub fn ed25519(x: &[u8; 32]) -> Option<PublicKey> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(x).ok()?;
        (!key.is_weak()).then_some(PublicKey::Ed25519(key))
    }

    /// A P-256 key from its affine coordinates; a point off the curve is refused.
    pub fn p256(x: &[u8; 32], y: &[u8; 32]) -> Option<PublicKey> {
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[1..33].copy_from_slice(x);
        point[33..].copy_from_slice(y);
        #[cfg(target_arch = "x86_64")]
        if fast_cpu() {
            let key = graviola::signing::ecdsa::VerifyingKey::from_x962_uncompressed(&point);
            return key.ok().map(|k| PublicKey::P256Fast(Box::new(k)));
        }
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok().map(PublicKey::P256)
    }

    /// An RSA key from its big-endian modulus and exponent, 2048 to 4096 bits, odd exponent
    /// of at least 3.
    pub fn rsa(n: &[u8], e: &[u8]) -> Option<PublicKey> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        if !(MIN_RSA_BYTES..=MAX_RSA_BYTES).contains(&n.len()) || e.is_empty() || e.len() > 8 {
            return None;
        }
        if e.last().is_none_or(|b| b & 1 == 0) || (e.len() == 1 && e[0] < 3) {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if fast_cpu() {
            let key = graviola::signing::rsa::VerifyingKey::from_pkcs1_der(&pkcs1_der(n, e));
            return key.ok().map(|k| PublicKey::RsaFast(Box::new(k)));
        }
        let key =
            rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e));
        key.ok().map(|k| PublicKey::Rsa(Box::new(k)))
    }

    /// The JWS `alg` this key verifies: `EdDSA`, `ES256` or `RS256`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "EdDSA",
            PublicKey::P256(_) => "ES256",
            #[cfg(target_arch = "x86_64")]
            PublicKey::P256Fast(_) => "ES256",
            PublicKey::Rsa(_) => "RS256",
            #[cfg(target_arch = "x86_64")]
            PublicKey::RsaFast(_) => "RS256",
        }
    }

    /// Whether `signature` is this key's JWS signature over `signed` (RFC 7515 §5.2): Ed25519,
    /// ECDSA P-256 with SHA-256 as 64 bytes r‖s (RFC 7518 §3.4, never DER; both s and n−s
    /// pass, as ECDSA defines), or RSASSA-PKCS1-v1_5 with SHA-256.
    pub fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
        match self {
            // Cofactorless: the key was checked not to be weak, and a second spelling of a
            // signature gains nothing where replay is judged by claims, never by signature bytes.
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| ed25519_dalek::Verifier::verify(key, signed, &s).is_ok()),
            PublicKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| p256::ecdsa::signature::Verifier::verify(key, signed, &s).is_ok()),
            #[cfg(target_arch = "x86_64")]
            PublicKey::P256Fast(key) => {
                key.verify::<graviola::hashing::Sha256>(&[signed], signature).is_ok()
            }
            PublicKey::Rsa(key) => {
                use sha2::Digest;
                let scheme = rsa::Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
                };
                key.verify(scheme, &sha2::Sha256::digest(signed), signature).is_ok()
            }
            #[cfg(target_arch = "x86_64")]
            PublicKey::RsaFast(key) => key.verify_pkcs1_sha256(signature, signed).is_ok(),
        }
    }
}

/// RFC 8017 §9.2 note 1: the DER prefix of a SHA-256 DigestInfo.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Whether this CPU has what graviola requires of an x86-64 (it refuses to run without).
#[cfg(target_arch = "x86_64")]
fn fast_cpu() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("adx")
        && std::arch::is_x86_feature_detected!("avx")
        && std::arch::is_x86_feature_detected!("avx2")
}

/// RFC 8017 A.1.1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`,
/// in DER, from unsigned big-endian integers without leading zeros.
#[cfg(target_arch = "x86_64")]
fn pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn tlv(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        match body.len() {
            len @ 0..0x80 => out.push(len as u8),
            len @ 0x80..0x100 => out.extend([0x81, len as u8]),
            len => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(body);
    }
    fn integer(out: &mut Vec<u8>, value: &[u8]) {
        // A set top bit would read as negative: a zero byte first.
        let body = if value[0] & 0x80 != 0 { [&[0][..], value].concat() } else { value.to_vec() };
        tlv(out, 0x02, &body);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 8);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 4);
    tlv(&mut der, 0x30, &body);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn issue_13_rsa_verifies_on_either_path_and_refuses_weak_keys() {
        let signer =
            graviola::signing::rsa::SigningKey::generate(graviola::signing::rsa::KeySize::Rsa2048)
                .expect("key");
        let mut der = [0u8; 600];
        let der = signer.public_key().to_pkcs1_der(&mut der).expect("der").to_vec();
        // Read n and e back out of the DER (SEQUENCE, INTEGER n, INTEGER e).
        let (n, e) = split_pkcs1(&der);
        let message = b"header.payload";
        let mut out = [0u8; 256];
        let signature = signer.sign_pkcs1_sha256(&mut out, message).expect("signs").to_vec();
        let chosen = PublicKey::rsa(&n, &e).expect("a 2048-bit key");
        let portable = PublicKey::Rsa(Box::new(
            rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .expect("valid"),
        ));
        assert_eq!(pkcs1_der(strip_zeros(&n), &e), der);
        for key in [&chosen, &portable] {
            assert_eq!(key.algorithm(), "RS256");
            assert!(key.verify(message, &signature));
            assert!(!key.verify(b"header.payloae", &signature));
            let mut bent = signature.clone();
            bent[100] ^= 1;
            assert!(!key.verify(message, &bent));
            assert!(!key.verify(message, &signature[1..]));
        }
        assert!(PublicKey::rsa(&n[..128], &e).is_none(), "1024 bits");
        assert!(PublicKey::rsa(&n, &[1]).is_none(), "e = 1");
        assert!(PublicKey::rsa(&n, &[1, 0, 0]).is_none(), "even e");
    }

    #[test]
    fn both_p256_verifiers_agree() {
        use p256::ecdsa::signature::Signer;
        let signer = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("scalar");
        let point = signer.verifying_key().to_sec1_point(false);
        let (x, y) = point.as_bytes()[1..].split_at(32);
        let (x, y): ([u8; 32], [u8; 32]) = (x.try_into().expect("32"), y.try_into().expect("32"));
        let portable = PublicKey::P256(*signer.verifying_key());
        let chosen = PublicKey::p256(&x, &y).expect("on the curve");
        for message in [&b"a"[..], b"another message", b""] {
            let signature: p256::ecdsa::Signature = signer.sign(message);
            let high = p256::ecdsa::Signature::from_scalars(signature.r(), -*signature.s())
                .expect("nonzero");
            for key in [&portable, &chosen] {
                assert!(key.verify(message, &signature.to_bytes()));
                // (r, n − s) is the same signature to both.
                assert!(key.verify(message, &high.to_bytes()));
                let mut bent = signature.to_bytes().to_vec();
                bent[40] ^= 1;
                assert!(!key.verify(message, &bent));
                assert!(!key.verify(b"other", &signature.to_bytes()));
            }
        }
        let mut off_curve = y;
        off_curve[31] ^= 1;
        assert!(PublicKey::p256(&x, &off_curve).is_none());
    }

    #[test]
    fn a_small_order_ed25519_key_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::ed25519(&identity).is_none());
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let public = PublicKey::ed25519(&key.verifying_key().to_bytes()).expect("a real key");
        let signature = ed25519_dalek::Signer::sign(&key, b"m").to_bytes();
        assert!(public.verify(b"m", &signature) && !public.verify(b"n", &signature));
    }

    #[cfg(target_arch = "x86_64")]
    fn split_pkcs1(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut at = 4; // SEQUENCE, 0x82, two length bytes
        let mut read = || {
            assert_eq!(der[at], 0x02);
            let (len, skip) = match der[at + 1] {
                0x82 => (((der[at + 2] as usize) << 8) | der[at + 3] as usize, 4),
                0x81 => (der[at + 2] as usize, 3),
                len => (len as usize, 2),
            };
            let value = der[at + skip..at + skip + len].to_vec();
            at += skip + len;
            value
        };
        let n = read();
        let e = read();
        (n, e)
    }
}
