"""RFC 7662 introspection and RFC 7009 revocation through Authlib's OAuth2Session
(`introspect_token`, `revoke_token`), checked against the admin API and PyJWT."""

import time

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import REFRESH_GRANTS, TIMEOUT, fetch_token

INACTIVE = {"active": False}


def session(app, method="client_secret_basic"):
    return OAuth2Session(app["clientId"], app["secret"], token_endpoint_auth_method=method)


def introspected(app, url, token, **kw):
    r = session(app).introspect_token(url, token=token, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def revoked(app, url, token, method="client_secret_basic", **kw):
    r = session(app, method).revoke_token(url, token=token, **kw)
    assert r.status_code == 200, r.text
    return r


def keys_status(admin, access_token):
    return admin.call("GET", "/api/v1/keys", token=access_token).status_code


# --- introspection ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_active_access_token(method, admin, token_url, introspect_url, verify, issuer):
    owner = admin.create_app(["read_app", "read_key"], token_claims={"tenant": "t1"})
    caller = admin.create_app([])  # any authenticated app may introspect
    token = fetch_token(token_url, owner["clientId"], owner["secret"], scope="read_key")
    r = session(caller, method).introspect_token(introspect_url, token=token["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    claims = verify(token["access_token"])
    assert body == {
        "active": True,
        "scope": "read_key",
        "client_id": owner["clientId"],
        "token_type": "Bearer",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "sub": owner["clientId"],
        "aud": issuer,
        "iss": issuer,
        "jti": claims["jti"],
    }
    assert body["exp"] == token["expires_on"]
    assert body["iat"] <= time.time() + 1 < body["exp"]


def test_access_token_with_own_audience(admin, resources, token_url, introspect_url):
    aud = "https://inventory.example.com"
    app = admin.create_app(["read_app"], resources={aud: ["read_app"]})
    token = fetch_token(token_url, app["clientId"], app["secret"], audience=aud)
    body = introspected(app, introspect_url, token["access_token"], token_type_hint="access_token")
    assert body["active"] is True
    assert body["aud"] == aud


def test_active_refresh_token(admin, token_url, introspect_url, issuer):
    app = admin.create_app(["read_app", "read_key"], grant_types=REFRESH_GRANTS)
    token = fetch_token(token_url, app["clientId"], app["secret"], scope="read_app")
    body = introspected(
        app, introspect_url, token["refresh_token"], token_type_hint="refresh_token"
    )
    assert body["active"] is True
    assert body["client_id"] == body["sub"] == app["clientId"]
    assert body["scope"] == "read_app"
    assert body["token_type"] == "refresh_token"
    assert body["iss"] == issuer
    assert body["iat"] <= time.time() + 1 < body["exp"]


def _foreign_jwt(issuer, client_id):
    """A well-formed at+jwt with our issuer's claims, signed by a key the server never had."""
    now = int(time.time())
    claims = {
        "iss": issuer, "sub": client_id, "aud": issuer, "exp": now + 600, "iat": now,
        "nbf": now, "jti": "forged-jti", "client_id": client_id, "scope": "root",
    }
    return jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
        headers={"typ": "at+jwt", "kid": "not-a-tessera-kid"},
    )


@pytest.mark.parametrize(
    "kind", ["garbage", "foreign_jwt", "tampered_jwt", "unknown_refresh", "dotted_garbage"]
)
def test_anything_not_valid_is_exactly_inactive(kind, admin, token_url, introspect_url, issuer):
    app = admin.create_app(["read_app"])
    good = fetch_token(token_url, app["clientId"], app["secret"])["access_token"]
    h, p, s = good.split(".")
    token = {
        "garbage": "definitely-not-a-token",
        "foreign_jwt": _foreign_jwt(issuer, app["clientId"]),
        "tampered_jwt": f"{h}.{p}.{s[:-6]}{'AAAAAA' if not s.endswith('AAAAAA') else 'BBBBBB'}",
        "unknown_refresh": "R" * 65,
        "dotted_garbage": "x.y.z",
    }[kind]
    r = session(app).introspect_token(introspect_url, token=token, token_type_hint="access_token")
    assert r.status_code == 200, r.text
    assert r.json() == INACTIVE


def test_token_of_a_disabled_app_is_inactive(admin, token_url, introspect_url):
    owner = admin.create_app(["read_app"])
    caller = admin.create_app([])
    at = fetch_token(token_url, owner["clientId"], owner["secret"])["access_token"]
    assert introspected(caller, introspect_url, at)["active"] is True
    r = admin.call("PUT", f"/api/v1/apps/{owner['id']}", {"isActive": False})
    assert r.status_code == 200, r.text
    assert introspected(caller, introspect_url, at) == INACTIVE


def test_introspection_requires_client_authentication(admin, token_url, introspect_url):
    app = admin.create_app(["read_app"])
    at = fetch_token(token_url, app["clientId"], app["secret"])["access_token"]
    anonymous = requests.post(introspect_url, data={"token": at}, timeout=TIMEOUT)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    assert "active" not in anonymous.json()

    wrong = session({**app, "secret": "q" * 43}).introspect_token(introspect_url, token=at)
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="tessera"'
    assert wrong.json()["error"] == "invalid_client"

    # RFC 6749 §3.2: a parameter without a value counts as omitted; `token` is required.
    for data in ("token_type_hint=access_token", "token="):
        missing = requests.post(
            introspect_url,
            data=data,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(app["clientId"], app["secret"]),
            timeout=TIMEOUT,
        )
        assert missing.status_code == 400, data
        assert missing.json()["error"] == "invalid_request", data


# --- revocation ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_revoked_access_token_is_refused_at_once(
    method, admin, token_url, introspect_url, revoke_url
):
    app = admin.create_app(["read_key"])
    at = fetch_token(token_url, app["clientId"], app["secret"])["access_token"]
    other = fetch_token(token_url, app["clientId"], app["secret"])["access_token"]
    assert keys_status(admin, at) == 200

    r = revoked(app, revoke_url, at, method, token_type_hint="access_token")
    assert r.headers["Cache-Control"] == "no-store"
    assert keys_status(admin, at) == 401
    assert introspected(app, introspect_url, at) == INACTIVE
    # Only that token: another one of the same app is untouched.
    assert keys_status(admin, other) == 200
    assert introspected(app, introspect_url, other)["active"] is True
    # Revoking twice is still 200.
    revoked(app, revoke_url, at)


def test_wrong_hint_still_revokes(admin, token_url, introspect_url, revoke_url):
    app = admin.create_app(["read_key"])
    at = fetch_token(token_url, app["clientId"], app["secret"])["access_token"]
    revoked(app, revoke_url, at, token_type_hint="refresh_token")
    assert keys_status(admin, at) == 401
    assert introspected(app, introspect_url, at) == INACTIVE


@pytest.mark.parametrize("token", ["unknown-token", "U" * 43, "a.b.c"])
def test_unknown_tokens_get_200(token, admin, revoke_url):
    app = admin.create_app(["read_app"])
    r = revoked(app, revoke_url, token)
    assert r.content == b""


def test_only_the_owner_can_revoke(admin, token_url, introspect_url, revoke_url):
    owner = admin.create_app(["read_key"], grant_types=REFRESH_GRANTS)
    intruder = admin.create_app(["read_key"], grant_types=REFRESH_GRANTS)
    token = fetch_token(token_url, owner["clientId"], owner["secret"])
    # RFC 7009 §2.1: the server checks ownership, but answers 200 either way.
    revoked(intruder, revoke_url, token["access_token"])
    revoked(intruder, revoke_url, token["refresh_token"])
    assert keys_status(admin, token["access_token"]) == 200
    assert introspected(owner, introspect_url, token["access_token"])["active"] is True
    assert introspected(owner, introspect_url, token["refresh_token"])["active"] is True
    r = session(owner).refresh_token(token_url, refresh_token=token["refresh_token"])
    assert keys_status(admin, r["access_token"]) == 200


def test_revoking_a_refresh_token_ends_its_family(admin, token_url, introspect_url, revoke_url):
    app = admin.create_app(["read_key"], grant_types=REFRESH_GRANTS)
    s = session(app)
    first = dict(s.fetch_token(token_url, grant_type="client_credentials"))
    second = dict(s.refresh_token(token_url))
    unrelated = fetch_token(token_url, app["clientId"], app["secret"])  # another family

    revoked(app, revoke_url, second["refresh_token"], token_type_hint="refresh_token")
    for t in (first, second):
        assert keys_status(admin, t["access_token"]) == 401
        assert introspected(app, introspect_url, t["access_token"]) == INACTIVE
    assert introspected(app, introspect_url, second["refresh_token"]) == INACTIVE
    r = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    # The other family is untouched.
    assert keys_status(admin, unrelated["access_token"]) == 200
    assert introspected(app, introspect_url, unrelated["refresh_token"])["active"] is True


def test_revocation_requires_client_authentication(admin, token_url, revoke_url):
    app = admin.create_app(["read_key"])
    at = fetch_token(token_url, app["clientId"], app["secret"])["access_token"]
    r = requests.post(revoke_url, data={"token": at}, timeout=TIMEOUT)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert keys_status(admin, at) == 200
