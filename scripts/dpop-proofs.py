#!/usr/bin/env python3
"""Pre-signed DPoP proofs (RFC 9449 §4.2) for a load run: wrk cannot sign, and the server
accepts each jti once, so every request needs a proof of its own made beforehand.

    scripts/dpop-proofs.py ES256|EdDSA HTU FILE:COUNT [FILE:COUNT ...]

writes COUNT proofs, one a line, to each FILE, all signed by one fresh key (as one client's
would be) for POST to HTU, with jtis unique across every file. Prints the proofs made per
second on stderr, so a run can be sized to what this machine signs. Needs `cryptography`
(scripts/cpu-per-request.sh installs it in a throwaway venv when it is missing)."""

import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# The server takes a proof whose iat is within 60 s of its clock, either way. Dated ahead, the
# proofs are already valid when written and stay valid for the 50 + 60 s after: room for the
# signing itself, the server's start, a warm-up run and the measured run.
IAT_AHEAD = 50


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signer(alg):
    """A fresh key's public JWK, and a function signing bytes as JWS `alg` wants them."""
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
        }

        def sign(data):
            # JWS ES256 is r‖s, 32 bytes each (RFC 7518 §3.4); OpenSSL hands out DER.
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return jwk, sign
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}, key.sign
    sys.exit(f"alg must be ES256 or EdDSA, not {alg}")


def main(alg, htu, outputs):
    jwk, sign = signer(alg)
    compact = {"separators": (",", ":")}
    header = b64(json.dumps({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}, **compact).encode())
    iat = int(time.time()) + IAT_AHEAD
    # One key, one iat: only the jti changes, so the claims are a fixed prefix and a counter.
    # The random part keeps jtis apart between runs of this script too.
    run = os.urandom(6).hex()
    prefix = json.dumps({"htm": "POST", "htu": htu, "iat": iat}, **compact)[:-1]
    started = time.monotonic()
    made = 0
    for output in outputs:
        path, count = output.rsplit(":", 1)
        with open(path, "w") as f:
            for _ in range(int(count)):
                claims = b64(f'{prefix},"jti":"{run}-{made}"}}'.encode())
                signed = f"{header}.{claims}"
                f.write(f"{signed}.{b64(sign(signed.encode()))}\n")
                made += 1
    elapsed = time.monotonic() - started
    print(f"{made} {alg} proofs in {elapsed:.1f} s, {made / elapsed:.0f}/s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
