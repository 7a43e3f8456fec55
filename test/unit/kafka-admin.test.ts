// Topic provisioning without a broker: the plan, the drift messages, error mapping, and that `topics` checks the file first.
import test from 'ava';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, FoldstreamError } from '../../src/errors.ts';
import { checkTopics, createTopicsAndWait } from '../../src/kafka/admin.ts';
import { formatDrift, planTopics } from '../../src/topology/topic-plan.ts';
import { loadTopology, parseTopology } from '../../src/topology/load.ts';
import { brokerTraps, copyFixture, FIXTURES, runCli } from '../helpers/cli.ts';

test('planTopics lists the declared topics with configs as strings, then the changelog and dead-letter topics', (t) => {
  const { topology } = loadTopology(join(FIXTURES, 'valid.yaml'));
  t.deepEqual(planTopics(topology), [
    { name: 'demo-events', partitions: 3, replicationFactor: 1, config: { 'retention.ms': '-1' }, purpose: 'declared', about: 'topics.events' },
    { name: 'demo-counts', partitions: 3, replicationFactor: 1, config: { 'cleanup.policy': 'compact' }, purpose: 'declared', about: 'topics.counts' },
    {
      name: 'demo-counter-totals-changelog',
      partitions: 3,
      replicationFactor: 1,
      config: { 'cleanup.policy': 'compact' },
      purpose: 'changelog',
      about: 'changelog of processor counter, store totals',
    },
    { name: 'demo-counter-dlq', partitions: 3, replicationFactor: 1, config: { 'retention.ms': '-1' }, purpose: 'dlq', about: 'dead-letter topic of processor counter' },
  ]);
});

test('planTopics turns numbers and booleans in topic configs into the strings the broker reports', (t) => {
  const yaml = `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  t: { name: a-t, partitions: 2, config: { retention.ms: 86400000, min.cleanable.dirty.ratio: 0.2, unclean.leader.election.enable: false } }
processors:
  - { name: p, type: projection, input: t, output: t, on: { X: { delete: true } } }
`;
  const [declared] = planTopics(parseTopology(yaml, 'a.yaml', { checkModules: false }).topology);
  // the view topic of a projection is compacted when its declaration does not say otherwise
  t.deepEqual(declared?.config, { 'cleanup.policy': 'compact', 'retention.ms': '86400000', 'min.cleanable.dirty.ratio': '0.2', 'unclean.leader.election.enable': 'false' });
});

test("a projection's view topic is created compacted unless declared with a policy that includes compact; another policy is refused", (t) => {
  const yaml = (config: string) => `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: a-events, partitions: 2 }
  view: { name: a-view, partitions: 2${config} }
processors:
  - { name: p, type: projection, input: events, output: view, on: { X: { delete: true } } }
`;
  const plan = (config: string) => planTopics(parseTopology(yaml(config), 'a.yaml', { checkModules: false }).topology);
  t.deepEqual(plan('').map((p) => [p.name, p.config['cleanup.policy']]).slice(0, 2), [['a-events', undefined], ['a-view', 'compact']]);
  t.is(plan(', config: { cleanup.policy: "compact,delete", retention.ms: 1000 }')[1]?.config['cleanup.policy'], 'compact,delete');
  const e = t.throws(() => parseTopology(yaml(', config: { cleanup.policy: delete }'), 'a.yaml', { checkModules: false }), { instanceOf: ConfigError });
  t.deepEqual(
    e?.problems.map((p) => [`${p.line}:${p.col}`, p.message, p.suggestion]),
    [['5:66', 'topic "view" is the view topic of projection "p": its cleanup.policy must include compact (got "delete")', 'set cleanup.policy: compact ("compact,delete" also expires old views); left out, foldstream creates it compacted']],
  );
});

test('each drift message says what differs and what to do about it', (t) => {
  const base = { topic: 'demo-events', about: 'topics.events' };
  t.regex(formatDrift({ kind: 'missing', ...base }), /^topic "demo-events" \(topics\.events\) does not exist; create it with `foldstream topics .* --create`$/);
  t.regex(formatDrift({ kind: 'partitions', ...base, expected: 6, actual: 3 }), /has 3 partitions, declared 6; .*kafka-topics\.sh --alter --topic demo-events --partitions 6/);
  t.regex(formatDrift({ kind: 'partitions', ...base, expected: 3, actual: 6 }), /has 6 partitions, declared 3; Kafka cannot remove partitions/);
  t.regex(formatDrift({ kind: 'replication-factor', ...base, expected: 3, actual: 1 }), /has replication factor 1, declared 3; .*kafka-reassign-partitions/);
  t.regex(
    formatDrift({ kind: 'config', ...base, config: 'retention.ms', expected: '-1', actual: '604800000' }),
    /config retention\.ms is "604800000" on the broker, declared "-1"; set it with kafka-configs\.sh .*--add-config retention\.ms=-1/,
  );
  t.regex(formatDrift({ kind: 'config', ...base, config: 'retention.mss', expected: '-1', actual: undefined }), /no such config .*check its spelling/);
});

