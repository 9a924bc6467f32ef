// Shared helpers for Tessera's black-box JS suite. Run through ../../run.sh, which starts the
// server and exports TESSERA_URL, TESSERA_ROOT_CLIENT_ID and TESSERA_ROOT_CLIENT_SECRET.
import { randomUUID } from 'node:crypto';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run tests/blackbox/run.sh`);
  return v;
}

export const BASE = env('TESSERA_URL').replace(/\/+$/, '');
export const ROOT_ID = env('TESSERA_ROOT_CLIENT_ID');
export const ROOT_SECRET = env('TESSERA_ROOT_CLIENT_SECRET');
export const TOKEN_URL = `${BASE}/oauth2/v1/token`;
export const TOKEN_CLAIMS = { tenant: 'acme-js', region: 'eu' };

export async function rawToken(clientId, secret, params = {}) {
  const res = await fetch(TOKEN_URL, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64'),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...params }),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return res.json();
}

let rootToken;
// `extra` takes further app fields, e.g. { grantTypes: [...], publicKeyJwk: {...} }.
export async function createApp(scopes, tokenClaims, extra = {}) {
  rootToken ??= (await rawToken(ROOT_ID, ROOT_SECRET)).access_token;
  const body = { name: `bb-js-${randomUUID().slice(0, 8)}`, scopes, ...extra };
  if (tokenClaims) body.tokenClaims = tokenClaims;
  const res = await fetch(`${BASE}/api/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${rootToken}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create app: ${res.status} ${await res.text()}`);
  return (await res.json()).app;
}

export const REFRESH_GRANTS = ['client_credentials', 'refresh_token'];

// Registers an API (RFC 8707) with these scopes; a fresh identifier per call unless named.
export async function registerResource(scopes, identifier) {
  rootToken ??= (await rawToken(ROOT_ID, ROOT_SECRET)).access_token;
  identifier ??= `https://${randomUUID().slice(0, 8)}.api.example.com/`;
  const res = await fetch(`${BASE}/api/v1/resources`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${rootToken}` },
    body: JSON.stringify({ identifier, name: identifier, scopes }),
  });
  if (res.status !== 201) throw new Error(`create resource: ${res.status} ${await res.text()}`);
  return (await res.json()).resource.identifier;
}

// Status of GET /api/v1/keys (needs read_key) with the given access token.
export async function keysStatus(accessToken) {
  const res = await fetch(`${BASE}/api/v1/keys`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  await res.arrayBuffer();
  return res.status;
}
