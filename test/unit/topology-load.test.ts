// Loading topology.yaml: every problem at its file:line:col, env interpolation, the JSON Schema and derived names.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type ConfigProblem } from '../../src/errors.ts';
import { loadTopology, parseTopology } from '../../src/topology/load.ts';
import { changelogTopic, dlqTopic, groupId, internalTopics, repartitionTopic, transactionalId } from '../../src/topology/names.ts';
import { topologyJsonSchema } from '../../src/topology/schema.ts';
import { FIXTURES } from '../helpers/cli.ts';

function problemsOf(t: ExecutionContext, fn: () => unknown): ConfigProblem[] {
  const e = t.throws(fn, { instanceOf: ConfigError });
  return e?.problems ?? [];
}

test('lists every mistake in a topology at once, each with the line and column of the YAML node it is about', (t) => {
  const file = join(FIXTURES, 'mistakes.yaml');
  const problems = problemsOf(t, () => loadTopology(file));
  const expected: [string, string, RegExp][] = [
    ['4:3', 'kafka.clientID', /unknown key "clientID"; did you mean "clientId"\?/],
    ['6:14', 'processing.guarantee', /expected one of "exactly_once", "at_least_once", got string "exactly-once"; did you mean "exactly_once"\?/],
    ['16:12', 'processors[0].input', /topic "evnts" is not declared under topics:; did you mean "events"\?/],
    ['18:14', 'processors[0].stores[0]', /store "ledger" is not declared under stores:/],
    ['20:11', 'processors[1].name', /processor name "counter" is already used by processors\[0\]/],
    ['22:12', 'processors[1].input', /input topics are not co-partitioned \(events: 3; commands: 6\)/],
    ['23:13', 'processors[1].module', /module "\.\/modules\/missing\.ts" not found/],
    ['24:15', 'processors[1].outputs[0]', /"demo-counts" is the name of the topic declared as "counts"; refer to it by its alias "counts"/],
  ];
  t.deepEqual(
    problems.map((p) => `${p.line}:${p.col} ${p.path}`),
    expected.map(([at, path]) => `${at} ${path}`),
  );
  for (const [i, [, , message]] of expected.entries()) {
    const p = problems[i]!;
    t.regex(`${p.message}; ${p.suggestion ?? ''}`, message);
    t.is(p.file, file);
  }
});

const interpolated = `app: \${APP}
kafka:
  brokers: \${BROKERS:-127.0.0.1:9092}
  clientId: "\${CLIENT_ID:-4711}"
  connectionTimeoutMs: \${CONNECT_MS:-2500}
processing:
  stateDir: \${STATE_DIR:-./state}
topics:
  events:
    name: \${APP}-events
    partitions: \${PARTITIONS}
    config:
      retention.ms: "\${RETENTION:--1}"
  view:
    name: "\${APP}-view"
    partitions: \${PARTITIONS}
processors:
  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
`;

test('interpolates ${VAR} and ${VAR:-default}: plain scalars take the type of their value, quoted ones stay strings', (t) => {
  const { topology } = parseTopology(interpolated, 'inline.yaml', { env: { APP: 'shop', PARTITIONS: '6', STATE_DIR: '' }, checkModules: false });
  t.is(topology.app, 'shop');
  t.is(topology.kafka.brokers, '127.0.0.1:9092');
  // quoted: a string even though the default looks like a number (clientId must be a string)
  t.is(topology.kafka.clientId, '4711');
  // plain: numbers, from a default and from the environment
  t.is(topology.kafka.connectionTimeoutMs, 2500);
  t.is(topology.topics.events?.partitions, 6);
  // inside a longer string the variable is spliced in
  t.is(topology.topics.events?.name, 'shop-events');
  t.is(topology.topics.view?.name, 'shop-view');
  t.deepEqual(topology.topics.events?.config, { 'retention.ms': '-1' });
  // an empty variable counts as unset, so the default applies
  t.is(topology.processing.stateDir, './state');
});

test('an unset variable with no default is a problem at the position of its scalar', (t) => {
  const problems = problemsOf(t, () => parseTopology(interpolated, 'inline.yaml', { env: { APP: 'shop' }, checkModules: false }));
  const missing = problems.filter((p) => p.message.includes('PARTITIONS'));
  t.deepEqual(
    missing.map((p) => `${p.line}:${p.col} ${p.message}`),
    ['11:17 environment variable PARTITIONS is not set', '16:17 environment variable PARTITIONS is not set'],
  );
  t.regex(missing[0]?.suggestion ?? '', /\$\{PARTITIONS:-value\}/);
});

