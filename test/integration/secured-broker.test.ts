// foldstream against a broker that requires security: one secured broker of this file's own (scripts/kafka/secure.ts,
// started here and stopped at the end) with SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), mutual TLS
// and ACLs. For each mechanism the counting app runs with exactly the ACLs `foldstream describe --acls` prints, its
// secrets given through ${ENV} or *_FILE, and passes the exactly-once assertion; a wrong password, an expired token
// and a missing ACL each stop it with a clear error; no output of any run shows a secret.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTopology } from '../../src/topology/load.ts';
import { requiredAcls } from '../../src/topology/acls.ts';
import { FIXTURES, runCli } from '../helpers/cli.ts';
import { assertExactlyOnce, cleanUpAfter, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { createTopics, openTransactions, readAll } from '../helpers/kafka.ts';
import { Instance, waitFor } from '../helpers/processes.ts';
import { grantAcls, startSecuredBroker, startTokenEndpoint, type SecuredBroker } from '../helpers/secured-broker.ts';

let broker: SecuredBroker;

test.before(async () => {
  broker = await startSecuredBroker();
});

test.after.always(async () => {
  await broker?.stop();
});

/**
 * At most two foldstream apps of this file at once: each is a process with its own clients, and a small CI machine
 * running them all together makes every one of them slow.
 */
let slots = 2;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (slots === 0) await new Promise<void>((r) => waiting.push(r));
  else slots--;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else slots++;
  }
}


/** Every secret of the broker and the endpoint, to look for in outputs. */
function secretValues(extra: string[] = []): string[] {
  const s = broker.secrets;
  return [s.admin.password, s.plain.password, s.scram256.password, s.scram512.password, s.clientKeyPassphrase, ...extra];
}

/** Fails the test when any secret shows in the text (whole, or URL- or JSON-encoded). */
function assertNoSecret(t: ExecutionContext, what: string, text: string, secrets: string[]): void {
  for (const s of secrets) {
    const forms = [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)];
    t.false(forms.some((f) => text.includes(f)), `a secret (${s.slice(0, 2)}…) appears in ${what}`);
  }
}

interface Run {
  c: CountingApp;
  instance: Instance;
}

/**
 * The counting app with `kafkaYaml`, its ACLs granted to `principal`, run until it has processed `records`; `during`
 * runs while it is up, after the exactly-once assertion.
 */
async function runCounting(
  t: ExecutionContext,
  kafkaYaml: string[],
  principal: string,
  env: Record<string, string>,
  records = 400,
  during?: (i: Instance, c: CountingApp) => Promise<void>,
  extraYaml: string[] = [],
): Promise<Run> {
  const c = await countingApp({ partitions: 2, brokers: broker.harness, kafkaYaml, extraYaml });
  const instances = cleanUpAfter(t, c);
  const loaded = parseTopology(readFileSync(c.file, 'utf8'), c.file, { env: { ...process.env, ...env } });
  await grantAcls(broker, principal, requiredAcls(loaded.topology));
  const model = await produceCounting(c.input, records, 37, undefined, broker.harness);
  const instance = new Instance(c.file, { stateDir: c.stateDir('s'), env });
  instances.push(instance);
  await instance.waitReady(240_000);
  await waitForCaughtUp(`${c.app}-counter`, c.input, 120_000, broker.harness);
  await assertExactlyOnce(t, c, model, broker.harness);
  await during?.(instance, c);
  t.is(await instance.stop(), 0, 'the app drains and exits 0');
  return { c, instance };
}

const tlsCa = () => `ssl: { ca: ${broker.layout.caFile} }`;

