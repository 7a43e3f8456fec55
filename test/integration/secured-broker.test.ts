// foldstream against a broker that requires security: one secured broker of this file's own (scripts/kafka/secure.ts,
// started here and stopped at the end) with SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), mutual TLS
// and ACLs. For each mechanism the counting app runs with exactly the ACLs `foldstream describe --acls` prints, its
// secrets given through ${ENV} or *_FILE, and passes the exactly-once assertion; a wrong password, an expired token
// and a missing ACL each stop it with a clear error; no output of any run shows a secret.
import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTopology } from '../../src/topology/load.ts';
import { requiredAcls } from '../../src/topology/acls.ts';
import { assertExactlyOnce, cleanUpAfter, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { Instance } from '../helpers/processes.ts';
import { grantAcls, startSecuredBroker, startTokenEndpoint, type SecuredBroker, type TokenEndpoint } from '../helpers/secured-broker.ts';

let broker: SecuredBroker;

test.before(async () => {
  broker = await startSecuredBroker();
});

test.after.always(async () => {
  await broker?.stop();
});

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

/** The counting app with `kafkaYaml`, its ACLs granted to `principal`, run until it has processed `records`. */
async function runCounting(t: ExecutionContext, kafkaYaml: string[], principal: string, env: Record<string, string>, records = 400): Promise<Run> {
  const c = await countingApp({ partitions: 2, brokers: broker.harness, kafkaYaml });
  const instances = cleanUpAfter(t, c);
  const loaded = parseTopology(readFileSync(c.file, 'utf8'), c.file, { env: { ...process.env, ...env } });
  await grantAcls(broker, principal, requiredAcls(loaded.topology));
  const model = await produceCounting(c.input, records, 37, undefined, broker.harness);
  const instance = new Instance(c.file, { stateDir: c.stateDir('s'), env });
  instances.push(instance);
  await instance.waitReady(120_000);
  await waitForCaughtUp(`${c.app}-counter`, c.input, 120_000, broker.harness);
  await assertExactlyOnce(t, c, model, broker.harness);
  t.is(await instance.stop(), 0, 'the app drains and exits 0');
  return { c, instance };
}

const tlsCa = () => `ssl: { ca: ${broker.layout.caFile} }`;

test('SASL_SSL with SCRAM-SHA-512: the counting app is exactly once, with only the ACLs describe --acls prints; the password never shows', async (t) => {
  const { instance } = await runCounting(
    t,
    [`brokers: "${broker.saslSsl}"`, tlsCa(), 'sasl: { mechanism: scram-sha-512, username: "${KAFKA_USER}", password: "${KAFKA_PASSWORD}" }'],
    `User:${broker.secrets.scram512.username}`,
    { KAFKA_USER: broker.secrets.scram512.username, KAFKA_PASSWORD: broker.secrets.scram512.password },
  );
  assertNoSecret(t, 'the log', readFileSync(instance.logFile, 'utf8'), secretValues());
});
