"""Wire-level checks with plain `requests`: seed shapes, errors, discovery, JWKS, admin auth."""

import base64
import time

import jwt
import pytest
import requests

from conftest import TIMEOUT, b64url_json, fetch_token

ESCALATION_MSG = "Only an app with the root scope can assign the root scope to an app."


def basic(client_id, secret, scheme="Basic"):
    return f"{scheme} " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assert_token_response(r, scope):
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == scope
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert abs(body["expires_on"] - (int(time.time()) + body["expires_in"])) <= 5
    return body


# --- token endpoint -----------------------------------------------------------------------


def test_seed000_lowercase_basic_form_body(svc_app, token_url, verify):
    """Melody Auth's S2S API example: `Authorization: basic ...`, urlencoded body, scope 'read_app'."""
    r = requests.post(
        token_url,
        data="grant_type=client_credentials&scope=read_app",
        headers={
            "Content-type": "application/x-www-form-urlencoded",
            "Authorization": basic(svc_app["clientId"], svc_app["secret"], "basic"),
        },
        timeout=TIMEOUT,
    )
    body = assert_token_response(r, "read_app")
    assert verify(body["access_token"])["scope"] == "read_app"


def test_stytch_json_body(svc_app, base_url, verify):
    """Stytch's M2M token request shape: JSON body with client_id, client_secret and grant_type."""
    r = requests.post(
        f"{base_url}/oauth2/token",
        json={
            "client_id": svc_app["clientId"],
            "client_secret": svc_app["secret"],
            "grant_type": "client_credentials",
        },
        timeout=TIMEOUT,
    )
    body = assert_token_response(r, "read_app write_app")
    assert verify(body["access_token"])["sub"] == svc_app["clientId"]


def test_json_body_with_scope_and_audience(svc_app, token_url, verify):
    r = requests.post(
        token_url,
        json={
            "grant_type": "client_credentials",
            "scope": "write_app",
            "audience": "urn:bb:api",
        },
        headers={"Authorization": basic(svc_app["clientId"], svc_app["secret"])},
        timeout=TIMEOUT,
    )
    body = assert_token_response(r, "write_app")
    assert verify(body["access_token"], audience="urn:bb:api")["aud"] == "urn:bb:api"


