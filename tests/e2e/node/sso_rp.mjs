// A relying party built on openid-client 6 (a certified OpenID Connect RP),
// driven by tests/e2e/tests/sso.rs against a running platform. It signs a
// user in through the Hub's HTML forms with plain HTTP requests and a cookie
// jar, and prints one JSON object with what happened, for the Rust test to
// judge. Every OpenID check is openid-client's own; non-repudiation checks
// (ID token signatures against the JWKS) are turned on.
//
//   node sso_rp.mjs '{"scenario": "...", "issuer": "...", "client_id": "...", ...}'
import * as client from 'openid-client';
import * as jose from 'jose';

const cfg = JSON.parse(process.argv[2]);

class Browser {
  constructor() { this.cookies = new Map(); }
  remember(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
      const gone = attrs.some((a) => a.trim().toLowerCase() === 'max-age=0');
      if (gone) this.cookies.delete(name.trim()); else this.cookies.set(name.trim(), value.trim());
    }
  }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  async send(url, init = {}) {
    const response = await fetch(url, {
      ...init, redirect: 'manual', headers: { ...(init.headers || {}), cookie: this.header() },
    });
    this.remember(response);
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }
  get(url) { return this.send(url); }
  post(url, fields) {
    return this.send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

const unescape = (s) => s.replaceAll('&quot;', '"').replaceAll('&#x27;', "'").replaceAll('&lt;', '<')
  .replaceAll('&gt;', '>').replaceAll('&amp;', '&');

function hidden(html) {
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    fields[unescape(m[1])] = unescape(m[2]);
  }
  return fields;
}

async function discover({ auth = 'basic', tamper = false } = {}) {
  const authMethod = auth === 'post'
    ? client.ClientSecretPost(cfg.client_secret)
    : client.ClientSecretBasic(cfg.client_secret);
  const config = await client.discovery(new URL(cfg.issuer), cfg.client_id, undefined, authMethod, {
    execute: [client.allowInsecureRequests],
  });
  client.enableNonRepudiationChecks(config);
  if (tamper) {
    // A man in the middle changes the ID token's email and keeps the signature.
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options);
      if (!String(url).endsWith('/sso/v1/token') || !response.ok) return response;
      const body = await response.json();
      const [h, p, s] = body.id_token.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      claims.email = 'mallory@example.com';
      body.id_token = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
      return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
    };
  }
  return config;
}

// Start a sign-in in `browser`; fill the sign-in form and the choice of
// organisation when the Hub shows them. Returns the last response and the
// values the RP keeps for the callback.
async function signIn(browser, config, { redirectUri = cfg.redirect_uri } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const endpoint = config.serverMetadata().authorization_endpoint;
  const pages = [];
  let response = await browser.get(url);
  for (let i = 0; i < 3 && response.status === 200; i++) {
    const fields = hidden(response.text);
    if (fields.action === 'signin') {
      pages.push('signin');
      Object.assign(fields, { email: cfg.email, password: cfg.password });
    } else if (fields.action === 'org') {
      pages.push('org');
      fields.org = cfg.org;
    } else break;
    response = await browser.post(endpoint, fields);
  }
  return { response, verifier, state, nonce, pages };
}

const callback = (r) => new URL(r.response.location);

function failure(e) {
  return {
    name: e?.name, code: e?.code, error: e?.error, description: e?.error_description, message: e?.message,
    cause: e?.cause?.message ?? (typeof e?.cause === 'string' ? e.cause : undefined), cause_code: e?.cause?.code,
  };
}

async function attempt(f) {
  try { return { ok: await f() }; } catch (e) { return { failed: failure(e) }; }
}

async function exchange(config, r, overrides = {}) {
  return client.authorizationCodeGrant(config, callback(r), {
    pkceCodeVerifier: r.verifier, expectedState: r.state, expectedNonce: r.nonce, idTokenExpected: true, ...overrides,
  });
}

const out = {};
const browser = new Browser();
const config = await discover({ auth: cfg.auth });

if (cfg.scenario === 'flow') {
  const first = await signIn(browser, config);
  out.pages = first.pages;
  out.callback = first.response.location;
  const tokens = await exchange(config, first);
  out.claims = tokens.claims();
  out.id_token = tokens.id_token;
  out.access_token = tokens.access_token;
  out.userinfo = await client.fetchUserInfo(config, tokens.access_token, out.claims.sub);
  out.session_cookie = browser.cookies.get('mno_session');

  // Signed in already: straight through, no form.
  const again = await signIn(browser, config);
  out.again_pages = again.pages;
  out.again_status = again.response.status;
  // The same code twice: refused, and the first exchange's tokens are revoked.
  out.reused = await attempt(() => exchange(config, again).then(() => exchange(config, again)));
  out.userinfo_after_reuse = await attempt(async () => {
    const r = await signIn(browser, config);
    const t = await exchange(config, r);
    await attempt(() => exchange(config, r));
    return client.fetchUserInfo(config, t.access_token, out.claims.sub);
  });
  // PKCE: a verifier that is not the one of the challenge.
  const pkce = await signIn(browser, config);
  out.pkce_mismatch = await attempt(() => exchange(config, pkce, { pkceCodeVerifier: client.randomPKCECodeVerifier() }));
  // The RP checks state: a callback for another request is refused.
  const forged = await signIn(browser, config);
  out.state_mismatch = await attempt(() => exchange(config, forged, { expectedState: client.randomState() }));
  // A tampered ID token fails the signature check against the JWKS.
  const tamperedConfig = await discover({ auth: cfg.auth, tamper: true });
  const tampered = await signIn(browser, tamperedConfig);
  out.tampered = await attempt(() => exchange(tamperedConfig, tampered));
  // A redirect URI the app did not register: a page, no redirect.
  const wrong = await signIn(browser, config, { redirectUri: `${cfg.redirect_uri}/elsewhere` });
  out.wrong_redirect = { status: wrong.response.status, location: wrong.response.location, text: wrong.response.text };
} else if (cfg.scenario === 'sign_in_only') {
  // Stop at the callback: the Rust test judges the page or the redirect.
  const r = await signIn(browser, config);
  out.pages = r.pages;
  out.status = r.response.status;
  out.location = r.response.location;
  out.text = r.response.text;
  out.session_cookie = browser.cookies.get('mno_session');
  // The PKCE verifier, for a Rust test that exchanges the code itself.
  out.verifier = r.verifier;
  if (r.response.status === 303 && cfg.exchange) {
    const result = await attempt(() => exchange(config, r));
    out.exchange = result.ok ? { claims: result.ok.claims(), id_token: result.ok.id_token } : result;
  }
} else if (cfg.scenario === 'verify') {
  // A token checked against the provider's JWKS by jose (openid-client's JOSE
  // library): a logout token (typ logout+jwt), or an ID token after a key rotation.
  const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  const result = await attempt(() => jose.jwtVerify(cfg.token, jwks, {
    issuer: cfg.issuer, audience: cfg.client_id, algorithms: ['RS256'], typ: cfg.typ ?? undefined,
  }));
  out.verified = result.ok ? { header: result.ok.protectedHeader, claims: result.ok.payload } : result;
} else {
  throw new Error(`unknown scenario ${cfg.scenario}`);
}
console.log(JSON.stringify(out));
