// The provider-token hosted flow driven by a real headless Chromium (Debian's, installed by
// .ci/run): a service asks for a provider token, the user opens the reauth URL, signs in on
// Tessera's page, goes through a stand-in provider and lands back on the service's callback
// with provider_grant=success. And the login-CSRF attack on it: a provider authorize URL one
// person started, opened in someone else's browser, must complete nothing. Everything stays on
// 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { BASE, rawToken } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const NO_BROWSER = !existsSync(CHROMIUM) && `no browser at ${CHROMIUM}`;
const PASSWORD = 'correct horse battery';

// A stand-in OAuth provider and a stand-in service callback on one loopback server. Every
// consent hands out a fresh code and the token endpoint keeps each body it is sent, so a test
// can tell exactly which codes Tessera exchanged. With `consent.hold` set, /authorize shows a
// page and waits instead, which is where an attacker copies the URL from the address bar
// (Playwright cannot route a request that is the hop of a redirect, so the provider does it).
function standIn() {
  const seen = { callback: null, consents: [], held: [], tokenCalls: [] };
  const consent = { hold: false };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname === '/authorize' && consent.hold) {
      seen.held.push(url.toString());
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Allow access?</p>');
    } else if (url.pathname === '/authorize') {
      // The user "consents" at once: back to Tessera with a code and our state.
      const code = `browser-code-${seen.consents.length + 1}`;
      seen.consents.push({ code, state: url.searchParams.get('state') });
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { location: back.toString() }).end();
    } else if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        seen.tokenCalls.push(Object.fromEntries(new URLSearchParams(body)));
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
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, seen, consent, base: `http://127.0.0.1:${server.address().port}` })));
}

