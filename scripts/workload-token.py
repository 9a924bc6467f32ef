#!/usr/bin/env python3
"""A workload identity token for a load run (docs/api.md, "Workload identity federation"):
an RS256 JWT as a CI system or a cluster would mint it, with no jti, so that one token can be
sent again and again until it expires, and the JWK Set to register its issuer with.

    scripts/workload-token.py ISSUER SUBJECT AUDIENCE

prints {"jwks": {...}, "token": "..."} on stdout. Needs `cryptography`."""

import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def number(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


issuer, subject, audience = sys.argv[1:4]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public = key.public_key().public_numbers()
jwks = {"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
                  "n": number(public.n), "e": number(public.e)}]}
now = int(time.time())
header = {"alg": "RS256", "typ": "JWT", "kid": "bench"}
claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now,
          "exp": now + 3600, "repository": "acme/web", "ref": "refs/heads/main"}
signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
print(json.dumps({"jwks": jwks, "token": f"{signing_input}.{b64(signature)}"}))
