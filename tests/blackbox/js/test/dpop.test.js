// DPoP (RFC 9449) with oauth4webapi's own DPoP handle: tokens bound to the client's key, used
// at Tessera's admin API with a proof per request, refused as bearer tokens, and refresh
// tokens that only the key's holder can use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { BASE, REFRESH_GRANTS, createApp, keysStatus } from './helpers.js';

const insecure = { [oauth.allowInsecureRequests]: true };

async function discover() {
  const issuer = new URL(BASE);
  return oauth
    .discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure })
    .then((r) => oauth.processDiscoveryResponse(issuer, r));
}

for (const alg of ['ES256', 'Ed25519']) {
  test(`DPoP-bound tokens with a ${alg} key`, async () => {
    const as = await discover();
    assert.ok(as.dpop_signing_alg_values_supported.includes(alg));
    const app = await createApp(['read_key'], undefined, { grantTypes: REFRESH_GRANTS });
    const c = { client_id: app.clientId };
    const auth = oauth.ClientSecretBasic(app.secret);
    const keyPair = await oauth.generateKeyPair(alg);
    const DPoP = oauth.DPoP(c, keyPair);

    const res = await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(), { DPoP, ...insecure });
    const tokens = await oauth.processClientCredentialsResponse(as, c, res);
    assert.equal(tokens.token_type, 'dpop');
    const claims = jose.decodeJwt(tokens.access_token);
    assert.equal(claims.cnf.jkt, await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey)));

    // A proof per request, made by the library for the URL and method it calls.
    const keysUrl = new URL(`${BASE}/api/v1/keys`);
    const ok = await oauth.protectedResourceRequest(tokens.access_token, 'GET', keysUrl, undefined, undefined, { DPoP, ...insecure });
    assert.equal(ok.status, 200);
    assert.ok(Array.isArray((await ok.json()).keys));
    // The same token copied into a bearer header opens nothing.
    assert.equal(await keysStatus(tokens.access_token), 401);

    // The refresh token is bound too: a different key is refused, the right one rotates it.
    const stranger = oauth.DPoP(c, await oauth.generateKeyPair(alg));
    const stolen = await oauth.refreshTokenGrantRequest(as, c, auth, tokens.refresh_token, { DPoP: stranger, ...insecure });
    await assert.rejects(
      oauth.processRefreshTokenResponse(as, c, stolen),
      (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_dpop_proof' && e.status === 400,
    );
    const refreshed = await oauth.processRefreshTokenResponse(
      as, c, await oauth.refreshTokenGrantRequest(as, c, auth, tokens.refresh_token, { DPoP, ...insecure }),
    );
    assert.equal(refreshed.token_type, 'dpop');
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  });
}
