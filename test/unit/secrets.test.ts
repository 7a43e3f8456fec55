// Secrets in the topology (docs/security.md): ${VAR} and VAR_FILE, secret values kept strings, and the second wall —
// a secret that reaches a log line, the CLI's output or an error anyway is replaced. Also the OAuth token provider's
// reuse and refresh of client-credentials tokens.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oauthBearerProvider, type OAuthToken } from '../../src/kafka/oauth-token.ts';
import { redactSecrets, registerSecret } from '../../src/secrets.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { ROOT, runCli } from '../helpers/cli.ts';

const topology = (kafka: string, http = '') =>
  [
    'app: s',
    `kafka: ${kafka}`,
    ...(http ? [`http: ${http}`] : []),
    'topics: { in: { name: s-in, partitions: 1 }, out: { name: s-out, partitions: 1 } }',
    'processors:',
    '  - { name: p, type: projection, input: in, output: out, on: { A: { set: { a: data.a } } } }',
  ].join('\n');

test('a secret that looks like a number or a boolean stays a string; other plain ${VAR}s still take their YAML type', (t) => {
  const text = topology('{ brokers: "b:1", connectionTimeoutMs: ${TIMEOUT}, sasl: { mechanism: plain, username: u, password: ${PW} } }', '{ token: ${TOK} }');
  const { topology: parsed } = parseTopology(text, 'x.yaml', { env: { PW: '0123456', TIMEOUT: '5000', TOK: '1234567890123456789' }, checkModules: false });
  t.deepEqual(parsed.kafka.sasl, { mechanism: 'plain', username: 'u', password: '0123456' });
  t.is(parsed.http.token, '1234567890123456789');
  t.is(parsed.kafka.connectionTimeoutMs, 5000);
});

test('${VAR} with VAR unset reads the file VAR_FILE names, without its last line break; an unreadable file is a problem that names VAR_FILE', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'secret-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pw'), 'from-the-file\n');
  const text = topology('{ brokers: "b:1", sasl: { mechanism: plain, username: u, password: "${PW}" } }');
  const parsed = parseTopology(text, 'x.yaml', { env: { PW_FILE: join(dir, 'pw') }, checkModules: false }).topology;
  t.is(parsed.kafka.sasl?.mechanism === 'plain' ? parsed.kafka.sasl.password : undefined, 'from-the-file');
  // VAR itself wins over VAR_FILE
  const direct = parseTopology(text, 'x.yaml', { env: { PW: 'direct', PW_FILE: join(dir, 'pw') }, checkModules: false }).topology;
  t.is(direct.kafka.sasl?.mechanism === 'plain' ? direct.kafka.sasl.password : undefined, 'direct');
  const e = t.throws(() => parseTopology(text, 'x.yaml', { env: { PW_FILE: join(dir, 'missing') }, checkModules: false }));
  t.regex(e.message, /PW_FILE names .*missing, which cannot be read \(ENOENT\)/);
});

test('registered secrets are replaced in text, also URL-encoded or JSON-escaped; short values are not secrets', (t) => {
  registerSecret('p@ss"word/123');
  registerSecret('abc');
  t.is(redactSecrets('a p@ss"word/123 b'), 'a [redacted] b');
  t.is(redactSecrets(`u=${encodeURIComponent('p@ss"word/123')}`), 'u=[redacted]');
  t.is(redactSecrets(JSON.stringify({ e: 'p@ss"word/123' })), '{"e":"[redacted]"}');
  t.is(redactSecrets('abc'), 'abc');
});

test('a log line whose message quotes a secret of the topology shows it replaced', (t) => {
  const script = [
    "import { createLogger } from './src/log.ts';",
    "import { registerSecret } from './src/secrets.ts';",
    "registerSecret('the-log-secret-42');",
    "createLogger().error({ event: 'x', error: 'auth failed for the-log-secret-42' });",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  t.regex(r.stderr, /auth failed for \[redacted\]/);
  t.false(r.stderr.includes('the-log-secret-42'));
});

test('the CLI never prints a secret, even where the same variable fills a setting whose error quotes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'secret-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'topology.yaml');
  // the token's variable also fills port, whose schema error quotes the value it got
  writeFileSync(file, topology('{ brokers: "b:1" }', '{ token: "${TOK}", port: "${TOK}" }'));
  const secret = 'cli-secret-token-0123456789';
  const r = await runCli(['validate', file], { env: { TOK: secret } });
  t.is(r.code, 1);
  t.regex(r.stderr, /http\.port\) expected number, got string "\[redacted\]"/);
  t.false((r.stdout + r.stderr).includes(secret), r.stderr);
});

test('the token provider reuses a token until 80% of its lifetime, then fetches a new one; concurrent calls share one request', async (t) => {
  let now = 0;
  const fetched: OAuthToken[] = [];
  const provider = oauthBearerProvider(
    { tokenEndpoint: 'http://x/token', clientId: 'c', clientSecret: 's' },
    {
      now: () => now,
      fetch: async () => {
        await new Promise((r) => setTimeout(r, 10));
        const token = { value: `t${fetched.length}`, expiresAt: now + 100_000 };
        fetched.push(token);
        return token;
      },
    },
  );
  const [a, b] = await Promise.all([provider(), provider()]);
  t.is(a.value, 't0');
  t.is(b.value, 't0');
  t.is(fetched.length, 1);
  now = 79_000;
  t.is((await provider()).value, 't0');
  now = 80_001;
  t.is((await provider()).value, 't1', 'refreshed before it expires');
  t.is(fetched.length, 2);
});

test('a short-lived token is refreshed at least 15 s before it expires: kafkajs re-authenticates 10 s before the session ends', async (t) => {
  let now = 0;
  let n = 0;
  const provider = oauthBearerProvider(
    { tokenEndpoint: 'http://x/token', clientId: 'c', clientSecret: 's' },
    { now: () => now, fetch: async () => ({ value: `t${n++}`, expiresAt: now + 30_000 }) },
  );
  t.is((await provider()).value, 't0');
  now = 14_000;
  t.is((await provider()).value, 't0');
  now = 15_001;
  t.is((await provider()).value, 't1');
});
