// A real, strict OAuth 2.0 / OpenID Connect server for the test-suite: oidc-provider (v9) on 127.0.0.1 with
// interactions that complete themselves (no human) and a JSON control API under /_control/* (test-only).
//
//   PORT=9000 OIDC_CLIENTS='[{"client_id":"c","client_secret":"s","redirect_uris":["http://127.0.0.1/cb"]}]' \
//     node server.mjs          # prints exactly one line on stdout, `READY 9000`, once listening
//
// Environment:
//   PORT               required; the issuer is http://127.0.0.1:PORT
//   OIDC_CLIENTS       JSON list of client metadata (client_id, client_secret, redirect_uris, ...). Defaults:
//                      grant_types authorization_code + refresh_token, response_types code,
//                      token_endpoint_auth_method client_secret_basic (client_secret_post also works).
//   ACCESS_TOKEN_TTL   access token lifetime in seconds (default 3600); REFRESH_TOKEN_TTL likewise (14 days)
//   EXTRA_SCOPES       space-separated scopes granted besides the OIDC ones (default "api:read api:write")
//   EXIT_ON_STDIN_CLOSE=1  exit when stdin closes (the Python harness sets it, so no server outlives its test run)
//
// Behaviour the tests rely on: PKCE (S256) required for every client; a refresh token with every code grant
// (for clients allowed the refresh_token grant) and a new one on every refresh — a used refresh token gets
// invalid_grant and, as oidc-provider treats it as a replay, revokes the whole grant; opaque access tokens;
// id_token with sub and email; userinfo at /me, revocation at /token/revocation, introspection at
// /token/introspection. Every authorization logs in again (the account set through the control API) and consents
// to everything requested, whatever cookies the browser still holds.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

// stdout carries exactly one line (READY <port>): send the library's notices (console.info) to stderr.
console.log = console.info = console.debug = (...args) => console.error(...args);

const { default: Provider, errors, interactionPolicy } = await import('oidc-provider');

