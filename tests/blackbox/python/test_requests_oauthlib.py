"""requests-oauthlib's BackendApplicationClient (RFC 6749 §4.4) against Tessera."""

import pytest
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError
from requests_oauthlib import OAuth2Session


def backend_session(app):
    return OAuth2Session(client=BackendApplicationClient(client_id=app["clientId"]))


def test_basic_auth_with_scope(svc_app, token_url, verify):
    s = backend_session(svc_app)
    # client_secret without include_client_id -> HTTP Basic (client_secret_basic)
    token = s.fetch_token(
        token_url,
        client_id=svc_app["clientId"],
        client_secret=svc_app["secret"],
        scope=["read_app"],
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == ["read_app"]  # oauthlib splits the scope string
    claims = verify(token["access_token"])
    assert claims["scope"] == "read_app"
    assert claims["sub"] == svc_app["clientId"]

    r = s.get(token_url.rsplit("/oauth2/", 1)[0] + "/api/v1/apps", timeout=10)
    assert r.status_code == 200, r.text


def test_credentials_in_body(svc_app, token_url, verify):
    # include_client_id=True puts client_id and client_secret in the body (client_secret_post)
    token = backend_session(svc_app).fetch_token(
        token_url,
        client_id=svc_app["clientId"],
        client_secret=svc_app["secret"],
        include_client_id=True,
    )
    assert set(token["scope"]) == {"read_app", "write_app"}
    assert verify(token["access_token"])["client_id"] == svc_app["clientId"]


def test_invalid_scope(svc_app, token_url):
    with pytest.raises(InvalidScopeError) as e:
        backend_session(svc_app).fetch_token(
            token_url,
            client_id=svc_app["clientId"],
            client_secret=svc_app["secret"],
            scope=["read_app", "write_key"],
        )
    assert "write_key" in e.value.description


def test_unknown_client(svc_app, token_url):
    with pytest.raises(InvalidClientError):
        OAuth2Session(client=BackendApplicationClient(client_id="no-such-client")).fetch_token(
            token_url, client_id="no-such-client", client_secret=svc_app["secret"]
        )
