"""The refresh_token grant (docs/api.md, Token endpoint) through Authlib's and requests-oauthlib's OAuth2Session:
opt-in refresh tokens with client_credentials, rotation on every use, reuse detection that ends
the whole family, refresh-token-only requests, client binding and scope narrowing."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError
from requests_oauthlib import OAuth2Session as OAuthlibSession

from conftest import REFRESH_GRANTS, TIMEOUT, introspect


def session(app, method="client_secret_basic", **kw):
    return OAuth2Session(
        app["clientId"], app["secret"], token_endpoint_auth_method=method, **kw
    )


def keys_status(admin, access_token):
    """Status of a call that needs read_key, made with `access_token`."""
    return admin.call("GET", "/api/v1/keys", token=access_token).status_code


def test_client_credentials_gives_refresh_token_only_when_opted_in(admin, token_url, refresh_app):
    plain = admin.create_app(["read_app"])
    assert "refresh_token" not in session(plain).fetch_token(
        token_url, grant_type="client_credentials"
    )
    token = session(refresh_app).fetch_token(token_url, grant_type="client_credentials")
    rt = token["refresh_token"]
    assert len(rt) == 65  # 16-byte selector + 32-byte secret, base64url without padding
    assert set(rt) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert refresh_app["grantTypes"] == REFRESH_GRANTS


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_refresh_rotates_on_every_use(method, refresh_app, token_url, verify, admin):
    s = session(refresh_app, method)
    first = s.fetch_token(token_url, grant_type="client_credentials")
    seen_rt, seen_jti = {first["refresh_token"]}, {verify(first["access_token"])["jti"]}
    for _ in range(3):
        token = s.refresh_token(token_url)  # uses and replaces s.token["refresh_token"]
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 3600
        assert set(token["scope"].split()) == {"read_app", "read_key"}
        assert token["refresh_token"] not in seen_rt
        assert len(token["refresh_token"]) == 65
        seen_rt.add(token["refresh_token"])
        claims = verify(token["access_token"])
        assert claims["sub"] == claims["client_id"] == refresh_app["clientId"]
        assert claims["jti"] not in seen_jti
        seen_jti.add(claims["jti"])
        assert s.token["refresh_token"] == token["refresh_token"]
    # Every access token issued along the chain works while the family is alive.
    assert keys_status(admin, s.token["access_token"]) == 200
    assert keys_status(admin, first["access_token"]) == 200


def test_spent_refresh_token_is_inactive_while_its_successor_is_active(
    refresh_app, token_url, introspect_url
):
    s = session(refresh_app)
    old = s.fetch_token(token_url, grant_type="client_credentials")["refresh_token"]
    new = s.refresh_token(token_url)["refresh_token"]
    creds = refresh_app["clientId"], refresh_app["secret"]
    # Introspection only reads: asking twice changes nothing, and spends nothing.
    for _ in range(2):
        assert introspect(introspect_url, old, *creds) == {"active": False}
        assert introspect(introspect_url, new, *creds)["active"] is True
    assert s.refresh_token(token_url)["refresh_token"] != new


def test_reusing_a_spent_refresh_token_revokes_the_family(
    refresh_app, token_url, admin, introspect_url
):
    s = session(refresh_app)
    first = dict(s.fetch_token(token_url, grant_type="client_credentials"))
    second = dict(s.refresh_token(token_url))
    third = dict(s.refresh_token(token_url))
    for t in (first, second, third):
        assert keys_status(admin, t["access_token"]) == 200

    # The first refresh token was spent by the first refresh: presenting it again is reuse.
    with pytest.raises(OAuthError) as e:
        s.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert e.value.error == "invalid_grant"

    # The whole family is gone: the newest, never-used refresh token ...
    with pytest.raises(OAuthError) as e:
        s.refresh_token(token_url, refresh_token=third["refresh_token"])
    assert e.value.error == "invalid_grant"
    # ... and every access token issued from it, at the admin API and at introspection.
    creds = refresh_app["clientId"], refresh_app["secret"]
    for t in (first, second, third):
        assert keys_status(admin, t["access_token"]) == 401
        assert introspect(introspect_url, t["access_token"], *creds) == {"active": False}
        assert introspect(introspect_url, t["refresh_token"], *creds) == {"active": False}
    # The app itself is fine: client_credentials opens a new, working family.
    fresh = session(refresh_app).fetch_token(token_url, grant_type="client_credentials")
    assert keys_status(admin, fresh["access_token"]) == 200
    assert session(refresh_app).refresh_token(token_url, refresh_token=fresh["refresh_token"])


def test_concurrent_use_of_one_refresh_token_has_one_winner(refresh_app, token_url, admin):
    rt = session(refresh_app).fetch_token(token_url, grant_type="client_credentials")[
        "refresh_token"
    ]
    data = {"grant_type": "refresh_token", "refresh_token": rt}
    auth = (refresh_app["clientId"], refresh_app["secret"])

    def attempt(_):
        return requests.post(token_url, data=data, auth=auth, timeout=TIMEOUT)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, range(6)))
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == 1, [(r.status_code, r.text) for r in answers]
    for r in answers:
        if r.status_code != 200:
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    # The losers presented a spent token: reuse, so the winner's family is gone as well.
    winner = ok[0].json()
    assert keys_status(admin, winner["access_token"]) == 401
    r = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
        auth=auth,
        timeout=TIMEOUT,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "change",
    [{"isActive": False}, {"grantTypes": ["client_credentials"]}],
    ids=["disabled", "grant_removed"],
)
def test_app_that_may_no_longer_refresh_loses_its_families(change, refresh_app, token_url, admin):
    s = session(refresh_app)
    rt = s.fetch_token(token_url, grant_type="client_credentials")["refresh_token"]
    r = admin.call("PUT", f"/api/v1/apps/{refresh_app['id']}", change)
    assert r.status_code == 200, r.text
    refused = requests.post(
        token_url, data={"grant_type": "refresh_token", "refresh_token": rt}, timeout=TIMEOUT
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    # Restoring the app does not bring the ended family back.
    r = admin.call(
        "PUT", f"/api/v1/apps/{refresh_app['id']}", {"isActive": True, "grantTypes": REFRESH_GRANTS}
    )
    assert r.status_code == 200, r.text
    with pytest.raises(OAuthError) as e:
        s.refresh_token(token_url, refresh_token=rt)
    assert e.value.error == "invalid_grant"


def test_refresh_token_alone_is_accepted(refresh_app, token_url, verify):
    rt = session(refresh_app).fetch_token(token_url, grant_type="client_credentials")[
        "refresh_token"
    ]
    # Authlib's "none" method: a public-client style request, client_id in the body, no secret.
    public = OAuth2Session(refresh_app["clientId"], token_endpoint_auth_method="none")
    token = public.refresh_token(token_url, refresh_token=rt)
    assert verify(token["access_token"])["client_id"] == refresh_app["clientId"]

    # Nothing but grant_type and refresh_token (Leanly).
    r = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["refresh_token"] not in (rt, token["refresh_token"])
    assert verify(body["access_token"])["sub"] == refresh_app["clientId"]


def test_other_clients_credentials_are_invalid_grant(refresh_app, admin, token_url):
    rt = session(refresh_app).fetch_token(token_url, grant_type="client_credentials")[
        "refresh_token"
    ]
    other = admin.create_app(["read_app", "read_key"], grant_types=REFRESH_GRANTS)
    with pytest.raises(OAuthError) as e:
        session(other).refresh_token(token_url, refresh_token=rt)
    assert e.value.error == "invalid_grant"


def test_wrong_secret_of_the_owner_is_invalid_client(refresh_app, token_url):
    rt = session(refresh_app).fetch_token(token_url, grant_type="client_credentials")[
        "refresh_token"
    ]
    bad = {**refresh_app, "secret": "w" * 43}
    with pytest.raises(OAuthError) as e:
        session(bad).refresh_token(token_url, refresh_token=rt)
    assert e.value.error == "invalid_client"


@pytest.mark.parametrize("rt", ["not-a-refresh-token", "A" * 43])
def test_unknown_refresh_token_is_invalid_grant(rt, refresh_app, token_url):
    with pytest.raises(OAuthError) as e:
        session(refresh_app).refresh_token(token_url, refresh_token=rt)
    assert e.value.error == "invalid_grant"


def test_missing_refresh_token_is_invalid_request(refresh_app, token_url):
    r = requests.post(
        token_url,
        data={"grant_type": "refresh_token"},
        auth=(refresh_app["clientId"], refresh_app["secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_scope_may_narrow_and_the_family_keeps_its_grant(refresh_app, token_url, verify):
    s = session(refresh_app)
    s.fetch_token(token_url, grant_type="client_credentials")
    narrowed = s.refresh_token(token_url, scope="read_key")
    assert narrowed["scope"] == "read_key"
    assert verify(narrowed["access_token"])["scope"] == "read_key"
    # RFC 6749 §6: the new refresh token's scope is that of the one presented, so omitting
    # scope on the next refresh gives the family's full grant again.
    full = s.refresh_token(token_url)
    assert set(full["scope"].split()) == {"read_app", "read_key"}
    assert set(verify(full["access_token"])["scope"].split()) == {"read_app", "read_key"}


def test_scope_may_not_widen(admin, token_url):
    app = admin.create_app(["read_app", "read_key", "write_app"], grant_types=REFRESH_GRANTS)
    s = session(app, scope="read_app")
    assert s.fetch_token(token_url, grant_type="client_credentials")["scope"] == "read_app"
    rt = s.token["refresh_token"]
    # write_app is held by the app but was not granted to this family.
    with pytest.raises(OAuthError) as e:
        s.refresh_token(token_url, scope="read_app write_app")
    assert e.value.error == "invalid_scope"
    assert "write_app" in e.value.description
    # A refused request spends nothing: the same refresh token still works.
    assert s.refresh_token(token_url, refresh_token=rt, scope="read_app")["scope"] == "read_app"


def test_authlib_auto_refreshes_an_expired_token(refresh_app, token_url, base_url, verify):
    updates = []
    s = session(
        refresh_app,
        token_endpoint=token_url,
        update_token=lambda token, refresh_token=None, access_token=None: updates.append(
            (dict(token), refresh_token)
        ),
    )
    first = dict(s.fetch_token(token_url, grant_type="client_credentials"))
    s.token = {**first, "expires_at": int(time.time()) - 10}  # pretend it expired
    r = s.get(f"{base_url}/api/v1/keys", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert len(updates) == 1
    new, used = updates[0]
    assert used == first["refresh_token"]
    assert new["refresh_token"] != first["refresh_token"]
    assert new["access_token"] != first["access_token"]
    assert verify(new["access_token"])["client_id"] == refresh_app["clientId"]


def test_requests_oauthlib_refresh_and_auto_refresh(refresh_app, token_url, base_url, verify):
    auth = (refresh_app["clientId"], refresh_app["secret"])
    updates = []
    s = OAuthlibSession(
        client=BackendApplicationClient(client_id=refresh_app["clientId"]),
        auto_refresh_url=token_url,
        auto_refresh_kwargs={},
        token_updater=updates.append,
    )
    first = s.fetch_token(token_url, client_id=auth[0], client_secret=auth[1])
    assert len(first["refresh_token"]) == 65

    second = s.refresh_token(token_url, refresh_token=first["refresh_token"], auth=auth)
    assert second["refresh_token"] != first["refresh_token"]
    assert set(second["scope"]) == {"read_app", "read_key"}  # oauthlib splits the scope
    assert verify(second["access_token"])["sub"] == refresh_app["clientId"]

    # The spent one is refused, and oauthlib maps the error to its exception type.
    with pytest.raises(InvalidGrantError):
        s.refresh_token(token_url, refresh_token=first["refresh_token"], auth=auth)

    # That reuse ended the family, so start a new one and let the session refresh by itself:
    # an expired token makes requests-oauthlib call auto_refresh_url (with Basic auth built from
    # the client_id and client_secret given to the request) and then token_updater.
    third = s.fetch_token(token_url, client_id=auth[0], client_secret=auth[1])
    s.token = {**third, "expires_at": time.time() - 10}
    r = s.get(
        f"{base_url}/api/v1/keys", client_id=auth[0], client_secret=auth[1], timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    assert len(updates) == 1
    assert updates[0]["refresh_token"] not in (third["refresh_token"], second["refresh_token"])
    assert s.token["access_token"] == updates[0]["access_token"]