def test_invalid_scope_names_the_scope(svc_app, token_url):
    r = requests.post(
        token_url,
        data={"grant_type": "client_credentials", "scope": "read_app write_user"},
        auth=(svc_app["clientId"], svc_app["secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_scope"
    assert "write_user" in body["error_description"]
    assert "access_token" not in body


def test_unknown_client_and_wrong_secret_look_the_same(admin, token_url):
    app = admin.create_app(["read_app"])
    data = {"grant_type": "client_credentials"}
    # The same request id for both, so that the answers can be compared byte for byte.
    same_id = {"X-Request-Id": "bb-compare-1"}
    unknown = requests.post(
        token_url, data=data, auth=("bb-unknown-client", app["secret"]), headers=same_id,
        timeout=TIMEOUT,
    )
    wrong = requests.post(
        token_url, data=data, auth=(app["clientId"], "x" * 43), headers=same_id, timeout=TIMEOUT
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.json()["request_id"] == "bb-compare-1"
    assert unknown.json()["error"] == "invalid_client"
    for r in (unknown, wrong):
        assert r.headers["WWW-Authenticate"] == 'Basic realm="tessera"'


def test_wrong_secret_in_body_is_invalid_client(admin, token_url):
    app = admin.create_app(["read_app"])
    r = requests.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": app["clientId"],
            "client_secret": "y" * 43,
        },
        timeout=TIMEOUT,
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_unsupported_grant_type(svc_app, token_url):
    r = requests.post(
        token_url,
        data={"grant_type": "password", "username": "u", "password": "p"},
        auth=(svc_app["clientId"], svc_app["secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "data, why",
    [
        ({"scope": "read_app"}, "missing grant_type"),
        ("grant_type=client_credentials&grant_type=client_credentials", "repeated parameter"),
        ("both", "two auth methods"),
    ],
)
def test_invalid_request(data, why, svc_app, token_url):
    auth = (svc_app["clientId"], svc_app["secret"])
    if data == "both":
        data = {
            "grant_type": "client_credentials",
            "client_id": svc_app["clientId"],
            "client_secret": svc_app["secret"],
        }
    r = requests.post(
        token_url,
        data=data,
        auth=auth,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 400, why
    assert r.json()["error"] == "invalid_request", why


def test_other_content_type_is_415(svc_app, token_url):
    r = requests.post(
        token_url,
        data="grant_type=client_credentials",
        headers={"Content-Type": "text/plain"},
        auth=(svc_app["clientId"], svc_app["secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 415


def test_body_over_64k_is_413(svc_app, token_url):
    r = requests.post(
        token_url,
        data={"grant_type": "client_credentials", "pad": "a" * (64 * 1024 + 1)},
        auth=(svc_app["clientId"], svc_app["secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 413


def test_get_on_token_endpoint_is_405(token_url):
    r = requests.get(token_url, timeout=TIMEOUT)
    assert r.status_code == 405


# --- discovery and keys -------------------------------------------------------------------


def test_discovery_metadata(base_url):
    a = requests.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    b = requests.get(f"{base_url}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert a.status_code == b.status_code == 200
    md = a.json()
    assert b.json() == md
    assert md["issuer"] == base_url
    assert md["token_endpoint"] == f"{base_url}/oauth2/v1/token"
    assert md["jwks_uri"] == f"{base_url}/.well-known/jwks.json"
    assert "client_credentials" in md["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        md["token_endpoint_auth_methods_supported"]
    )
    assert md["token_endpoint_auth_signing_alg_values_supported"] == ["EdDSA"]
    assert {"root", "read_app", "write_app"} <= set(md["scopes_supported"])


def test_discovery_metadata_names_introspection_and_revocation(base_url):
    md = requests.get(
        f"{base_url}/.well-known/oauth-authorization-server", timeout=TIMEOUT
    ).json()
    assert md["introspection_endpoint"] == f"{base_url}/oauth2/v1/introspect"
    assert md["revocation_endpoint"] == f"{base_url}/oauth2/v1/revoke"
    assert {"client_credentials", "refresh_token"} <= set(md["grant_types_supported"])
    assert "private_key_jwt" in md["token_endpoint_auth_methods_supported"]
    # Both endpoints exist and want client authentication (not 404).
    for url in (md["introspection_endpoint"], md["revocation_endpoint"]):
        r = requests.post(url, data={"token": "x"}, timeout=TIMEOUT)
        assert r.status_code == 401, url
        assert r.json()["error"] == "invalid_client"


def test_jwks_shape_cache_headers_and_304(base_url, root_token):
    r = requests.get(f"{base_url}/.well-known/jwks.json", timeout=TIMEOUT)
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert keys
    for k in keys:
        assert k["kty"] == "OKP" and k["crv"] == "Ed25519"
        assert k["use"] == "sig" and k["alg"] == "EdDSA"
        assert k["kid"] and k["x"]
        assert len(base64.urlsafe_b64decode(k["x"] + "=")) == 32
        assert not {"d", "p", "q"} & set(k), "private material in the JWKS"
    assert jwt.get_unverified_header(root_token)["kid"] in {k["kid"] for k in keys}

    cc = r.headers["Cache-Control"]
    assert "public" in cc and "max-age=" in cc
    assert int(cc.split("max-age=")[1].split(",")[0]) > 0
    etag = r.headers["ETag"]
    assert etag

    again = requests.get(
        f"{base_url}/.well-known/jwks.json", headers={"If-None-Match": etag}, timeout=TIMEOUT
    )
    assert again.status_code == 304
    assert again.content == b""

    stale = requests.get(
        f"{base_url}/.well-known/jwks.json",
        headers={"If-None-Match": '"not-the-etag"'},
        timeout=TIMEOUT,
    )
    assert stale.status_code == 200

    alias = requests.get(f"{base_url}/oauth2/v1/jwks", timeout=TIMEOUT)
    assert alias.status_code == 200
    assert alias.json() == r.json()


def test_token_signed_with_a_published_key_only(root_token, verify):
    header_b64, payload_b64, sig = root_token.split(".")
    claims = b64url_json(payload_b64)
    claims["scope"] = "root write_app"
    forged_payload = (
        base64.urlsafe_b64encode(
            __import__("json").dumps(claims, separators=(",", ":")).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify(f"{header_b64}.{forged_payload}.{sig}")


# --- admin API authentication -------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer not-a-jwt", "Bearer eyJ.eyJ.sig"])
def test_admin_bad_or_missing_token_is_401(auth, base_url):
    headers = {"Authorization": auth} if auth else {}
    r = requests.get(f"{base_url}/api/v1/apps", headers=headers, timeout=TIMEOUT)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert r.json()["error"] == "invalid_token"


def test_admin_forged_token_is_401(base_url, root_token):
    h, p, s = root_token.split(".")
    tampered = f"{h}.{p}.{s[:-4]}{'AAAA' if not s.endswith('AAAA') else 'BBBB'}"
    r = requests.get(
        f"{base_url}/api/v1/apps",
        headers={"Authorization": f"Bearer {tampered}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "method, path, needed",
    [
        ("POST", "/api/v1/apps", "write_app"),
        ("GET", "/api/v1/keys", "read_key"),
    ],
)
def test_admin_missing_scope_is_403(method, path, needed, reader_app, token_url, admin):
    token = fetch_token(token_url, reader_app["clientId"], reader_app["secret"])["access_token"]
    r = admin.call(method, path, {"name": "nope", "scopes": []}, token=token)
    assert r.status_code == 403
    assert (
        r.headers["WWW-Authenticate"]
        == f'Bearer error="insufficient_scope", scope="{needed}"'
    )
    assert r.json()["error"] == "insufficient_scope"


def test_info_needs_only_a_valid_token(reader_app, token_url, admin, base_url):
    token = fetch_token(token_url, reader_app["clientId"], reader_app["secret"])["access_token"]
    r = admin.call("GET", "/info", token=token)
    assert r.status_code == 200, r.text
    assert r.json()["configs"]["issuer"] == base_url
    assert requests.get(f"{base_url}/info", timeout=TIMEOUT).status_code == 401


def test_non_root_cannot_assign_root(svc_app, token_url, admin):
    token = fetch_token(token_url, svc_app["clientId"], svc_app["secret"])["access_token"]
    name = "bb-escalation-attempt"
    r = admin.call("POST", "/api/v1/apps", {"name": name, "scopes": ["root"]}, token=token)
    assert r.status_code == 400
    body = r.json()
    assert body.pop("request_id") == r.headers["X-Request-Id"]
    assert body == {"error": "invalid_request", "message": ESCALATION_MSG}

    # Same rule on update, and nothing changed.
    target = admin.create_app(["read_app"])
    r = admin.call(
        "PUT",
        f"/api/v1/apps/{target['id']}",
        {"scopes": ["read_app", "root"]},
        token=token,
    )
    assert r.status_code == 400
    body = r.json()
    assert body.pop("request_id") == r.headers["X-Request-Id"]
    assert body == {"error": "invalid_request", "message": ESCALATION_MSG}

    r = admin.call("GET", f"/api/v1/apps/{target['id']}")
    assert r.status_code == 200
    assert r.json()["app"]["scopes"] == ["read_app"]
    listed = admin.call("GET", "/api/v1/apps?pageSize=100").json()["apps"]
    assert name not in {a["name"] for a in listed}


def test_root_may_assign_root(admin, token_url, verify):
    app = admin.create_app(["root"])
    token = fetch_token(token_url, app["clientId"], app["secret"])
    assert verify(token["access_token"])["scope"] == "root"
    r = admin.call("DELETE", f"/api/v1/apps/{app['id']}")
    assert r.status_code in (200, 204), r.text


def test_health(base_url):
    r = requests.get(f"{base_url}/healthz", timeout=TIMEOUT)
    assert r.status_code == 200 and r.text == "ok"
    assert requests.get(f"{base_url}/readyz", timeout=TIMEOUT).status_code == 200
