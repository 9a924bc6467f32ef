// oauth4webapi: the low-level RFC 8414 discovery + client_credentials path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { BASE, createApp } from './helpers.js';

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
