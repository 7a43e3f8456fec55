// The HTTP port locked down (docs/security.md): tokens with scopes (read, command, metrics), 401 without a valid
// token and 403 without the scope, open probes, open metrics by choice, HTTPS with a certificate and key, a body
// limit and a per-client rate limit. Against the real HttpServer on loopback, with the routes registered as the query
// API and the command gateway register theirs.
import test from 'ava';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ensureCertificates, securedLayout, securedSecrets } from '../../scripts/kafka/secure.ts';
import { HttpServer, sendJson, type HttpServerOptions } from '../../src/http/server.ts';
import { registerSecret } from '../../src/secrets.ts';
import { memoryLogger } from '../helpers/log.ts';

const READ = 'read-token-0123456789abcdef';
const COMMAND = 'command-token-0123456789abcdef';
const METRICS = 'metrics-token-0123456789abcdef';
const ALL = 'all-scopes-token-0123456789abcdef';

async function serve(opts: Partial<HttpServerOptions> = {}) {
  const http = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    token: ALL,
    tokens: [
      { token: READ, scopes: ['read'] },
      { token: COMMAND, scopes: ['command'] },
      { token: METRICS, scopes: ['metrics'] },
    ],
    registry: new Registry(),
    readiness: () => ({ ready: true, detail: {} }),
    log: memoryLogger(),
    ...opts,
  });
  // as the query API and the command gateway register theirs
  http.route('GET', /^\/stores\/([^/]+)\/([^/]+)\/?$/, (_req, res) => sendJson(res, 200, { entries: [] }), 'store_list', 'read');
  http.route('POST', /^\/commands\/([^/]+)\/?$/, async (req, res) => {
    let size = 0;
    for await (const chunk of req) size += (chunk as Buffer).length;
    sendJson(res, 202, { size });
  }, 'command', 'command');
  const port = await http.listen();
  const call = async (method: string, path: string, token?: string, body?: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body } : {}),
    });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };
  return { http, port, call };
}

test('each route needs its scope: read for queries, command for the gateway, metrics for /metrics; a token with every scope passes all', async (t) => {
  const { http, call } = await serve();
  t.teardown(() => http.close());
  const routes = [
    ['GET', '/stores/p/view', 'read'],
    ['POST', '/commands/CreateUser', 'command'],
    ['GET', '/metrics', 'metrics'],
  ] as const;
  const tokens = { read: READ, command: COMMAND, metrics: METRICS };
  for (const [method, path, scope] of routes) {
    for (const [has, token] of Object.entries(tokens)) {
      const r = await call(method, path, token, method === 'POST' ? '{}' : undefined);
      if (has === scope) t.true(r.status < 300, `${has} token on ${method} ${path}: ${r.status} ${r.text}`);
      else {
        t.is(r.status, 403, `${has} token on ${method} ${path}`);
        t.regex(r.text, new RegExp(`lacks scope ${scope}`));
        t.regex(r.headers.get('www-authenticate') ?? '', /insufficient_scope/);
      }
    }
    t.true((await call(method, path, ALL, method === 'POST' ? '{}' : undefined)).status < 300, `the all-scopes token on ${path}`);
  }
});

test('no token or an unknown one is 401 with WWW-Authenticate, on every route but the probes; a prefix or a longer token is unknown', async (t) => {
  const { http, call } = await serve();
  t.teardown(() => http.close());
  for (const token of [undefined, 'wrong', READ.slice(0, -1), `${READ}x`, READ.toUpperCase()]) {
    for (const [method, path] of [['GET', '/stores/p/view'], ['POST', '/commands/X'], ['GET', '/metrics'], ['GET', '/nothing-here']] as const) {
      const r = await call(method, path, token, method === 'POST' ? '{}' : undefined);
      t.is(r.status, 401, `${token ?? 'no token'} on ${method} ${path}`);
      t.is(r.headers.get('www-authenticate'), 'Bearer realm="foldstream"');
    }
  }
  t.is((await call('GET', '/healthz')).status, 200);
  t.is((await call('GET', '/readyz')).status, 200);
});

