// openid-client v6: refreshTokenGrant (rotation, reuse detection), tokenIntrospection,
// tokenRevocation and PrivateKeyJwt with a jose-generated Ed25519 key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';
import { BASE, REFRESH_GRANTS, createApp, keysStatus } from './helpers.js';

const OPTS = { execute: [client.allowInsecureRequests], algorithm: 'oauth2' };
const JWKS = jose.createRemoteJWKSet(new URL(`${BASE}/.well-known/jwks.json`));

const secretConfig = (app) =>
  client.discovery(
    new URL(BASE), app.clientId, app.secret, client.ClientSecretBasic(app.secret), OPTS,
  );

// Tessera advertises token_endpoint_auth_signing_alg_values_supported ["EdDSA"]; openid-client
// names an Ed25519 CryptoKey's algorithm "Ed25519" (RFC 9864), so the header is set to EdDSA.
const eddsa = { [client.modifyAssertion]: (header) => { header.alg = 'EdDSA'; } };

async function keyPair() {
  const { privateKey, publicKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
  return { privateKey, jwk: await jose.exportJWK(publicKey) };
}

const jwtConfig = (app, privateKey, options = eddsa) =>
  client.discovery(
    new URL(BASE), app.clientId, undefined, client.PrivateKeyJwt(privateKey, options), OPTS,
  );

// A fresh app that also gets refresh tokens; `extra` adds fields such as publicKeyJwk.
const refreshApp = (scopes, extra = {}) =>
  createApp(scopes, undefined, { grantTypes: REFRESH_GRANTS, ...extra });

const rejectsWith = (promise, error, status = 400) =>
  assert.rejects(promise, (e) => {
    assert.ok(e instanceof client.ResponseBodyError, e);
    assert.equal(e.status, status);
    assert.equal(e.error, error);
    return true;
  });

test('discovery names introspection and revocation endpoints', async () => {
  const app = await createApp([]);
  const md = (await secretConfig(app)).serverMetadata();
  assert.equal(md.introspection_endpoint, `${BASE}/oauth2/v1/introspect`);
  assert.equal(md.revocation_endpoint, `${BASE}/oauth2/v1/revoke`);
  assert.ok(md.grant_types_supported.includes('refresh_token'));
  assert.ok(md.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
});

test('refreshTokenGrant rotates the refresh token on every use', async () => {
  const app = await refreshApp(['read_app', 'read_key']);
  const config = await secretConfig(app);
  let tokens = await client.clientCredentialsGrant(config);
  assert.equal(tokens.refresh_token.length, 65);
  const seen = new Set([tokens.refresh_token]);
  for (let i = 0; i < 3; i++) {
    tokens = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(!seen.has(tokens.refresh_token));
    seen.add(tokens.refresh_token);
    const { payload } = await jose.jwtVerify(tokens.access_token, JWKS, {
      issuer: BASE, audience: BASE, typ: 'at+jwt', algorithms: ['EdDSA'],
    });
    assert.equal(payload.client_id, app.clientId);
    assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['read_app', 'read_key']));
  }
  assert.equal(await keysStatus(tokens.access_token), 200);
});

test('reusing a spent refresh token is invalid_grant and revokes the family', async () => {
  const app = await refreshApp(['read_key']);
  const config = await secretConfig(app);
  const first = await client.clientCredentialsGrant(config);
  const second = await client.refreshTokenGrant(config, first.refresh_token);
  assert.equal(await keysStatus(second.access_token), 200);

  await rejectsWith(client.refreshTokenGrant(config, first.refresh_token), 'invalid_grant');
  await rejectsWith(client.refreshTokenGrant(config, second.refresh_token), 'invalid_grant');
  for (const t of [first, second]) {
    assert.equal(await keysStatus(t.access_token), 401);
    assert.deepEqual(await client.tokenIntrospection(config, t.access_token), { active: false });
  }
});

test('refreshTokenGrant narrows scope, refuses widening, refuses another client', async () => {
  const app = await refreshApp(['read_app', 'read_key', 'write_app']);
  const config = await secretConfig(app);
  const tokens = await client.clientCredentialsGrant(config, { scope: 'read_app read_key' });
  await rejectsWith(
    client.refreshTokenGrant(config, tokens.refresh_token, { scope: 'read_app write_app' }),
    'invalid_scope',
  );
  const other = await refreshApp(['read_key']);
  await rejectsWith(
    client.refreshTokenGrant(await secretConfig(other), tokens.refresh_token), 'invalid_grant',
  );
  // Neither refusal spent the token.
  const narrowed = await client.refreshTokenGrant(config, tokens.refresh_token, {
    scope: 'read_key',
  });
  assert.equal(narrowed.scope, 'read_key');
});

test('refresh token alone (client auth None) is accepted', async () => {
  const app = await refreshApp(['read_app']);
  const { refresh_token } = await client.clientCredentialsGrant(await secretConfig(app));
  const pub = await client.discovery(new URL(BASE), app.clientId, undefined, client.None(), OPTS);
  const tokens = await client.refreshTokenGrant(pub, refresh_token);
  assert.notEqual(tokens.refresh_token, refresh_token);
  assert.equal(tokens.scope, 'read_app');
});