test('the exported JSON Schema describes the file: required sections, every processor type, defaults, no unknown keys', (t) => {
  const schema = topologyJsonSchema() as {
    $schema: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, any>;
  };
  t.regex(schema.$schema, /json-schema\.org/);
  t.deepEqual([...schema.required].sort(), ['app', 'kafka', 'processors', 'topics']);
  t.false(schema.additionalProperties, 'a misspelt top-level key must be flagged by editors');
  t.truthy(schema.properties.$schema, 'the $schema key is allowed so editors can be pointed at the schema');

  const branches: any[] = schema.properties.processors.items.oneOf;
  t.deepEqual(
    branches.map((b) => b.properties.type.const),
    ['custom', 'aggregate', 'projection', 'saga', 'window', 'join'],
  );
  for (const b of branches) t.false(b.additionalProperties);
  t.true(branches[0].required.includes('module'));

  const topic = schema.properties.topics.additionalProperties.properties;
  t.is(topic.partitions.default, 12);
  t.is(topic.replicationFactor.default, 1);
  t.is(topic.codec.default, 'json');
  const guarantee = schema.properties.processing.properties.guarantee;
  t.is(guarantee.default, 'exactly_once');
  t.deepEqual(guarantee.enum, ['exactly_once', 'at_least_once']);
  t.is(typeof guarantee.description, 'string');
});

test('internal topic names, consumer groups and transactional ids follow DESIGN §1 and §4', (t) => {
  const { topology } = loadTopology(join(FIXTURES, 'rich.yaml'));
  t.is(groupId('shop', 'users'), 'shop-users');
  t.is(transactionalId('shop', 'users', 3), 'shop-users-3');
  t.is(changelogTopic('shop', 'users', 'state'), 'shop-users-state-changelog');
  t.is(dlqTopic('shop', 'users'), 'shop-users-dlq');
  t.is(repartitionTopic('shop', 'email-index'), 'shop-email-index-repartition');

  const internal = internalTopics(topology);
  t.deepEqual(
    internal.map((it) => `${it.purpose} ${it.name}`),
    [
      'changelog shop-users-state-changelog',
      'changelog shop-users-commands-changelog',
      'changelog shop-users-command-expiry-changelog',
      'dlq shop-users-dlq',
      'changelog shop-email-index-view-changelog',
      'dlq shop-email-index-dlq',
      // what `foldstream replay` writes for the running projection to rebuild views from
      'replay shop-email-index-replay',
      'repartition shop-email-index-repartition',
      // the group stage of a groupBy projection is a runtime processor of its own
      'changelog shop-email-index-group-groups-changelog',
      'dlq shop-email-index-group-dlq',
      // scratch is declared `changelog: false`: no topic
      'changelog shop-auditor-seen-changelog',
      'dlq shop-auditor-dlq',
    ],
  );
  for (const it of internal) t.is(it.partitions, 4, `${it.name} is sized like its processor's input`);
  for (const it of internal.filter((i) => i.purpose === 'changelog')) t.is(it.config['cleanup.policy'], 'compact');
});

test('interpolates references inside flow mappings, and positions after them on the same line stay exact', (t) => {
  const yaml = [
    'app: flow',
    'kafka: { brokers: "${BROKERS:-127.0.0.1:9092}" }',
    'topics:',
    '  events: { name: events, partitions: ${P:-6}, replicationFactor: ${RF:-1}, config: { retention.ms: "-1" } }',
    '  bad: { name: bad, partitions: ${P:-6}, replicationFactr: 1 }',
    'processors:',
    '  - { name: c, type: custom, input: events, module: ./noop.ts }',
  ].join('\n');
  const problems = problemsOf(t, () => parseTopology(yaml, '/tmp/flow.yaml', { env: {}, checkModules: false }));
  t.deepEqual(problems.map((p) => `${p.line}:${p.col} ${p.path}`), ['5:42 topics.bad.replicationFactr']);
  const ok = parseTopology(yaml.replace('replicationFactr', 'replicationFactor'), '/tmp/flow.yaml', { env: { RF: '3' }, checkModules: false });
  t.is(ok.topology.topics.events!.partitions, 6);
  t.is(ok.topology.topics.events!.replicationFactor, 3);
  t.is(ok.topology.kafka.brokers, '127.0.0.1:9092');
});

