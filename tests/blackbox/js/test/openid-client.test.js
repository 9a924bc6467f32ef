// openid-client v6: discovery + clientCredentialsGrant with both secret auth methods.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';
import { BASE, TOKEN_CLAIMS, createApp, registerResource } from './helpers.js';

let app, JWKS, billing;

before(async () => {
  billing = await registerResource(['read_app', 'write_app'], 'https://billing.example.com/');
  app = await createApp(['read_app', 'write_app'], TOKEN_CLAIMS, {
    resources: { [billing]: ['read_app', 'write_app'] },
  });
  JWKS = jose.createRemoteJWKSet(new URL(`${BASE}/.well-known/jwks.json`));
});

const discover = (clientAuth, algorithm) =>
  client.discovery(new URL(BASE), app.clientId, app.secret, clientAuth, {
    execute: [client.allowInsecureRequests],
    ...(algorithm ? { algorithm } : {}),
  });

for (const [name, auth, algorithm] of [
  ['client_secret_basic', () => client.ClientSecretBasic(app.secret), 'oauth2'],
  ['client_secret_post', () => client.ClientSecretPost(app.secret), 'oidc'],
]) {
  test(`discovery (${algorithm}) + clientCredentialsGrant with ${name}`, async () => {
    const config = await discover(auth(), algorithm);
    const md = config.serverMetadata();
    assert.equal(md.issuer, BASE);
    assert.equal(md.token_endpoint, `${BASE}/oauth2/v1/token`);

    const tokens = await client.clientCredentialsGrant(config, { scope: 'write_app' });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.equal(tokens.scope, 'write_app');
    assert.ok(tokens.expiresIn() > 3500);

    const { payload } = await jose.jwtVerify(tokens.access_token, JWKS, {
      issuer: md.issuer,
      audience: md.issuer,
      typ: 'at+jwt',
      algorithms: ['EdDSA'],
    });
    assert.equal(payload.sub, app.clientId);
    assert.equal(payload.scope, 'write_app');
    assert.equal(payload.tenant, TOKEN_CLAIMS.tenant);
  });
}

test('clientCredentialsGrant with resource sets aud', async () => {
  const config = await discover(client.ClientSecretBasic(app.secret), 'oauth2');
  const resource = billing;
  const tokens = await client.clientCredentialsGrant(config, { resource });
  const { payload } = await jose.jwtVerify(tokens.access_token, JWKS, {
    issuer: BASE,
    audience: resource,
    typ: 'at+jwt',
  });
  assert.deepEqual(new Set(payload.scope.split(' ')), new Set(['read_app', 'write_app']));
});

test('token from openid-client works as a Bearer on the admin API', async () => {
  const config = await discover(client.ClientSecretBasic(app.secret), 'oauth2');
  const tokens = await client.clientCredentialsGrant(config, { scope: 'read_app' });
  const res = await client.fetchProtectedResource(
    config, tokens.access_token, new URL(`${BASE}/api/v1/apps`), 'GET',
  );
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(body.apps.some((a) => a.clientId === app.clientId));
});

test('invalid_scope surfaces as ResponseBodyError naming the scope', async () => {
  const config = await discover(client.ClientSecretBasic(app.secret), 'oauth2');
  await assert.rejects(
    client.clientCredentialsGrant(config, { scope: 'read_app write_role' }),
    (e) => {
      assert.ok(e instanceof client.ResponseBodyError, e);
      assert.equal(e.error, 'invalid_scope');
      assert.equal(e.status, 400);
      assert.match(e.error_description, /write_role/);
      return true;
    },
  );
});

test('wrong secret surfaces as a Basic challenge carrying invalid_client', async () => {
  const other = await createApp(['read_app']);
  const wrong = 'z'.repeat(43);
  const config = await client.discovery(
    new URL(BASE), other.clientId, wrong, client.ClientSecretBasic(wrong),
    { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
  );
  let err;
  await assert.rejects(client.clientCredentialsGrant(config), (e) => ((err = e), true));
  // The 401 carries `WWW-Authenticate: Basic realm="tessera"`, which openid-client reports
  // before the body; the body is still RFC 6749 invalid_client.
  assert.ok(err instanceof client.WWWAuthenticateChallengeError, err);
  assert.equal(err.status, 401);
  assert.deepEqual(err.cause, [{ scheme: 'basic', parameters: { realm: 'tessera' } }]);
  assert.equal((await err.response.json()).error, 'invalid_client');
});
