// jose: verify Tessera access tokens against the remote JWKS (RFC 9068 profile).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { BASE, TOKEN_CLAIMS, createApp, rawToken, registerResource } from './helpers.js';

let app, md, JWKS, orders;

before(async () => {
  md = await (await fetch(`${BASE}/.well-known/oauth-authorization-server`)).json();
  JWKS = jose.createRemoteJWKSet(new URL(md.jwks_uri));
  orders = await registerResource(['read_app']);
  app = await createApp(['read_app', 'write_app'], TOKEN_CLAIMS, { resources: { [orders]: ['read_app'] } });
});

const verify = (token, audience = md.issuer) =>
  jose.jwtVerify(token, JWKS, {
    issuer: md.issuer,
    audience,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'],
  });

test('jwtVerify accepts a client_credentials token', async () => {
  const tok = await rawToken(app.clientId, app.secret, { scope: 'read_app' });
  const { payload, protectedHeader } = await verify(tok.access_token);
  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.sub, app.clientId);
  assert.equal(payload.client_id, app.clientId);
  assert.equal(payload.scope, 'read_app');
  assert.equal(payload.aud, md.issuer);
  assert.equal(payload.exp, tok.expires_on);
  assert.equal(payload.exp - payload.iat, tok.expires_in);
  for (const [k, v] of Object.entries(TOKEN_CLAIMS)) assert.equal(payload[k], v);
});

test('audience parameter becomes aud; verifying with another audience fails', async () => {
  const aud = orders;
  const tok = await rawToken(app.clientId, app.secret, { audience: aud });
  const { payload } = await verify(tok.access_token, aud);
  assert.equal(payload.aud, aud);
  await assert.rejects(verify(tok.access_token), (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED');
});

test('tampered payload fails signature verification', async () => {
  const tok = await rawToken(app.clientId, app.secret, { scope: 'read_app' });
  const [h, p, s] = tok.access_token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  claims.scope = 'root';
  const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
  await assert.rejects(verify(forged), (e) => e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
});

test('JWKS keys import as Ed25519 public keys', async () => {
  const { keys } = await (await fetch(md.jwks_uri)).json();
  assert.ok(keys.length >= 1);
  for (const jwk of keys) {
    assert.deepEqual([jwk.kty, jwk.crv, jwk.alg, jwk.use], ['OKP', 'Ed25519', 'EdDSA', 'sig']);
    assert.equal(jwk.d, undefined);
    const key = await jose.importJWK(jwk, 'EdDSA');
    assert.equal(key.type ?? 'public', 'public');
  }
});