test('a topic name declared under two aliases, or equal to an internal topic foldstream derives, is a problem at that name', (t) => {
  const yaml = [
    'app: shop',
    'kafka: { brokers: "127.0.0.1:9092" }',
    'topics:',
    '  events: { name: shop-events, partitions: 4 }',
    '  again: { name: shop-events, partitions: 4 }',
    '  failures: { name: shop-counter-dlq, partitions: 4 }',
    '  totals-log:',
    '    name: shop-counter-totals-changelog',
    '  view: { name: shop-view, partitions: 4 }',
    '  regroup: { name: shop-by-status-repartition, partitions: 4 }',
    'stores:',
    '  totals: {}',
    'processors:',
    '  - { name: counter, type: custom, input: events, module: ./noop.ts, stores: [totals] }',
    '  - { name: by-status, type: projection, input: events, output: view, on: { X: { set: { status: data.status } } }, groupBy: { key: status, aggregate: { count: count } } }',
  ].join('\n');
  const problems = problemsOf(t, () => parseTopology(yaml, '/tmp/topics.yaml', { env: {}, checkModules: false }));
  const collides = (name: string, purpose: string, processor: string) =>
    `topic "${name}" collides with the ${purpose} topic foldstream derives for processor "${processor}"; rename the topic or the processor`;
  t.deepEqual(
    problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.path}: ${p.message}; ${p.suggestion}`),
    [
      '/tmp/topics.yaml:5:18 topics.again.name: topic name "shop-events" is also declared as "events"; declare each topic once',
      `/tmp/topics.yaml:6:21 topics.failures.name: ${collides('shop-counter-dlq', 'dlq', 'counter')}`,
      `/tmp/topics.yaml:8:11 topics.totals-log.name: ${collides('shop-counter-totals-changelog', 'changelog', 'counter')}`,
      `/tmp/topics.yaml:10:20 topics.regroup.name: ${collides('shop-by-status-repartition', 'repartition', 'by-status')}`,
    ],
  );
  // with names of their own, the same topics are fine
  const renamed = yaml.replace('{ name: shop-events, partitions: 4 }\n  failures', '{ name: shop-events-2, partitions: 4 }\n  failures').replace(/name: shop-(counter|by-status)-/g, 'name: shop-own-$1-');
  t.notThrows(() => parseTopology(renamed, '/tmp/topics.yaml', { env: {}, checkModules: false }));
});

const merged = `x-topic: &topic
  partitions: 6
  replicationFactor: 1
  config: { min.insync.replicas: "1" }
x-bad: &bad
  partitions: three
  retentionMs: 5
app: shop
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events:
    <<: *topic
    name: shop-events
  view:
    <<: [*topic]
    name: shop-view
    partitions: 3
processors:
  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
`;

test('YAML merge keys (<<: *anchor) merge the anchored mapping, own keys win, and x- keys at the top hold the anchors', (t) => {
  const { topology } = parseTopology(merged, 'merged.yaml', { checkModules: false });
  t.like(topology.topics.events, { name: 'shop-events', partitions: 6, replicationFactor: 1, config: { 'min.insync.replicas': '1' } });
  t.like(topology.topics.view, { name: 'shop-view', partitions: 3 });
  t.false('x-topic' in topology);
});

test('a problem in a merged value is reported where the anchored value is written', (t) => {
  const yaml = merged.replace('    <<: *topic\n    name: shop-events', '    <<: *bad\n    name: shop-events');
  const problems = problemsOf(t, () => parseTopology(yaml, 'merged.yaml', { checkModules: false }));
  t.deepEqual(
    problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}${p.suggestion ? `; ${p.suggestion}` : ''}`),
    ['6:15 topics.events.partitions expected number, got string "three"', '7:3 topics.events.retentionMs unknown key "retentionMs"; expected one of: name, partitions, replicationFactor, config, codec, acceptFiniteRetention'],
  );
});

const withModule = (module: string, modules = '') => `app: a
kafka: { brokers: "127.0.0.1:9092" }
${modules}topics:
  in: { name: a-in, partitions: 1 }
processors:
  - { name: c, type: custom, input: in, module: ${module} }
`;

test('module paths are confined to the topology\'s folder unless modules.root widens it; a symlink out of it is refused too', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-confined-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'app', 'topology.yaml');
  mkdirSync(join(dir, 'app'));
  mkdirSync(join(dir, 'shared'));
  writeFileSync(join(dir, 'shared', 'c.ts'), 'export function process() {}\n');
  symlinkSync(join(dir, 'shared', 'c.ts'), join(dir, 'app', 'link.ts'));
  const located = (yaml: string, checkModules = true) =>
    problemsOf(t, () => parseTopology(yaml, file, { checkModules })).map((p) => `${p.line}:${p.col} ${p.path} ${p.message}; ${p.suggestion ?? ''}`);
  const outside = (module: string) =>
    `6:49 processors[0].module module "${module}" is outside ${join(dir, 'app')}, the folder module paths are confined to; move the module under the topology's folder, or widen modules.root to a folder that holds it (e.g. modules: { root: ".." })`;
  t.deepEqual(located(withModule('../shared/c.ts')), [outside('../shared/c.ts')]);
  t.deepEqual(located(withModule('/etc/passwd'), false), [outside('/etc/passwd')], 'confined also when files are not checked');
  t.deepEqual(located(withModule('./link.ts')), [outside('./link.ts')]);
  t.notThrows(() => parseTopology(withModule('../shared/c.ts', 'modules: { root: .. }\n'), file));
  t.notThrows(() => parseTopology(withModule('./link.ts', 'modules: { root: .. }\n'), file));
});
