// `foldstream describe --acls`: the ACLs derived from the same names the app uses (the secured-broker integration
// test proves them sufficient and minimal for the counting app; this checks the other processor kinds' shapes).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requiredAcls } from '../../src/topology/acls.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { FIXTURES, runCli } from '../helpers/cli.ts';

const file = join(FIXTURES, 'rich.yaml');
const rich = () => parseTopology(readFileSync(file, 'utf8'), file, { checkModules: false }).topology;
const has = (acls: ReturnType<typeof requiredAcls>, resource: string, name: string, operation: string) =>
  acls.some((a) => a.resource === resource && a.name === name && a.operation === operation);

test('an aggregate, a projection with groupBy and a custom processor: groups and transactional ids per stage, the gateway, the repartition topic', (t) => {
  const acls = requiredAcls(rich());
  // the projection's two stages each have a group and a prefix for the transactional ids of their runners (one per
  // instance: <app>-<stage>-<instanceId>, exactly-once v2)
  for (const stage of ['shop-users', 'shop-email-index', 'shop-email-index-group', 'shop-auditor']) {
    t.true(has(acls, 'group', stage, 'READ'), stage);
    t.true(acls.some((a) => a.resource === 'transactionalId' && a.name === `${stage}-` && a.prefixed === true && a.operation === 'WRITE'), `${stage}-*`);
  }
  t.false(acls.some((a) => a.resource === 'transactionalId' && !a.prefixed), 'no transactional id per task any more');
  t.true(has(acls, 'topic', 'shop-email-index-repartition', 'READ'));
  t.true(has(acls, 'topic', 'shop-email-index-repartition', 'WRITE'));
  t.true(has(acls, 'topic', 'shop-commands', 'WRITE'), 'the command gateway writes commands');
  t.true(has(acls, 'topic', 'shop-command-results', 'READ'), 'the command gateway waits for replies');
  t.true(has(acls, 'topic', 'shop-audit', 'WRITE'), 'a route step target');
  t.true(has(acls, 'topic', 'shop-users-by-email', 'DESCRIBE_CONFIGS'), 'a view: its compaction is checked');
  t.false(acls.some((a) => a.name.endsWith('-scratch-changelog')), 'a store without changelog has no topic');
  t.false(acls.some((a) => a.operation === 'DESCRIBE'), 'DESCRIBE is implied by the others');
  t.false(requiredAcls(rich(), { createTopics: false }).some((a) => a.operation === 'CREATE'));
  const keys = acls.map((a) => `${a.resource} ${a.name} ${a.operation}`);
  t.is(new Set(keys).size, keys.length, 'no duplicates');
});

test('under at_least_once there are no transactional ids to grant', (t) => {
  const t0 = rich();
  t.false(requiredAcls({ ...t0, processing: { ...t0.processing, guarantee: 'at_least_once' } }).some((a) => a.resource === 'transactionalId'));
});

test('describe --acls prints each ACL with its reason and the kafka-acls.sh command for the principal given', async (t) => {
  const r = await runCli(['describe', '--acls', '--no-check-modules', '--principal', 'User:shop', file]);
  t.is(r.code, 0, r.stderr);
  const acls = requiredAcls(rich());
  t.regex(r.stdout, /ACLs app shop needs \(principal User:shop/);
  t.is(r.stdout.split('\n').filter((l) => l.includes('kafka-acls.sh --bootstrap-server <brokers> --add --allow-principal User:shop')).length, acls.length);
  t.regex(r.stdout, /--operation Write --transactional-id shop-users- --resource-pattern-type prefixed/);
  t.regex(r.stdout, /--operation DescribeConfigs --topic shop-users-by-email/);
});
