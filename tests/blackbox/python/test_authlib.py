"""Authlib's OAuth2Session as a client_credentials client, tokens verified with PyJWT."""

import time

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError

from conftest import TOKEN_CLAIMS


def session(app, method, **kw):
    return OAuth2Session(
        app["clientId"], app["secret"], token_endpoint_auth_method=method, **kw
    )


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_fetch_token_and_verify(method, svc_app, token_url, verify, issuer):
    s = session(svc_app, method, scope="read_app")
    before = int(time.time())
    token = s.fetch_token(token_url, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read_app"
    assert token["expires_in"] == 3600
    assert abs(token["expires_on"] - (before + 3600)) <= 5
    assert "refresh_token" not in token

    claims = verify(token["access_token"])
    assert claims["iss"] == issuer
    assert claims["aud"] == issuer  # default_audience defaults to the issuer
    assert claims["sub"] == svc_app["clientId"]
    assert claims["client_id"] == svc_app["clientId"]
    assert claims["scope"] == "read_app"
    assert claims["exp"] == token["expires_on"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] <= int(time.time()) + 1
    for k, v in TOKEN_CLAIMS.items():
        assert claims[k] == v


def test_scope_omitted_gives_every_assigned_scope(svc_app, token_url, verify):
    token = session(svc_app, "client_secret_post").fetch_token(
        token_url, grant_type="client_credentials"
    )
    assert set(token["scope"].split()) == {"read_app", "write_app"}
    assert set(verify(token["access_token"])["scope"].split()) == {"read_app", "write_app"}


@pytest.mark.parametrize("param", ["audience", "resource"])
def test_audience_and_resource_become_aud(param, svc_app, token_url, verify):
    aud = f"https://{param}.api.example.com"
    token = session(svc_app, "client_secret_basic").fetch_token(
        token_url, grant_type="client_credentials", **{param: aud}
    )
    assert verify(token["access_token"], audience=aud)["aud"] == aud


def test_an_unregistered_resource_is_an_invalid_target(svc_app, token_url):
    s = session(svc_app, "client_secret_basic")
    with pytest.raises(OAuthError) as e:
        s.fetch_token(token_url, grant_type="client_credentials", resource="https://nope.example")
    assert e.value.error == "invalid_target"


@pytest.mark.parametrize(
    "path", ["/oauth2/v1/token", "/oauth2/token", "/token", "/authorization/token"]
)
def test_every_token_path(path, base_url, svc_app, verify):
    token = session(svc_app, "client_secret_basic", scope="write_app").fetch_token(
        base_url + path, grant_type="client_credentials"
    )
    assert verify(token["access_token"])["scope"] == "write_app"


def test_jti_unique(svc_app, token_url, verify):
    s = session(svc_app, "client_secret_basic")
    jtis = {
        verify(s.fetch_token(token_url, grant_type="client_credentials")["access_token"])["jti"]
        for _ in range(3)
    }
    assert len(jtis) == 3


def test_token_works_against_admin_api(svc_app, token_url, base_url):
    s = session(svc_app, "client_secret_basic", scope="read_app")
    s.fetch_token(token_url, grant_type="client_credentials")
    r = s.get(f"{base_url}/api/v1/apps", timeout=10)  # Authlib adds the Bearer header
    assert r.status_code == 200, r.text
    body = r.json()
    assert "apps" in body and "count" in body
    assert svc_app["clientId"] in {a["clientId"] for a in body["apps"]}
    assert all("secret" not in a for a in body["apps"])


def test_invalid_scope_is_an_oauth_error(svc_app, token_url):
    s = session(svc_app, "client_secret_basic", scope="read_app read_user")
    with pytest.raises(OAuthError) as e:
        s.fetch_token(token_url, grant_type="client_credentials")
    assert e.value.error == "invalid_scope"
    assert "read_user" in e.value.description


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_wrong_secret_is_invalid_client(method, admin, token_url):
    app = admin.create_app(["read_app"])
    app = {**app, "secret": app["secret"][:-4] + "XXXX"}
    with pytest.raises(OAuthError) as e:
        session(app, method).fetch_token(token_url, grant_type="client_credentials")
    assert e.value.error == "invalid_client"