// A service with its callback and a provider on the stand-in, and the calls a service makes.
async function setUp() {
  const { server, seen, consent, base } = await standIn();
  const root = (await rawToken(process.env.TESSERA_ROOT_CLIENT_ID, process.env.TESSERA_ROOT_CLIENT_SECRET)).access_token;
  const admin = (path, body) => fetch(`${BASE}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${root}` },
    body: JSON.stringify(body),
  }).then(async (r) => { assert.equal(r.status, 201, await r.clone().text()); return r.json(); });

  const suffix = randomUUID().slice(0, 8);
  const provider = `prov-${suffix}`;
  const { apiKey } = await admin('/api/v1/services', { name: `browser-${suffix}`, callbackUris: [`${base}/cb`] });
  await admin('/api/v1/providers', {
    name: provider, authorizeUrl: `${base}/authorize`, tokenUrl: `${base}/token`,
    clientId: 'browser-client', clientSecret: 'browser-secret',
  });
  const service = (path, body) => fetch(`${BASE}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey }, body: JSON.stringify(body),
  }).then((r) => r.json());
  const newUser = async (name) => {
    const username = `${name}${suffix}`;
    const { user } = await service('/api/service/users', { email: `${username}@example.com`, username, password: PASSWORD });
    return { id: user.user_id, username };
  };
  const askToken = (user, state) => service('/api/service/provider-tokens', {
    user_id: user.id, provider, scopes: ['repo'], redirect_uri: `${base}/cb`, ...(state && { state }),
  });
  return { server, seen, consent, base, provider, newUser, askToken };
}

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

async function signIn(page, user) {
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
}

// Signs in on a reauth page and stops at the provider without consenting: the attacker wants
// the authorize URL in hand, not a grant of their own. Resolves to that URL.
async function signInAndStopAtProvider(page, reauthUrl, user, { consent, base }) {
  consent.hold = true;
  try {
    await page.goto(reauthUrl);
    await Promise.all([page.waitForURL(`${base}/authorize**`), signIn(page, user)]);
    return page.url();
  } finally {
    consent.hold = false;
  }
}

test('a person signs in and grants a provider token in a real browser', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  const { server, seen, base, provider, newUser, askToken } = await setUp();
  const user = await newUser('pat');
  const asked = await askToken(user, 'from-the-app');
  assert.equal(asked.status, 'action_required');

  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(asked.reauth_url);
    await Promise.all([page.waitForURL(`${base}/cb**`), signIn(page, user)]);
    const landed = new URL(page.url());
    assert.equal(landed.searchParams.get('provider_grant'), 'success');
    assert.equal(landed.searchParams.get('state'), 'from-the-app');
    assert.equal(landed.searchParams.get('provider'), provider);
    assert.ok(seen.callback);
    // The service now gets the provider's token without the user.
    const ok = await askToken(user);
    assert.equal(ok.status, 'ok');
    assert.equal(ok.access_token, 'browser-provider-token');
  } finally {
    await browser.close();
    server.close();
  }
});

test('issue 8: a provider authorize URL handed to another browser completes nothing (login CSRF)', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  const stand = await setUp();
  const { server, seen, base, provider, newUser, askToken } = stand;
  const attacker = await newUser('mal');
  const victim = await newUser('vic');
  const attackerAsk = await askToken(attacker, 'attacker-app-state');
  const victimAsk = await askToken(victim, 'victim-app-state');
  assert.equal(attackerAsk.status, 'action_required');
  assert.equal(victimAsk.status, 'action_required');

  const browser = await launch();
  try {
    // Separate contexts are separate cookie jars: two people on two machines.
    const attackerCtx = await browser.newContext();
    const victimCtx = await browser.newContext();
    const attackerPage = await attackerCtx.newPage();
    const victimPage = await victimCtx.newPage();

    const authorizeUrl = await signInAndStopAtProvider(attackerPage, attackerAsk.reauth_url, attacker, stand);
    const providerState = new URL(authorizeUrl).searchParams.get('state');
    assert.ok(providerState, authorizeUrl);
    // The binding lives in the attacker's jar, which is exactly what the victim will lack.
    const attackerCookies = (await attackerCtx.cookies(`${BASE}/connect/callback`)).map((c) => c.name);
    assert.ok(attackerCookies.some((n) => n.startsWith('tessera_flow_')), attackerCookies.join(','));
    assert.ok(attackerCookies.includes('tessera_session'), attackerCookies.join(','));
    assert.deepEqual(seen.held, [authorizeUrl]);
    assert.equal(seen.consents.length, 0, 'the attacker never consented at the provider');

    // A victim signed in to Tessera as themselves must be refused as well as a stranger: a
    // session of the wrong user is no substitute for the attacker's.
    await signInAndStopAtProvider(victimPage, victimAsk.reauth_url, victim, stand);
    const victimCookies = (await victimCtx.cookies(`${BASE}/connect/callback`)).map((c) => c.name);
    assert.ok(victimCookies.includes('tessera_session'), victimCookies.join(','));

    await victimPage.goto(authorizeUrl);
    await victimPage.waitForURL(`${base}/cb**`);
    const refused = new URL(victimPage.url());
    assert.equal(refused.searchParams.get('provider_grant'), 'error', refused.href);
    assert.equal(refused.searchParams.get('reason'), 'session_mismatch', refused.href);
    assert.equal(refused.searchParams.get('provider'), provider);
    const victimConsent = seen.consents.find((c) => c.state === providerState);
    assert.ok(victimConsent, 'the victim did consent at the provider');
    // The victim's code must never be exchanged: once it is, the victim's provider account
    // sits under the attacker's user.
    assert.deepEqual(seen.tokenCalls, []);
    assert.equal((await askToken(attacker)).status, 'action_required', 'the attacker holds no provider grant');

    // Control: the same URL in the browser that started the flow does complete, so the
    // refusal above is the binding at work and not a flow that was broken anyway.
    await attackerPage.goto(authorizeUrl);
    await attackerPage.waitForURL(`${base}/cb**`);
    const granted = new URL(attackerPage.url());
    assert.equal(granted.searchParams.get('provider_grant'), 'success', granted.href);
    assert.equal(granted.searchParams.get('state'), 'attacker-app-state');
    const ownConsent = seen.consents.at(-1);
    assert.equal(ownConsent.state, providerState);
    assert.notEqual(ownConsent.code, victimConsent.code);
    assert.equal(seen.tokenCalls.length, 1);
    assert.equal(seen.tokenCalls[0].grant_type, 'authorization_code');
    assert.equal(seen.tokenCalls[0].code, ownConsent.code);
    assert.equal(seen.tokenCalls[0].redirect_uri, `${BASE}/connect/callback`);
    assert.ok(!seen.tokenCalls.some((call) => call.code === victimConsent.code));
    assert.equal((await askToken(attacker)).status, 'ok');
    // Nor did the victim's consent end up on the victim's own user.
    assert.equal((await askToken(victim)).status, 'action_required');
  } finally {
    await browser.close();
    server.close();
  }
});