function fail(message) {
  console.error(`oauth test server: ${message}`);
  process.exit(2);
}

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) fail(`${name} is required`);
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) fail(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

const PORT = intFromEnv('PORT');
const ACCESS_TOKEN_TTL = intFromEnv('ACCESS_TOKEN_TTL', 3600);
const REFRESH_TOKEN_TTL = intFromEnv('REFRESH_TOKEN_TTL', 14 * 24 * 3600);
const EXTRA_SCOPES = (process.env.EXTRA_SCOPES ?? 'api:read api:write').split(/\s+/).filter(Boolean);
const ISSUER = `http://127.0.0.1:${PORT}`;

function parseClients() {
  let clients;
  try {
    clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
  } catch (err) {
    fail(`OIDC_CLIENTS is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(clients)) fail('OIDC_CLIENTS must be a JSON list of client metadata objects');
  return clients.map((client, i) => {
    if (!client || typeof client !== 'object' || typeof client.client_id !== 'string') {
      fail(`OIDC_CLIENTS[${i}] needs a client_id`);
    }
    return {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    };
  });
}

// ---- state driven by the control API ----------------------------------------------------------------------------

const state = {
  account: 'alice', // account of every login until changed
  denyNext: 0, // authorizations still to end in error=access_denied
  tokenFailure: null, // { mode, remaining, delayMs, afterProcessing }
  stats: freshStats(),
};

function freshStats() {
  return {
    // grant_type -> { success: n, errors: { error_code: n } }, as the client saw it (injected failures included)
    token: {},
    token_requests: 0,
    // revocation endpoint: answers, and the tokens it actually revoked by kind (RefreshToken, AccessToken)
    revocation: { success: 0, errors: {}, revoked: {} },
    introspection: { success: 0, errors: {} },
    userinfo: { success: 0, errors: {} },
    // authorizations that ended at the client's redirect_uri: with a code, or with an error (access_denied, ...)
    authorization: { success: 0, errors: {} },
    // grant.revoked events: a revoked refresh/access token, or a replayed (already rotated) refresh token
    grants_revoked: 0,
    // token endpoint failures served by the control API, by mode
    injected: { 500: 0, timeout: 0, invalid_grant: 0, reply: 0 },
  };
}

function bump(bucket, ok, code) {
  if (ok) {
    bucket.success += 1;
  } else {
    const key = code || 'unknown';
    bucket.errors[key] = (bucket.errors[key] || 0) + 1;
  }
}

function claimsFor(accountId) {
  return {
    sub: accountId,
    email: `${accountId}@example.test`,
    email_verified: true,
    name: accountId.charAt(0).toUpperCase() + accountId.slice(1),
    preferred_username: accountId,
  };
}

// ---- the provider -----------------------------------------------------------------------------------------------

const { base: basePolicy, Check } = interactionPolicy;
const policy = basePolicy();
// Log in on every authorization, even with a live session cookie: the account is then always the control API's
// and deny-next always has an interaction to act on. `result.login` is set once our interaction has logged in.
policy
  .get('login')
  .checks.add(
    new Check('test_login_every_time', 'the test server logs in on every authorization', (ctx) =>
      ctx.oidc.result?.login ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT,
    ),
  );

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-rs256' };

function revocationAllowed(ctx, client, token) {
  if (token.clientId !== client.clientId) {
    throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
  }
  return true;
}

const provider = new Provider(ISSUER, {
  clients: parseClients(),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  async findAccount(ctx, accountId) {
    return { accountId, claims: async () => claimsFor(accountId) };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // Scopes listed here are "static" (OIDC-style) scopes: granted on consent, carried by the userinfo access token
  // and echoed in the token response's `scope`. Anything else requested is dropped silently.
  scopes: ['openid', 'offline_access', 'email', 'profile', ...EXTRA_SCOPES],
  conformIdTokenClaims: false, // put email & co. in the id_token too, not only at userinfo
  responseTypes: ['code'], // the authorization code flow only: no implicit or hybrid
  pkce: { required: () => true }, // S256 is the only method oidc-provider v9 accepts
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  expiresWithSession: async () => false, // tokens outlive the (in-memory) browser session
  allowOmittingSingleRegisteredRedirectUri: false, // redirect_uri is required at the token endpoint, as RFC 6749
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: REFRESH_TOKEN_TTL,
    Interaction: 600,
    Session: 24 * 3600,
    Grant: REFRESH_TOKEN_TTL,
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: { enabled: false },
    revocation: { enabled: true, allowedPolicy: revocationAllowed },
    introspection: { enabled: true, allowedPolicy: async () => true },
    userinfo: { enabled: true },
  },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  clientBasedCORS: () => false,
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

provider.on('grant.revoked', () => {
  state.stats.grants_revoked += 1;
});
provider.on('authorization.success', () => bump(state.stats.authorization, true));
provider.on('authorization.error', (ctx, err) => bump(state.stats.authorization, false, err.error));
provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err));

// ---- helpers for the middlewares ----------------------------------------------------------------------------------

async function readBody(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(ctx) {
  const text = await readBody(ctx);
  if (!text) return {};
  try {
    const value = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch {
    // answered below
  }
  ctx.throw(400, 'the body must be a JSON object');
}

function errorCodeOf(body) {
  if (body && typeof body === 'object' && typeof body.error === 'string') return body.error;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body).error;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function oidcParam(ctx, name) {
  // ctx.oidc only exists once the provider has seen the request; params once its parser has run
  const oidc = Object.getOwnPropertyDescriptor(ctx, 'oidc') ? ctx.oidc : undefined;
  return oidc?.params?.[name] ?? oidc?.body?.[name];
}

function oidcEntities(ctx) {
  const oidc = Object.getOwnPropertyDescriptor(ctx, 'oidc') ? ctx.oidc : undefined;
  return oidc?.entities ?? {};
}

// ---- control API: /_control/* -------------------------------------------------------------------------------------

const TOKEN_FAILURE_MODES = new Set(['500', 'timeout', 'invalid_grant', 'reply', 'none']);

async function control(ctx) {
  const route = `${ctx.method} ${ctx.path}`;
  ctx.type = 'json';
  switch (route) {
    case 'GET /_control/stats':
      ctx.body = state.stats;
      return;
    case 'POST /_control/reset-stats':
      state.stats = freshStats();
      ctx.body = { ok: true };
      return;
    case 'POST /_control/reset': // everything back to the start: stats, account, pending failures and denials
      state.stats = freshStats();
      state.account = 'alice';
      state.denyNext = 0;
      state.tokenFailure = null;
      ctx.body = { ok: true };
      return;
    case 'GET /_control/state':
      ctx.body = { account: state.account, deny_next: state.denyNext, token_failure: state.tokenFailure };
      return;
    case 'POST /_control/next-account': {
      const { account } = await readJson(ctx);
      if (typeof account !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(account)) {
        ctx.throw(400, 'account must be a short string of letters, digits, ".", "_" or "-"');
      }
      state.account = account;
      ctx.body = { ok: true, account };
      return;
    }
    case 'POST /_control/token-failure': {
      const body = await readJson(ctx);
      const mode = String(body.mode);
      const count = body.count ?? 1;
      const delayMs = body.delay_ms ?? 0;
      if (!TOKEN_FAILURE_MODES.has(mode)) {
        ctx.throw(400, 'mode must be "500", "timeout", "invalid_grant", "reply" or "none"');
      }
      const status = body.status ?? 400;
      if (mode === 'reply' && (!Number.isInteger(status) || status < 200 || status > 599)) {
        ctx.throw(400, 'status must be an HTTP status code');
      }
      if (!Number.isInteger(count) || count < 0) ctx.throw(400, 'count must be a non-negative integer');
      if (!Number.isInteger(delayMs) || delayMs < 0) ctx.throw(400, 'delay_ms must be a non-negative integer');
      state.tokenFailure =
        mode === 'none' || count === 0
          ? null
          : {
              mode, remaining: count, delayMs, afterProcessing: Boolean(body.after_processing),
              status, body: body.body ?? null,
            };
      ctx.body = { ok: true, token_failure: state.tokenFailure };
      return;
    }
    case 'POST /_control/deny-next': {
      const { count = 1 } = await readJson(ctx);
      if (!Number.isInteger(count) || count < 0) ctx.throw(400, 'count must be a non-negative integer');
      state.denyNext = count;
      ctx.body = { ok: true, deny_next: count };
      return;
    }
    default:
      ctx.throw(404, `no control route ${route}`);
  }
}

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/_control/')) return next();
  try {
    await control(ctx);
  } catch (err) {
    ctx.status = err.status || 500;
    ctx.type = 'json';
    ctx.body = { error: err.expose ? err.message : 'internal error' };
    if (ctx.status >= 500) console.error('control API error:', err);
  }
});

// ---- counting (outermost around the provider's endpoints, so every answer is seen as the client saw it) --------

const COUNTED = new Map([
  [provider.pathFor('revocation'), 'revocation'],
  [provider.pathFor('introspection'), 'introspection'],
  [provider.pathFor('userinfo'), 'userinfo'],
]);
const TOKEN_PATH = provider.pathFor('token');

provider.use(async (ctx, next) => {
  const isToken = ctx.path === TOKEN_PATH && ctx.method === 'POST';
  const endpoint = COUNTED.get(ctx.path);
  if (!isToken && !endpoint) return next();
  try {
    await next();
  } finally {
    const ok = ctx.status < 400;
    const code = ok ? undefined : errorCodeOf(ctx.body) || `http_${ctx.status}`;
    if (isToken) {
      const grantType = ctx.state.grantType ?? oidcParam(ctx, 'grant_type') ?? 'unknown';
      state.stats.token[grantType] ||= { success: 0, errors: {} };
      state.stats.token_requests += 1;
      bump(state.stats.token[grantType], ok, code);
    } else if (ctx.method !== 'OPTIONS') {
      const bucket = state.stats[endpoint];
      bump(bucket, ok, code);
      if (endpoint === 'revocation' && ok) {
        const entities = oidcEntities(ctx);
        for (const kind of ['RefreshToken', 'AccessToken']) {
          if (entities[kind]) bucket.revoked[kind] = (bucket.revoked[kind] || 0) + 1;
        }
      }
    }
  }
});

// ---- token endpoint failure injection -----------------------------------------------------------------------------

provider.use(async (ctx, next) => {
  const failure = state.tokenFailure;
  if (!(ctx.path === TOKEN_PATH && ctx.method === 'POST' && failure)) return next();
  failure.remaining -= 1;
  if (failure.remaining <= 0) state.tokenFailure = null;
  state.stats.injected[failure.mode] += 1;

  if (failure.mode === 'timeout') {
    // hang, then answer normally; with after_processing the grant is processed first (tokens issued, codes and
    // refresh tokens consumed) and only the answer is late — what a client that gave up never learns about
    if (failure.afterProcessing) {
      await next();
      await sleep(failure.delayMs);
    } else {
      await sleep(failure.delayMs);
      await next();
    }
    return;
  }
  // the provider never sees this request: read grant_type for the stats ourselves
  ctx.state.grantType = new URLSearchParams(await readBody(ctx)).get('grant_type') ?? undefined;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'json';
  if (failure.mode === 'reply') {
    // a canned answer: any status with any JSON body (null: an empty body), e.g. GitHub's 200 with an error
    ctx.status = failure.status;
    ctx.body = failure.body === null ? '' : failure.body;
  } else if (failure.mode === '500') {
    ctx.status = 500;
    ctx.body = { error: 'server_error', error_description: 'injected failure (test control API)' };
  } else {
    ctx.status = 400;
    ctx.body = { error: 'invalid_grant', error_description: 'injected invalid_grant (test control API)' };
  }
});

// ---- interactions: log in and consent without a human -----------------------------------------------------------

async function consentToEverything(interaction) {
  const { prompt, params, session, grantId } = interaction;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { details } = prompt;
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const saved = await grant.save();
  return grantId ? {} : { grantId: saved };
}

const INTERACTION = /^\/interaction\/([^/]+)$/;

provider.use(async (ctx, next) => {
  if (!INTERACTION.test(ctx.path)) return next();
  try {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    let merge = true;
    if (state.denyNext > 0) {
      state.denyNext -= 1;
      result = { error: 'access_denied', error_description: 'the end-user denied the request (test control API)' };
      merge = false;
    } else if (interaction.prompt.name === 'login') {
      result = { login: { accountId: state.account } };
    } else if (interaction.prompt.name === 'consent') {
      result = { consent: await consentToEverything(interaction) };
    } else {
      result = { error: 'interaction_required', error_description: `unsupported prompt ${interaction.prompt.name}` };
      merge = false;
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.redirect(returnTo);
    ctx.status = 303;
  } catch (err) {
    console.error('interaction failed:', err);
    ctx.status = err.statusCode || 500;
    ctx.type = 'json';
    ctx.body = { error: err.error || 'server_error', error_description: err.error_description || err.message };
  }
});

// ---- start ----------------------------------------------------------------------------------------------------------

provider.on('error', (err) => console.error('koa error:', err));

const server = provider.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`READY ${PORT}\n`);
});
server.on('error', (err) => {
  console.error(`oauth test server: cannot listen on 127.0.0.1:${PORT}: ${err.code || err.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
if (process.env.EXIT_ON_STDIN_CLOSE === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
