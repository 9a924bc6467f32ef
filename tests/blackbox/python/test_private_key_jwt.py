"""private_key_jwt (RFC 7523 §2.2) with Authlib's PrivateKeyJWT and an Ed25519 joserfc key;
hand-made assertions (PyJWT) for the cases a well-behaved library never sends."""

import time
import uuid

import jwt
import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.jwk import OKPKey

from conftest import REFRESH_GRANTS, TIMEOUT, fetch_token

# joserfc warns that RFC 9864 deprecates the name "EdDSA"; it is the one Tessera advertises.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class EdDSAPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's PrivateKeyJWT, with alg EdDSA and a short-lived assertion: Authlib's default
    lifetime is an hour, and Tessera accepts at most five minutes (see the test below)."""

    alg = "EdDSA"

    def __init__(self, token_endpoint=None, expires_in=60):
        super().__init__(token_endpoint)
        self.expires_in = expires_in

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            expires_in=self.expires_in,
        )


@pytest.fixture
def key():
    return OKPKey.generate_key("Ed25519")


@pytest.fixture
def jwt_app(admin, key):
    """A fresh app with a registered Ed25519 public key (and its secret, unused here)."""
    return admin.create_app(["read_app", "read_key"], public_key_jwk=key.as_dict(private=False))


def jwt_session(app, key, token_url, **kw):
    """OAuth2Session authenticating with private_key_jwt everywhere (Authlib picks the method
    for revocation separately); aud is always the token endpoint."""
    s = OAuth2Session(
        app["clientId"],
        key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
        **kw,
    )
    s.register_client_auth_method(EdDSAPrivateKeyJWT(token_url))
    return s


def assertion(key, client_id, aud, header=None, **claims):
    """A client assertion built by hand with PyJWT; a claim set to None is left out."""
    now = int(time.time())
    payload = {
        "iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
        "jti": uuid.uuid4().hex, **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    signing_key = key.private_key if isinstance(key, OKPKey) else key
    return jwt.encode(payload, signing_key, algorithm="EdDSA", headers=header)


def post_assertion(token_url, client_assertion, **extra):
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **extra,
    }
    return requests.post(token_url, data=data, timeout=TIMEOUT)


def test_authlib_private_key_jwt(jwt_app, key, token_url, verify, admin):
    s = jwt_session(jwt_app, key, token_url, scope="read_key")
    jtis = set()
    for _ in range(3):  # a fresh assertion (jti) per request
        token = s.fetch_token(token_url, grant_type="client_credentials")
        assert token["scope"] == "read_key"
        claims = verify(token["access_token"])
        assert claims["sub"] == claims["client_id"] == jwt_app["clientId"]
        jtis.add(claims["jti"])
    assert len(jtis) == 3
    assert admin.call("GET", "/api/v1/keys", token=token["access_token"]).status_code == 200
    # The secret still works beside the key.
    assert fetch_token(token_url, jwt_app["clientId"], jwt_app["secret"])["access_token"]


def test_metadata_advertises_private_key_jwt(metadata):
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == ["EdDSA"]


@pytest.mark.parametrize("aud", ["issuer", "/oauth2/v1/token", "/token", "/oauth2/token"])
def test_audience_may_be_a_token_endpoint_or_the_issuer(aud, jwt_app, key, base_url, verify):
    aud = base_url if aud == "issuer" else base_url + aud
    r = post_assertion(f"{base_url}/oauth2/v1/token", assertion(key, jwt_app["clientId"], aud))
    assert r.status_code == 200, r.text
    assert verify(r.json()["access_token"])["sub"] == jwt_app["clientId"]


def test_client_id_in_the_body_beside_the_assertion(jwt_app, key, token_url):
    a = assertion(key, jwt_app["clientId"], token_url)
    r = post_assertion(token_url, a, client_id=jwt_app["clientId"])
    assert r.status_code == 200, r.text


def test_replayed_assertion_is_invalid_client(jwt_app, key, token_url):
    a = assertion(key, jwt_app["clientId"], token_url)
    assert post_assertion(token_url, a).status_code == 200
    replay = post_assertion(token_url, a)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    # The same jti in a new assertion is a replay too.
    jti = jwt.decode(a, options={"verify_signature": False})["jti"]
    again = post_assertion(token_url, assertion(key, jwt_app["clientId"], token_url, jti=jti))
    assert again.status_code == 401


def test_authlib_default_one_hour_assertion_is_refused(jwt_app, key, token_url):
    s = OAuth2Session(jwt_app["clientId"], key, token_endpoint_auth_method="private_key_jwt")
    s.register_client_auth_method(PrivateKeyJWT(token_url, alg="EdDSA"))  # exp = iat + 3600
    with pytest.raises(OAuthError) as e:
        s.fetch_token(token_url, grant_type="client_credentials")
    assert e.value.error == "invalid_client"
    # At the limit (5 minutes) it is accepted.
    s = jwt_session(jwt_app, key, token_url)
    s.register_client_auth_method(EdDSAPrivateKeyJWT(token_url, expires_in=290))
    assert s.fetch_token(token_url, grant_type="client_credentials")["access_token"]


def _bad(case, key, client_id, token_url):
    now = int(time.time())
    other = OKPKey.generate_key("Ed25519")
    if case == "wrong_key":
        return assertion(other, client_id, token_url)
    if case == "expired":
        return assertion(key, client_id, token_url, iat=now - 600, exp=now - 300)
    if case == "exp_too_far":
        return assertion(key, client_id, token_url, exp=now + 3600)
    if case == "no_exp":
        return assertion(key, client_id, token_url, exp=None)
    if case == "no_jti":
        return assertion(key, client_id, token_url, jti=None)
    if case == "wrong_aud":
        return assertion(key, client_id, "https://elsewhere.example.com/token")
    if case == "sub_differs":
        return assertion(key, client_id, token_url, sub="someone-else")
    if case == "embedded_jwk":
        return assertion(other, client_id, token_url, header={"jwk": other.as_dict(private=False)})
    if case == "alg_none":
        signed = assertion(key, client_id, token_url)
        payload = jwt.decode(signed, options={"verify_signature": False})
        return jwt.encode(payload, None, algorithm="none")
    if case == "hs256":
        return jwt.encode(
            {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 60, "jti": "h"},
            "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256",
        )
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "wrong_key", "expired", "exp_too_far", "no_exp", "no_jti", "wrong_aud",
        "sub_differs", "embedded_jwk", "alg_none", "hs256",
    ],
)
def test_bad_assertions_are_invalid_client(case, jwt_app, key, token_url):
    r = post_assertion(token_url, _bad(case, key, jwt_app["clientId"], token_url))
    assert r.status_code == 401, (case, r.text)
    assert r.json()["error"] == "invalid_client"
    assert "access_token" not in r.json()


def test_app_without_a_key_cannot_use_private_key_jwt(admin, key, token_url):
    app = admin.create_app(["read_app"])
    r = post_assertion(token_url, assertion(key, app["clientId"], token_url))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_assertion_and_secret_together_is_invalid_request(jwt_app, key, token_url):
    a = assertion(key, jwt_app["clientId"], token_url)
    r = post_assertion(token_url, a, client_id=jwt_app["clientId"], client_secret=jwt_app["secret"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    r = requests.post(
        token_url,
        data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": assertion(key, jwt_app["clientId"], token_url)},
        auth=(jwt_app["clientId"], jwt_app["secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_replacing_the_key_takes_effect(jwt_app, key, token_url, admin):
    new = OKPKey.generate_key("Ed25519")
    r = admin.call(
        "PUT", f"/api/v1/apps/{jwt_app['id']}", {"publicKeyJwk": new.as_dict(private=False)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["app"]["publicKeyJwk"]["x"] == new.as_dict()["x"]
    old_key = post_assertion(token_url, assertion(key, jwt_app["clientId"], token_url))
    assert old_key.status_code == 401
    new_key = post_assertion(token_url, assertion(new, jwt_app["clientId"], token_url))
    assert new_key.status_code == 200, new_key.text


def test_a_private_jwk_is_refused_at_registration(admin, key):
    r = admin.call(
        "POST", "/api/v1/apps",
        {"name": f"bb-{uuid.uuid4().hex[:10]}", "publicKeyJwk": key.as_dict(private=True)},
    )
    assert r.status_code == 400, r.text
    assert "publicKeyJwk" in r.json()["message"]


def test_private_key_jwt_with_refresh_introspection_and_revocation(
    admin, key, token_url, introspect_url, revoke_url
):
    app = admin.create_app(
        ["read_key"], grant_types=REFRESH_GRANTS, public_key_jwk=key.as_dict(private=False)
    )
    s = jwt_session(app, key, token_url)
    first = dict(s.fetch_token(token_url, grant_type="client_credentials"))
    second = dict(s.refresh_token(token_url))  # the refresh request carries an assertion too
    assert second["refresh_token"] != first["refresh_token"]

    # Authlib signs every request with aud = the registered token endpoint, so the same auth
    # works at introspection and revocation.
    r = s.introspect_token(introspect_url, token=second["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True and r.json()["client_id"] == app["clientId"]

    r = s.revoke_token(revoke_url, token=second["refresh_token"], token_type_hint="refresh_token")
    assert r.status_code == 200, r.text
    r = s.introspect_token(introspect_url, token=second["access_token"])
    assert r.json() == {"active": False}
    assert admin.call("GET", "/api/v1/keys", token=first["access_token"]).status_code == 401

    # Another app's valid assertion does not get to use this app's refresh tokens.
    other_key = OKPKey.generate_key("Ed25519")
    other = admin.create_app(
        ["read_key"], grant_types=REFRESH_GRANTS, public_key_jwk=other_key.as_dict(private=False)
    )
    fresh = s.fetch_token(token_url, grant_type="client_credentials")
    with pytest.raises(OAuthError) as e:
        jwt_session(other, other_key, token_url).refresh_token(
            token_url, refresh_token=fresh["refresh_token"]
        )
    assert e.value.error == "invalid_grant"