test('SASL_SSL with SCRAM-SHA-512: the counting app is exactly once with only the ACLs describe --acls prints; no output shows the password (log, /metrics, /readyz, the query API, describe, validate)', (t) =>
  slot(async () => {
    const env = { KAFKA_USER: broker.secrets.scram512.username, KAFKA_PASSWORD: broker.secrets.scram512.password, HTTP_TOKEN: `http-token-${broker.secrets.admin.password}` };
    const kafkaYaml = [`brokers: "${broker.saslSsl}"`, tlsCa(), 'sasl: { mechanism: scram-sha-512, username: "${KAFKA_USER}", password: "${KAFKA_PASSWORD}" }'];
    const secrets = secretValues([env.HTTP_TOKEN]);
    const outputs: [string, string][] = [];
    const { c, instance } = await runCounting(t, kafkaYaml, `User:${broker.secrets.scram512.username}`, env, 400, async (i, app) => {
      const get = async (path: string, auth = true) => {
        const r = await fetch(`http://127.0.0.1:${i.httpPort}${path}`, { headers: auth ? { authorization: `Bearer ${env.HTTP_TOKEN}` } : {} });
        outputs.push([`GET ${path} (${r.status})`, `${JSON.stringify([...r.headers])}\n${await r.text()}`]);
        return r.status;
      };
      t.is(await get('/metrics'), 200);
      t.is(await get('/readyz', false), 200);
      t.is(await get('/stores/counter/counts'), 200);
      t.is(await get('/stores/counter/counts', false), 401);
      t.is(await get(`/stores/counter/counts/key-1`), 200);
      for (const args of [['describe', app.file], ['describe', '--acls', app.file], ['validate', app.file]]) {
        const r = await runCli(args, { env });
        t.is(r.code, 0, r.stderr);
        outputs.push([`foldstream ${args.join(' ')}`, r.stdout + r.stderr]);
      }
    }, ['http: { port: 0, token: "${HTTP_TOKEN}" }']);
    outputs.push(['the log', readFileSync(instance.logFile, 'utf8')]);
    t.true(outputs.length >= 9);
    for (const [what, text] of outputs) assertNoSecret(t, what, text, secrets);
    t.truthy(c);
  }),
);

test('SASL_SSL with PLAIN, the password from a file (KAFKA_PASSWORD_FILE): exactly once; the password never shows', (t) =>
  slot(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'password');
    writeFileSync(file, `${broker.secrets.plain.password}\n`, { mode: 0o600 });
    const { instance } = await runCounting(
      t,
      [`brokers: "${broker.saslSsl}"`, tlsCa(), `sasl: { mechanism: plain, username: ${broker.secrets.plain.username}, password: "\${KAFKA_PASSWORD}" }`],
      `User:${broker.secrets.plain.username}`,
      { KAFKA_PASSWORD_FILE: file },
    );
    assertNoSecret(t, 'the log', readFileSync(instance.logFile, 'utf8'), secretValues());
  }),
);

test('SASL_SSL with SCRAM-SHA-256: exactly once', (t) =>
  slot(async () => {
    const { instance } = await runCounting(
      t,
      [`brokers: "${broker.saslSsl}"`, tlsCa(), `sasl: { mechanism: scram-sha-256, username: ${broker.secrets.scram256.username}, password: "\${KAFKA_PASSWORD}" }`],
      `User:${broker.secrets.scram256.username}`,
      { KAFKA_PASSWORD: broker.secrets.scram256.password },
    );
    assertNoSecret(t, 'the log', readFileSync(instance.logFile, 'utf8'), secretValues());
  }),
);

test('mutual TLS with an encrypted client key and its passphrase: the certificate is the principal; exactly once', (t) =>
  slot(async () => {
    const l = broker.layout;
    const { instance } = await runCounting(
      t,
      [`brokers: "${broker.mtls}"`, `ssl: { ca: ${l.caFile}, cert: ${l.clientCertFile}, key: ${l.clientKeyFile}, passphrase: "\${KEY_PASSPHRASE}" }`],
      `User:${broker.secrets.mtls.username}`,
      { KEY_PASSPHRASE: broker.secrets.clientKeyPassphrase },
    );
    assertNoSecret(t, 'the log', readFileSync(instance.logFile, 'utf8'), secretValues());
  }),
);

