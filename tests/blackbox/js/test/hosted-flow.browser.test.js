// The provider-token hosted flow driven by a real headless Chromium (Debian's, installed by
// .ci/run): a service asks for a provider token, the user opens the reauth URL, signs in on
// Tessera's page, goes through a stand-in provider and lands back on the service's callback
// with provider_grant=success. Everything stays on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { BASE, rawToken } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// A stand-in OAuth provider and a stand-in service callback on one loopback server.
function standIn() {
  const seen = { callback: null };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/authorize') {
      // The user "consents" at once: back to Tessera with a code and our state.
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', 'browser-code');
      back.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { location: back.toString() }).end();
    } else if (url.pathname === '/token' && req.method === 'POST') {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'browser-provider-token', expires_in: 3600, token_type: 'bearer' }));
      });
    } else if (url.pathname === '/cb') {
      seen.callback = url.toString();
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>back at the service</p>');
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, seen, base: `http://127.0.0.1:${server.address().port}` })));
}

test('a person signs in and grants a provider token in a real browser', { skip: !existsSync(CHROMIUM) && `no browser at ${CHROMIUM}` }, async () => {
  const { server, seen, base } = await standIn();
  const root = (await rawToken(process.env.TESSERA_ROOT_CLIENT_ID, process.env.TESSERA_ROOT_CLIENT_SECRET)).access_token;
  const admin = (path, body) => fetch(`${BASE}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${root}` },
    body: JSON.stringify(body),
  }).then(async (r) => { assert.equal(r.status, 201, await r.clone().text()); return r.json(); });

  const suffix = randomUUID().slice(0, 8);
  const { apiKey } = await admin('/api/v1/services', { name: `browser-${suffix}`, callbackUris: [`${base}/cb`] });
  await admin('/api/v1/providers', {
    name: `prov-${suffix}`, authorizeUrl: `${base}/authorize`, tokenUrl: `${base}/token`,
    clientId: 'browser-client', clientSecret: 'browser-secret',
  });
  const service = (path, body) => fetch(`${BASE}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey }, body: JSON.stringify(body),
  }).then((r) => r.json());
  const username = `pat${suffix}`;
  const { user } = await service('/api/service/users', { email: `${username}@example.com`, username, password: 'correct horse battery' });
  const asked = await service('/api/service/provider-tokens', {
    user_id: user.user_id, provider: `prov-${suffix}`, scopes: ['repo'], redirect_uri: `${base}/cb`, state: 'from-the-app',
  });
  assert.equal(asked.status, 'action_required');

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(asked.reauth_url);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${base}/cb**`), page.click('button[type=submit]')]);
    const landed = new URL(page.url());
    assert.equal(landed.searchParams.get('provider_grant'), 'success');
    assert.equal(landed.searchParams.get('state'), 'from-the-app');
    assert.equal(landed.searchParams.get('provider'), `prov-${suffix}`);
    assert.ok(seen.callback);
    // The service now gets the provider's token without the user.
    const ok = await service('/api/service/provider-tokens', {
      user_id: user.user_id, provider: `prov-${suffix}`, scopes: ['repo'], redirect_uri: `${base}/cb`,
    });
    assert.equal(ok.status, 'ok');
    assert.equal(ok.access_token, 'browser-provider-token');
  } finally {
    await browser.close();
    server.close();
  }
});
