"""Shared fixtures for Tessera's black-box Python suite.

The suite never starts a server itself: run it through ../run.sh, which starts one and exports
TESSERA_URL, TESSERA_ROOT_CLIENT_ID and TESSERA_ROOT_CLIENT_SECRET.
"""

import base64
import json
import os
import uuid

import jwt
import pytest
import requests

# The server under test listens on plain-HTTP loopback; both OAuth libraries refuse http://
# token endpoints unless told otherwise.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

TIMEOUT = 10


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run tests/blackbox/run.sh", returncode=2)
    return value


@pytest.fixture(scope="session")
def base_url():
    return _env("TESSERA_URL").rstrip("/")


@pytest.fixture(scope="session")
def root_creds():
    return _env("TESSERA_ROOT_CLIENT_ID"), _env("TESSERA_ROOT_CLIENT_SECRET")


@pytest.fixture(scope="session")
def token_url(base_url):
    return f"{base_url}/oauth2/v1/token"


@pytest.fixture(scope="session")
def metadata(base_url):
    r = requests.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="session")
def issuer(metadata):
    return metadata["issuer"]


@pytest.fixture(scope="session")
def introspect_url(base_url):
    return f"{base_url}/oauth2/v1/introspect"


@pytest.fixture(scope="session")
def revoke_url(base_url):
    return f"{base_url}/oauth2/v1/revoke"


def fetch_token(token_url, client_id, client_secret, **params):
    """A plain RFC 6749 client_credentials request with client_secret_basic."""
    data = {"grant_type": "client_credentials", **params}
    r = requests.post(token_url, data=data, auth=(client_id, client_secret), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def root_token(token_url, root_creds):
    return fetch_token(token_url, *root_creds)["access_token"]


class Admin:
    def __init__(self, base_url, token):
        self.base_url = base_url
        self.token = token

    def call(self, method, path, body=None, token=None):
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return requests.request(
            method, f"{self.base_url}{path}", json=body, headers=headers, timeout=TIMEOUT
        )

    def create_app(
        self,
        scopes,
        token_claims=None,
        name=None,
        grant_types=None,
        public_key_jwk=None,
        resources=None,
    ):
        body = {"name": name or f"bb-{uuid.uuid4().hex[:10]}", "scopes": scopes}
        if resources is not None:
            body["resources"] = resources
        if token_claims is not None:
            body["tokenClaims"] = token_claims
        if grant_types is not None:
            body["grantTypes"] = grant_types
        if public_key_jwk is not None:
            body["publicKeyJwk"] = public_key_jwk
        r = self.call("POST", "/api/v1/apps", body)
        assert r.status_code == 201, r.text
        return r.json()["app"]

    def create_resource(self, identifier, scopes):
        body = {"identifier": identifier, "name": identifier, "scopes": scopes}
        r = self.call("POST", "/api/v1/resources", body)
        assert r.status_code == 201, r.text
        return r.json()["resource"]


@pytest.fixture(scope="session")
def admin(base_url, root_token):
    return Admin(base_url, root_token)


TOKEN_CLAIMS = {"tenant": "acme", "tier": 3}

# The APIs the suite asks tokens for (RFC 8707): registered once, each with the scopes the
# apps below are granted there.
RESOURCES = {
    "https://audience.api.example.com": ["read_app", "write_app"],
    "https://resource.api.example.com": ["read_app", "write_app"],
    "https://inventory.example.com": ["read_app"],
    "urn:bb:api": ["write_app"],
}


@pytest.fixture(scope="session")
def resources(admin):
    return {i: admin.create_resource(i, scopes) for i, scopes in RESOURCES.items()}


@pytest.fixture(scope="session")
def svc_app(admin, resources):
    """An ordinary s2s app with read_app and write_app, custom token claims, and a grant of
    every scope of every resource above."""
    return admin.create_app(["read_app", "write_app"], TOKEN_CLAIMS, resources=RESOURCES)


@pytest.fixture(scope="session")
def reader_app(admin):
    """An app holding only read_app."""
    return admin.create_app(["read_app"])


REFRESH_GRANTS = ["client_credentials", "refresh_token"]


@pytest.fixture
def refresh_app(admin):
    """A fresh app (per test) that also gets refresh tokens, holding read_app and read_key."""
    return admin.create_app(["read_app", "read_key"], grant_types=REFRESH_GRANTS)


def introspect(introspect_url, token, client_id, client_secret, **params):
    """Raw RFC 7662 request with client_secret_basic; returns the parsed 200 body."""
    r = requests.post(
        introspect_url,
        data={"token": token, **params},
        auth=(client_id, client_secret),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()


@pytest.fixture(scope="session")
def jwks_client(metadata):
    return jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True)


@pytest.fixture(scope="session")
def verify(jwks_client, issuer):
    """Verify an access token with PyJWT against the server's JWKS; return its claims."""

    def _verify(token, audience=None):
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "EdDSA"
        assert header["typ"] == "at+jwt"
        assert header.get("kid")
        key = jwks_client.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["EdDSA"],
            audience=audience or issuer,
            issuer=issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
        )

    return _verify


def b64url_json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