test('OAUTHBEARER with client-credentials tokens from a token endpoint: exactly once, and tokens are refreshed before they expire while the app runs', (t) =>
  slot(async () => {
    const endpoint = await startTokenEndpoint('oauth-user', 25);
    t.teardown(() => endpoint.close());
    const oauthYaml = () => [
      `brokers: "${broker.saslSsl}"`,
      tlsCa(),
      `sasl: { mechanism: oauthbearer, tokenEndpoint: "${endpoint.url}", clientId: ${endpoint.clientId}, clientSecret: "\${OAUTH_SECRET}" }`,
    ];
    const env = { OAUTH_SECRET: endpoint.clientSecret };
    const c = await countingApp({ partitions: 2, brokers: broker.harness, kafkaYaml: oauthYaml() });
    const instances = cleanUpAfter(t, c);
    const loaded = parseTopology(readFileSync(c.file, 'utf8'), c.file, { env: { ...process.env, ...env } });
    await grantAcls(broker, 'User:oauth-user', requiredAcls(loaded.topology));
    const model = await produceCounting(c.input, 200, 37, undefined, broker.harness);
    const instance = new Instance(c.file, { stateDir: c.stateDir('s'), env });
    instances.push(instance);
    await instance.waitReady(240_000);
    await waitForCaughtUp(`${c.app}-counter`, c.input, 120_000, broker.harness);
    // past the lifetime of the first token: the broker ends sessions at their token's expiry, so the app keeps working
    // only with tokens fetched again before then
    const first = endpoint.issued[0]!.at;
    await waitFor(() => Date.now() > first + 35_000, 60_000, 'the first token to expire');
    await produceCounting(c.input, 200, 37, model, broker.harness);
    await waitForCaughtUp(`${c.app}-counter`, c.input, 120_000, broker.harness);
    await assertExactlyOnce(t, c, model, broker.harness);
    t.true(endpoint.issued.length >= 2, `tokens were fetched again (${endpoint.issued.length} issued)`);
    t.is(endpoint.refused, 0);
    t.true(instance.alive, 'the app kept running past its first token');
    t.is(await instance.stop(), 0);
    assertNoSecret(t, 'the log', readFileSync(instance.logFile, 'utf8'), secretValues([endpoint.clientSecret, ...endpoint.issued.map((i) => i.token)]));
  }),
);

/** `foldstream run` of a topology that cannot start: its exit code and everything it printed. */
async function failedRun(t: ExecutionContext, kafkaYaml: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const c = await countingApp({ partitions: 2, brokers: broker.harness, kafkaYaml });
  const instances = cleanUpAfter(t, c);
  const instance = new Instance(c.file, { stateDir: c.stateDir('s'), env: { ...env, FOLDSTREAM_KAFKAJS_LOG: 'warn' } });
  instances.push(instance);
  const code: number | null | 'running' = await Promise.race([instance.waitExit(), new Promise<'running'>((r) => setTimeout(() => r('running'), 240_000))]);
  if (code === 'running') {
    instance.kill();
    t.fail(`the app did not stop on its own (log: ${instance.logFile})`);
  }
  return { code: typeof code === 'number' ? code : null, output: readFileSync(instance.logFile, 'utf8') };
}

test('a wrong password stops the start with KAFKA_AUTHENTICATION_FAILED naming the mechanism; neither password shows anywhere', (t) =>
  slot(async () => {
    const wrong = `wrong-${broker.secrets.scram512.password.slice(0, 4)}-not-the-password`;
    const { code, output } = await failedRun(
      t,
      [`brokers: "${broker.saslSsl}"`, tlsCa(), `sasl: { mechanism: scram-sha-512, username: ${broker.secrets.scram512.username}, password: "\${KAFKA_PASSWORD}" }`],
      { KAFKA_PASSWORD: wrong },
    );
    t.is(code, 1);
    t.regex(output, /KAFKA_AUTHENTICATION_FAILED/);
    t.regex(output, /SCRAM-SHA-512/);
    assertNoSecret(t, 'the output of the failed run', output, secretValues([wrong]));
  }),
);

test('an expired OAuth token stops the start with KAFKA_AUTHENTICATION_FAILED; the client secret and the token never show', (t) =>
  slot(async () => {
    const endpoint = await startTokenEndpoint('oauth-user', -120);
    t.teardown(() => endpoint.close());
    const { code, output } = await failedRun(
      t,
      [`brokers: "${broker.saslSsl}"`, tlsCa(), `sasl: { mechanism: oauthbearer, tokenEndpoint: "${endpoint.url}", clientId: ${endpoint.clientId}, clientSecret: "\${OAUTH_SECRET}" }`],
      { OAUTH_SECRET: endpoint.clientSecret },
    );
    t.is(code, 1);
    t.regex(output, /KAFKA_AUTHENTICATION_FAILED: the broker 127\.0\.0\.1:\d+ refused the OAuth token of client foldstream-test-client \(SASL OAUTHBEARER: invalid_token\)/);
    t.true(endpoint.issued.length >= 1, 'the app got a token');
    assertNoSecret(t, 'the output of the failed run', output, secretValues([endpoint.clientSecret, ...endpoint.issued.map((i) => i.token)]));
  }),
);

