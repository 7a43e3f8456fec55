// Join declarations: co-partitioning, the settings of each kind and the topics' roles fail fast at their
// file:line:col with what to do; output topics of table joins are views (created compacted), of stream joins not.
import test from 'ava';
import { FoldstreamError, type ConfigProblem } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { internalTopics } from '../../src/topology/names.ts';
import { topicRoles } from '../../src/topology/topic-roles.ts';

const head = `app: shop
kafka: { brokers: localhost:9092 }
topics:
  commands: { name: commands, partitions: 3 }
  events: { name: events, partitions: 3 }
  payments: { name: payments, partitions: 6 }
  customers: { name: customers, partitions: 6, config: { cleanup.policy: compact } }
  views: { name: views, partitions: 3, config: { cleanup.policy: compact } }
  out: { name: out, partitions: 3 }
  out2: { name: out2, partitions: 3 }
processors:
  - name: orders
    type: aggregate
    aggregateType: Order
    input: commands
    output: { events: events }
    commands: { PlaceOrder: { emit: [{ type: OrderPlaced, data: { customerId: command.data.customerId } }] } }
    evolve: { OrderPlaced: { customerId: event.data.customerId } }
`;

function problems(processors: string): string[] {
  try {
    parseTopology(head + processors, '/tmp/joins.yaml', { env: {}, checkModules: false });
    return [];
  } catch (e) {
    if (!(e instanceof FoldstreamError)) throw e;
    return ((e as FoldstreamError & { problems?: ConfigProblem[] }).problems ?? []).map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`).sort();
  }
}

test('joins by key whose sides have different partition counts are refused at the right side, with what to do', (t) => {
  const found = problems(`  - name: paid
    type: join
    kind: stream-stream
    input: events
    right: payments
    window: { beforeMs: 0, afterMs: 600000 }
    output: out
`);
  t.deepEqual(found, [
    '23:12 processors[1].right: join "paid" joins by record key, and its sides are not co-partitioned: "events" has 3 partitions, "payments" 6, so a key\'s left and right records land in different partition numbers',
  ]);
  const withHint = (() => {
    try {
      parseTopology(head + `  - name: enriched
    type: join
    kind: stream-table
    input: events
    right: customers
    output: out
`, '/tmp/joins.yaml', { env: {}, checkModules: false });
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  })();
  t.regex(withHint, /joins\.yaml:23:12/);
  t.regex(withHint, /set `key:`/);
});

test('a stream-table join with key: and a foreign-key join need no co-partitioning: their internal topics are sized like the side that reads them', (t) => {
  t.deepEqual(
    problems(`  - name: enriched
    type: join
    kind: stream-table
    input: events
    right: customers
    key: data.customerId
    output: out
  - name: fk
    type: join
    kind: foreign-key
    input: views
    right: customers
    foreignKey: customerId
    output: out2
`),
    [],
  );
  const { topology } = parseTopology(
    head +
      `  - name: fk
    type: join
    kind: foreign-key
    input: views
    right: customers
    foreignKey: customerId
    output: out2
`,
    '/tmp/joins.yaml',
    { env: {}, checkModules: false },
  );
  const internal = internalTopics(topology).filter((i) => i.processor === 'fk');
  const sized = Object.fromEntries(internal.map((i) => [i.name, i.partitions]));
  t.is(sized['shop-fk-repartition'], 6); // subscriptions, keyed by customer
  t.is(sized['shop-fk-response'], 3); // responses, keyed by order
  t.is(sized['shop-fk-subscriptions-subscriptions-changelog'], 6);
  t.is(sized['shop-fk-left-changelog'], 3);
  // the join's view is a view topic: created compacted
  t.is(topicRoles(topology).get('out2')?.role, 'views');
});

test('join mistakes: outer for a stream-table join, late for a table lookup, a foreign-key join without foreignKey, a window on a table join, a table side reading events, a stream side reading views, writing an events topic', (t) => {
  t.deepEqual(
    problems(`  - name: a
    type: join
    kind: stream-table
    input: events
    right: views
    join: outer
    window: { beforeMs: 0, afterMs: 1 }
    late: dlq
    output: out
  - name: b
    type: join
    kind: foreign-key
    input: views
    right: events
    output: events
  - name: c
    type: join
    kind: stream-stream
    input: events
    right: out2
    output: out
  - name: d
    type: join
    kind: table-table
    input: views
    right: customers
    output: out2
  - name: e
    type: join
    kind: stream-table
    input: events
    right: views
    output: events
`),
    [
      '24:11 processors[1].join: join: outer is for table-table and stream-stream joins; a stream-table join is inner or left',
      '25:13 processors[1].window: a stream-table join takes no `window`: a table has one row per key at any time',
      '26:11 processors[1].late: a stream-table join takes no `late`: an event joins the row its key has when it comes, whatever its time',
      '28:5 processors[2]: a foreign-key join needs `foreignKey:`, the right table key a left row refers to',
      '32:12 processors[2].right: join "b" reads topic "events", the events topic of aggregate "orders": the right side of a foreign-key join is a table (one row per key), and this topic holds events',
      '33:13 processors[2].output: join "b" writes its views to topic "events", the events topic of aggregate "orders": views would be appended to the event store (and `topics --create` would create it compacted, keeping one event per aggregate)',
      '34:5 processors[3]: a stream-stream join needs `window: { beforeMs, afterMs }`: which times of the two sides join',
      '38:12 processors[3].right: join "c" reads topic "out2", the view topic of join "d": the right side of a stream-stream join is a stream of events, and this topic holds views; every record would be dead-lettered',
      '44:12 processors[4].right: join "d" joins by record key, and its sides are not co-partitioned: "views" has 3 partitions, "customers" 6, so a key\'s left and right records land in different partition numbers',
      '51:13 processors[5].output: join "e" writes its results to topic "events", the events topic of aggregate "orders": only that aggregate may append to it (with versions and idempotence)',
    ].sort(),
  );
});

test('a stream join writes a stream of results, not a view: its output topic is not created compacted', (t) => {
  const { topology } = parseTopology(
    head +
      `  - name: paid
    type: join
    kind: stream-stream
    input: events
    right: out2
    window: { beforeMs: 0, afterMs: 600000 }
    output: out
`,
    '/tmp/joins.yaml',
    { env: {}, checkModules: false },
  );
  t.is(topicRoles(topology).get('out'), undefined);
});
