// An events topic is the event store: never compacted, and it keeps every event unless the topology accepts losing
// old ones (acceptFiniteRetention). Checked in the declaration at validation, planned into the topics foldstream
// creates, and checked on the broker (which drifts stop the start).
import test from 'ava';
import { ConfigError } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { formatDrift, isDamagingDrift, planTopics } from '../../src/topology/topic-plan.ts';

const yaml = (events: string, extra = '') => `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: a-commands, partitions: 2 }
  events: { name: a-events, partitions: 2${events} }
  view: { name: a-view, partitions: 2${extra} }
processors:
  - { name: users, type: aggregate, aggregateType: User, input: commands, output: { events: events }, module: ./user.ts }
  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
`;

const problems = (text: string) => {
  try {
    parseTopology(text, 'inline.yaml', { checkModules: false });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}; ${p.suggestion ?? ''}`);
    throw e;
  }
  return [];
};

const plan = (text: string) => planTopics(parseTopology(text, 'inline.yaml', { checkModules: false }).topology);

test('an events topic declared compacted is refused at its cleanup.policy, even with acceptFiniteRetention', (t) => {
  const expected = [
    '5:70 topics.events.config.cleanup.policy topic "events" is the events topic of aggregate "users": cleanup.policy "compact,delete" would compact the event store, keeping one event per aggregate and deleting the rest; remove cleanup.policy (foldstream creates events topics with delete and retention -1) or set it to delete',
  ];
  t.deepEqual(problems(yaml(', config: { cleanup.policy: "compact,delete", retention.ms: "-1" }')), expected);
  t.deepEqual(problems(yaml(', acceptFiniteRetention: true, config: { cleanup.policy: "compact,delete", retention.ms: "-1" }')), [
    expected[0]!.replace('5:70', '5:99'),
  ]);
});

test('an events topic declared with finite retention is refused at the config, unless it declares acceptFiniteRetention', (t) => {
  t.deepEqual(problems(yaml(', config: { retention.ms: 604800000, retention.bytes: "1073741824" }')), [
    '5:68 topics.events.config.retention.ms topic "events" is the events topic of aggregate "users": retention.ms 604800000 deletes old events, and state-at, history and rebuilds would work on a truncated event store; set retention.ms: "-1" (or leave it out: foldstream creates events topics with retention.ms=-1), or set acceptFiniteRetention: true on the topic to accept losing old events',
    '5:96 topics.events.config.retention.bytes topic "events" is the events topic of aggregate "users": retention.bytes "1073741824" deletes old events, and state-at, history and rebuilds would work on a truncated event store; set retention.bytes: "-1" (or leave it out: foldstream creates events topics with retention.bytes=-1), or set acceptFiniteRetention: true on the topic to accept losing old events',
  ]);
  t.deepEqual(problems(yaml(', acceptFiniteRetention: true, config: { retention.ms: 604800000 }')), []);
  t.deepEqual(problems(yaml('', ', acceptFiniteRetention: true')), [
    '6:63 topics.view.acceptFiniteRetention acceptFiniteRetention applies to an events topic (an aggregate\'s output.events), and topic "view" is not one; remove it',
  ]);
});

test('an events topic is planned with delete and retention -1 (so it never gets the broker\'s 7-day default); acceptFiniteRetention leaves retention to the declaration', (t) => {
  const [, events, view] = plan(yaml(''));
  t.deepEqual(events, {
    name: 'a-events',
    partitions: 2,
    replicationFactor: 1,
    config: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' },
    purpose: 'declared',
    role: 'events',
    about: 'topics.events',
  });
  t.deepEqual(view?.config, { 'cleanup.policy': 'compact' });
  t.deepEqual(plan(yaml(', acceptFiniteRetention: true, config: { retention.ms: 2592000000 }'))[1]?.config, { 'cleanup.policy': 'delete', 'retention.ms': '2592000000' });
  t.deepEqual(plan(yaml(', acceptFiniteRetention: true'))[1]?.config, { 'cleanup.policy': 'delete' });
});

test('on the broker, an events topic compacted or with finite retention damages data (stops the start); other config drift does not', (t) => {
  const p = plan(yaml(''));
  const base = { topic: 'a-events', about: 'topics.events', role: 'events' as const };
  const retention = { kind: 'config' as const, ...base, config: 'retention.ms', expected: '-1', actual: '604800000' };
  const compacted = { kind: 'config' as const, ...base, config: 'cleanup.policy', expected: 'delete', actual: 'compact' };
  t.true(isDamagingDrift(p, retention));
  t.true(isDamagingDrift(p, compacted));
  t.false(isDamagingDrift(p, { kind: 'config', topic: 'a-view', about: 'topics.view', config: 'min.cleanable.dirty.ratio', expected: '0.2', actual: '0.5' }));
  t.is(
    formatDrift(retention),
    'topic "a-events" (topics.events) is an events topic and retention.ms is "604800000" on the broker (the broker default, 7 days): old events are deleted, and state-at, history and rebuilds would work on a truncated event store; keep every event with kafka-configs.sh --alter --entity-type topics --entity-name a-events --add-config retention.ms=-1, or declare acceptFiniteRetention: true on the topic to accept losing them',
  );
  t.regex(formatDrift(compacted), /is an events topic and is compacted on the broker \(cleanup\.policy "compact"\): compaction keeps one event per key .*--add-config cleanup\.policy=delete/);
});