test('a wrong OAuth client secret: the token endpoint refuses it, and the start stops with KAFKA_AUTHENTICATION_FAILED naming the endpoint', (t) =>
  slot(async () => {
    const endpoint = await startTokenEndpoint('oauth-user');
    t.teardown(() => endpoint.close());
    const wrong = `${endpoint.clientSecret}-wrong`;
    const { code, output } = await failedRun(
      t,
      [`brokers: "${broker.saslSsl}"`, tlsCa(), `sasl: { mechanism: oauthbearer, tokenEndpoint: "${endpoint.url}", clientId: ${endpoint.clientId}, clientSecret: "\${OAUTH_SECRET}" }`],
      { OAUTH_SECRET: wrong },
    );
    t.is(code, 1);
    t.regex(output, /KAFKA_AUTHENTICATION_FAILED/);
    t.true(output.includes(endpoint.url), 'the error names the endpoint');
    t.true(endpoint.refused >= 1);
    assertNoSecret(t, 'the output of the failed run', output, secretValues([wrong, endpoint.clientSecret]));
  }),
);

// The ACL set of the counting app (two partitions) when its topics exist (run --no-create-topics); CREATE is needed
// by, and granted to, the runs above, which create their topics. One test per ACL, each with an app of its own.
const SAMPLE_ACLS = requiredAcls(
  parseTopology(
    [
      'app: sample',
      'kafka: { brokers: 127.0.0.1:1 }',
      'topics: { input: { name: sample-input, partitions: 2 }, counts: { name: sample-counts, partitions: 2 } }',
      'stores: { counts: {} }',
      'processors:',
      `  - { name: counter, type: custom, input: input, module: ${join(FIXTURES, 'modules/counter.ts')}, stores: [counts], outputs: [counts] }`,
    ].join('\n'),
    join(FIXTURES, 'sample.yaml'),
  ).topology,
  { createTopics: false },
);

for (const [i, sample] of SAMPLE_ACLS.entries()) {
  test(`without ${sample.operation} on ${sample.resource} ${sample.name.replace('sample', '<app>')}, the app reports KAFKA_AUTHORIZATION_FAILED naming it and writes nothing`, (t) =>
    slot(async () => {
      const principal = `User:${broker.secrets.scram512.username}`;
      const kafkaYaml = [`brokers: "${broker.saslSsl}"`, tlsCa(), 'sasl: { mechanism: scram-sha-512, username: "${KAFKA_USER}", password: "${KAFKA_PASSWORD}" }'];
      const env = { KAFKA_USER: broker.secrets.scram512.username, KAFKA_PASSWORD: broker.secrets.scram512.password };
      const c = await countingApp({ partitions: 2, brokers: broker.harness, kafkaYaml });
      const instances = cleanUpAfter(t, c);
      const acls = requiredAcls(parseTopology(readFileSync(c.file, 'utf8'), c.file, { env: { ...process.env, ...env } }).topology, { createTopics: false });
      t.deepEqual(acls.map((a) => `${a.resource} ${a.operation} ${a.name.replace(c.app, 'sample')}`), SAMPLE_ACLS.map((a) => `${a.resource} ${a.operation} ${a.name}`));
      const missing = acls[i]!;
      await createTopics(
        [
          { topic: c.output, numPartitions: 2 },
          { topic: c.changelog, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
          { topic: c.dlq, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '-1' }] },
        ],
        broker.harness,
      );
      await grantAcls(broker, principal, acls.filter((_, j) => j !== i));
      await produceCounting(c.input, 50, 7, undefined, broker.harness);
      const instance = new Instance(c.file, { stateDir: c.stateDir('s'), env, extraArgs: ['--no-create-topics'] });
      instances.push(instance);
      const line = await instance.waitLine(
        (l) => l.code === 'KAFKA_AUTHORIZATION_FAILED' || String(l.error ?? '').startsWith('KAFKA_AUTHORIZATION_FAILED'),
        240_000,
        `an authorization error (log: ${instance.logFile})`,
      );
      const text = JSON.stringify(line);
      t.true(text.includes(missing.name), `the error names ${missing.name}: ${text}`);
      await instance.stop();
      t.deepEqual(await readAll([c.output, c.changelog], { brokers: broker.harness }), [], 'nothing committed');
      t.deepEqual(await openTransactions(c.output, broker.harness), [], 'no transaction left open on the output');
      t.deepEqual(await openTransactions(c.changelog, broker.harness), [], 'no transaction left open on the changelog');
    }),
  );
}