test('a cluster that cannot be reached is a KAFKA_UNAVAILABLE error that says where it tried and what to check', async (t) => {
  const traps = await brokerTraps();
  await traps.close();
  const unused = traps.brokers.split(',')[1]!;
  // retries: 0 keeps the test short; the mapping is the same after createKafka's retries
  const kafka = new Kafka({ brokers: [unused], clientId: 'unreachable', logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  const { topology } = loadTopology(join(FIXTURES, 'valid.yaml'));
  const e = await t.throwsAsync(checkTopics(kafka, planTopics(topology)), { instanceOf: FoldstreamError });
  t.is(e?.code, 'KAFKA_UNAVAILABLE');
  t.regex(e?.message ?? '', new RegExp(`could not check topics: .*ECONNREFUSED ${unused.replace(/\./g, '\\.')}`));
  t.regex(e?.hint ?? '', /kafka\.brokers/);
  t.true(e?.canRetry);
});

test('topics exits 1 on an invalid file before connecting to Kafka, and asks for --create or --check', async (t) => {
  const traps = await brokerTraps();
  const file = copyFixture('mistakes.yaml', traps.brokers);
  const valid = copyFixture('valid.yaml', traps.brokers);
  t.teardown(() => {
    rmSync(dirname(file), { recursive: true, force: true });
    rmSync(dirname(valid), { recursive: true, force: true });
  });
  t.teardown(traps.close);
  const [check, create, neither] = await Promise.all([
    runCli(['topics', file, '--check']),
    runCli(['topics', file, '--create']),
    runCli(['topics', valid]),
  ]);
  for (const r of [check, create]) {
    t.is(r.code, 1);
    t.regex(r.stderr, /mistakes\.yaml:16:12 .*8 problems; nothing was sent to Kafka\./s);
    t.notRegex(r.stdout + r.stderr, /ECONNREFUSED|KAFKA_UNAVAILABLE/);
  }
  t.is(neither.code, 1);
  t.regex(neither.stderr, /give --create or --check/);
  t.is(traps.connections(), 0);
});

/** An admin whose topic exists with a leader, and whose ListOffsets answers `offsets` in turn (an Error is thrown). */
function fakeAdmin(offsets: (Error | 'ok')[]): { admin: Admin; listOffsetsCalls: () => number } {
  let calls = 0;
  const admin = {
    listTopics: async () => ['t'],
    createTopics: async () => true,
    fetchTopicMetadata: async () => ({ topics: [{ name: 't', partitions: [{ partitionId: 0, leader: 1, replicas: [1], isr: [1] }] }] }),
    fetchTopicOffsets: async () => {
      const next = offsets[Math.min(calls++, offsets.length - 1)]!;
      if (next instanceof Error) throw next;
      return [{ partition: 0, offset: '0', high: '0', low: '0' }];
    },
  } as unknown as Admin;
  return { admin, listOffsetsCalls: () => calls };
}

const kafkaJsError = (name: string, type: string, retriable: boolean, cause?: Error) =>
  Object.assign(new Error(type), { name, type, retriable, ...(cause ? { cause } : {}) });

test('createTopicsAndWait waits until the leaders answer ListOffsets: NOT_LEADER, even wrapped by kafkajs after its retries, is waited out', async (t) => {
  const notLeader = kafkaJsError('KafkaJSProtocolError', 'NOT_LEADER_FOR_PARTITION', true);
  const gaveUp = kafkaJsError('KafkaJSNumberOfRetriesExceeded', 'NOT_LEADER_FOR_PARTITION', false, notLeader);
  const { admin, listOffsetsCalls } = fakeAdmin([notLeader, gaveUp, 'ok']);
  await createTopicsAndWait(admin, [{ topic: 't', numPartitions: 1 }], { timeoutMs: 10_000 });
  t.is(listOffsetsCalls(), 3);
});

test('createTopicsAndWait gives up at once on an error that waiting cannot mend', async (t) => {
  const denied = kafkaJsError('KafkaJSProtocolError', 'TOPIC_AUTHORIZATION_FAILED', false);
  const { admin, listOffsetsCalls } = fakeAdmin([denied]);
  await t.throwsAsync(createTopicsAndWait(admin, [{ topic: 't', numPartitions: 1 }], { timeoutMs: 10_000 }), { message: 'TOPIC_AUTHORIZATION_FAILED' });
  t.is(listOffsetsCalls(), 1);
});
