// oauth4webapi: the low-level RFC 8414 discovery + client_credentials path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { BASE, REFRESH_GRANTS, createApp, keysStatus } from './helpers.js';

test('discoveryRequest + clientCredentialsGrantRequest', async () => {
  const app = await createApp(['read_app']);
  const issuer = new URL(BASE);
  const as = await oauth
    .discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true })
    .then((r) => oauth.processDiscoveryResponse(issuer, r));
  assert.deepEqual(as.token_endpoint_auth_signing_alg_values_supported, ['EdDSA']);

  const c = { client_id: app.clientId };
  const res = await oauth.clientCredentialsGrantRequest(
    as, c, oauth.ClientSecretBasic(app.secret), new URLSearchParams({ scope: 'read_app' }),
    { [oauth.allowInsecureRequests]: true },
  );
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const tokens = await oauth.processClientCredentialsResponse(as, c, res);
  assert.equal(tokens.token_type, 'bearer'); // oauth4webapi lower-cases it
  assert.equal(tokens.scope, 'read_app');

  const { payload } = await jose.jwtVerify(
    tokens.access_token, jose.createRemoteJWKSet(new URL(as.jwks_uri)),
    { issuer: as.issuer, audience: as.issuer, typ: 'at+jwt', algorithms: ['EdDSA'] },
  );
  assert.equal(payload.client_id, app.clientId);
});

test('refresh, introspection and revocation requests with PrivateKeyJwt (Ed25519)', async () => {
  const insecure = { [oauth.allowInsecureRequests]: true };
  const issuer = new URL(BASE);
  const as = await oauth
    .discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure })
    .then((r) => oauth.processDiscoveryResponse(issuer, r));

  const { privateKey, publicKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const app = await createApp(['read_key'], undefined, {
    grantTypes: REFRESH_GRANTS,
    publicKeyJwk: await jose.exportJWK(publicKey),
  });
  const c = { client_id: app.clientId };
  // The metadata offers EdDSA only; oauth4webapi would name the key's algorithm "Ed25519".
  const auth = oauth.PrivateKeyJwt(privateKey, {
    [oauth.modifyAssertion]: (header, payload) => {
      header.alg = 'EdDSA';
      assert.equal(payload.aud, as.issuer);
    },
  });

  const first = await oauth.processClientCredentialsResponse(
    as, c, await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(), insecure),
  );
  assert.equal(first.refresh_token.length, 65);
  const second = await oauth.processRefreshTokenResponse(
    as, c, await oauth.refreshTokenGrantRequest(as, c, auth, first.refresh_token, insecure),
  );
  assert.notEqual(second.refresh_token, first.refresh_token);
  assert.equal(second.scope, 'read_key');

  // Reuse of the spent token: RFC 6749 invalid_grant.
  await assert.rejects(
    oauth.processRefreshTokenResponse(
      as, c, await oauth.refreshTokenGrantRequest(as, c, auth, first.refresh_token, insecure),
    ),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant' && e.status === 400,
  );
  const introspect = async (token) =>
    oauth.processIntrospectionResponse(
      as, c, await oauth.introspectionRequest(as, c, auth, token, insecure),
    );
  // That reuse ended the family: the access token minted by the refresh is inactive too.
  assert.deepEqual(await introspect(second.access_token), { active: false });

  const third = await oauth.processClientCredentialsResponse(
    as, c, await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(), insecure),
  );
  const active = await introspect(third.access_token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, app.clientId);
  assert.equal(active.scope, 'read_key');

  const res = await oauth.revocationRequest(as, c, auth, third.access_token, insecure);
  assert.equal(res.status, 200);
  await oauth.processRevocationResponse(res);
  assert.deepEqual(await introspect(third.access_token), { active: false });
  assert.equal(await keysStatus(third.access_token), 401);
});