test('openMetrics serves /metrics without a token while the other routes keep theirs', async (t) => {
  const { http, call } = await serve({ openMetrics: true });
  t.teardown(() => http.close());
  t.is((await call('GET', '/metrics')).status, 200);
  t.is((await call('GET', '/stores/p/view')).status, 401);
});

test('without any token the port is open, as before', async (t) => {
  const { http, call } = await serve({ token: undefined, tokens: [] });
  t.teardown(() => http.close());
  t.is((await call('GET', '/stores/p/view')).status, 200);
  t.is((await call('GET', '/metrics')).status, 200);
});

test('a body over maxBodyBytes is 413 before the route reads it; one at the limit passes', async (t) => {
  const { http, call } = await serve({ maxBodyBytes: 100 });
  t.teardown(() => http.close());
  const big = await call('POST', '/commands/X', COMMAND, JSON.stringify({ data: 'x'.repeat(200) }));
  t.is(big.status, 413);
  t.regex(big.text, /larger than 100 bytes/);
  t.is((await call('POST', '/commands/X', COMMAND, JSON.stringify({ data: 'x'.repeat(100 - 11) }))).status, 202);
});

test('over the rate limit a client gets 429 with Retry-After; the probes are not limited', async (t) => {
  let now = 1_000_000;
  const { http, call } = await serve({ rateLimit: { requestsPerSecond: 2, burst: 3 }, now: () => now });
  t.teardown(() => http.close());
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await call('GET', '/stores/p/view', READ)).status);
  t.deepEqual(statuses, [200, 200, 200, 429, 429], 'the burst, then refused');
  const limited = await call('GET', '/stores/p/view', READ);
  t.is(limited.status, 429);
  t.is(limited.headers.get('retry-after'), '1');
  t.regex(limited.text, /too many requests/);
  now += 1000;
  t.deepEqual([(await call('GET', '/stores/p/view', READ)).status, (await call('GET', '/stores/p/view', READ)).status, (await call('GET', '/stores/p/view', READ)).status], [200, 200, 429], 'two a second later');
  for (let i = 0; i < 5; i++) t.is((await call('GET', '/healthz')).status, 200);
});

test('HTTPS with a certificate and an encrypted key: clients that trust the CA get answers; plain HTTP gets none', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'http-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const l = securedLayout(dir, 1);
  const secrets = securedSecrets(l);
  ensureCertificates(l, secrets);
  // the test broker's certificate (for 127.0.0.1) serves as the HTTP port's, its key encrypted with a passphrase
  const passphrase = 'http-key-passphrase-123';
  const key = createPrivateKey(readFileSync(join(dir, 'tls/broker.plain.key.pem'), 'utf8')).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
  t.regex(key, /ENCRYPTED PRIVATE KEY/);
  const tls = { cert: readFileSync(join(dir, 'tls/broker.pem'), 'utf8'), key, passphrase };
  const { http, port } = await serve({ tls });
  t.teardown(() => http.close());
  const ca = readFileSync(l.caFile, 'utf8');
  const get = (path: string, token?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  t.is((await get('/healthz')).status, 200);
  t.is((await get('/stores/p/view', READ)).status, 200);
  t.is((await get('/stores/p/view')).status, 401);
  await t.throwsAsync(fetch(`http://127.0.0.1:${port}/healthz`), undefined, 'plain HTTP is not answered');
});

test('an error answer never carries a registered secret', async (t) => {
  const secret = 'a-secret-value-9f8e7d6c';
  registerSecret(secret);
  const http = new HttpServer({ host: '127.0.0.1', port: 0, token: undefined, registry: new Registry(), readiness: () => ({ ready: true, detail: {} }), log: memoryLogger() });
  http.route('GET', /^\/boom$/, () => {
    throw new Error(`connection failed for password ${secret}`);
  }, 'boom');
  const port = await http.listen();
  t.teardown(() => http.close());
  const r = await fetch(`http://127.0.0.1:${port}/boom`);
  t.is(r.status, 500);
  const text = await r.text();
  t.false(text.includes(secret), text);
  t.regex(text, /\[redacted\]/);
});