test('tokenIntrospection: active access and refresh tokens, inactive garbage', async () => {
  const owner = await refreshApp(['read_app']);
  const caller = await createApp([]);
  const tokens = await client.clientCredentialsGrant(await secretConfig(owner));
  const config = await secretConfig(caller);

  const at = await client.tokenIntrospection(config, tokens.access_token);
  const { payload } = await jose.jwtVerify(tokens.access_token, JWKS, {
    issuer: BASE, audience: BASE,
  });
  assert.deepEqual(at, {
    active: true, scope: 'read_app', client_id: owner.clientId, token_type: 'Bearer',
    exp: payload.exp, iat: payload.iat, nbf: payload.nbf, sub: owner.clientId,
    aud: BASE, iss: BASE, jti: payload.jti,
  });

  const rt = await client.tokenIntrospection(config, tokens.refresh_token, {
    token_type_hint: 'refresh_token',
  });
  assert.equal(rt.active, true);
  assert.equal(rt.token_type, 'refresh_token');
  assert.equal(rt.client_id, owner.clientId);

  for (const junk of ['junk', 'a.b.c', 'Z'.repeat(43)]) {
    assert.deepEqual(await client.tokenIntrospection(config, junk), { active: false });
  }
});

test('tokenRevocation: owner revokes at once, others and unknown tokens get 200 only', async () => {
  const app = await refreshApp(['read_key']);
  const config = await secretConfig(app);
  const tokens = await client.clientCredentialsGrant(config);

  const intruder = await secretConfig(await createApp(['read_key']));
  await client.tokenRevocation(intruder, tokens.access_token);
  await client.tokenRevocation(intruder, tokens.refresh_token);
  await client.tokenRevocation(intruder, 'not-a-token');
  assert.equal(await keysStatus(tokens.access_token), 200);
  assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, true);

  await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
  assert.equal(await keysStatus(tokens.access_token), 401);
  assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false });

  await client.tokenRevocation(config, tokens.refresh_token);
  const gone = await client.tokenIntrospection(config, tokens.refresh_token);
  assert.deepEqual(gone, { active: false });
  await rejectsWith(client.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant');
});

test('PrivateKeyJwt (Ed25519, aud = issuer): token, refresh, introspect, revoke', async () => {
  const { privateKey, jwk } = await keyPair();
  const app = await refreshApp(['read_key'], { publicKeyJwk: jwk });
  const config = await jwtConfig(app, privateKey);
  const tokens = await client.clientCredentialsGrant(config);
  const { payload } = await jose.jwtVerify(tokens.access_token, JWKS, {
    issuer: BASE, audience: BASE,
  });
  assert.equal(payload.sub, app.clientId);

  const next = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal((await client.tokenIntrospection(config, next.access_token)).active, true);
  await client.tokenRevocation(config, next.refresh_token);
  assert.equal(await keysStatus(next.access_token), 401);
  assert.equal(await keysStatus(tokens.access_token), 401);
});

test('PrivateKeyJwt: a replayed assertion is invalid_client', async () => {
  const { privateKey, jwk } = await keyPair();
  const app = await createApp(['read_app'], undefined, { publicKeyJwk: jwk });
  const jti = `fixed-${crypto.randomUUID()}`;
  const config = await jwtConfig(app, privateKey, {
    [client.modifyAssertion]: (header, payload) => { header.alg = 'EdDSA'; payload.jti = jti; },
  });
  await client.clientCredentialsGrant(config);
  await rejectsWith(client.clientCredentialsGrant(config), 'invalid_client', 401);
});

test('PrivateKeyJwt: wrong key, or a 10-minute assertion, is invalid_client', async () => {
  const { jwk } = await keyPair();
  const { privateKey: otherKey } = await keyPair();
  const app = await createApp(['read_app'], undefined, { publicKeyJwk: jwk });
  const wrongKey = await jwtConfig(app, otherKey);
  await rejectsWith(client.clientCredentialsGrant(wrongKey), 'invalid_client', 401);

  const { privateKey, jwk: jwk2 } = await keyPair();
  const app2 = await createApp(['read_app'], undefined, { publicKeyJwk: jwk2 });
  const longLived = await jwtConfig(app2, privateKey, {
    [client.modifyAssertion]: (header, payload) => {
      header.alg = 'EdDSA';
      payload.exp = payload.iat + 600;
    },
  });
  await rejectsWith(client.clientCredentialsGrant(longLived), 'invalid_client', 401);
});

test('PrivateKeyJwt default alg "Ed25519" (RFC 9864) is not advertised, so refused', async () => {
  // Documents an interop point rather than a bug: the metadata offers only EdDSA.
  const { privateKey, jwk } = await keyPair();
  const app = await createApp(['read_app'], undefined, { publicKeyJwk: jwk });
  const config = await jwtConfig(app, privateKey, {});
  const md = config.serverMetadata();
  assert.deepEqual(md.token_endpoint_auth_signing_alg_values_supported, ['EdDSA']);
  await rejectsWith(client.clientCredentialsGrant(config), 'invalid_client', 401);
});
