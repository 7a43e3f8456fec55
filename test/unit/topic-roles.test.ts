// Topic roles derived from the topology, and the combinations validation refuses: the events topic is the event
// store; only aggregates write it and nothing reads it as commands. Each mistake is refused at the YAML node that is
// wrong, with what to do.
import test from 'ava';
import { ConfigError } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { planTopics } from '../../src/topology/topic-plan.ts';
import { topicRoles } from '../../src/topology/topic-roles.ts';

const problems = (yaml: string) => {
  try {
    parseTopology(yaml, 'inline.yaml', { checkModules: false });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}${p.suggestion ? `; ${p.suggestion}` : ''}`);
    throw e;
  }
  return [];
};

// lines 1-10; processors start on line 11
const head = `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: a-commands, partitions: 3 }
  events: { name: a-events, partitions: 3, config: { retention.ms: "-1" } }
  replies: { name: a-replies, partitions: 3 }
  view: { name: a-view, partitions: 3 }
  log: { name: a-log, partitions: 3 }
  other: { name: a-other, partitions: 3 }
processors:
  - { name: users, type: aggregate, aggregateType: User, input: commands, output: { events: events, replies: replies }, module: ./user.ts }
`;

test('roles come from the processors: commands in and events out of an aggregate, views of a projection, a saga log', (t) => {
  const { topology } = parseTopology(
    `${head}  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
  - name: s
    type: saga
    input: events
    output: { commands: commands, log: log }
    startOn: X
    flow: [{ name: one, send: { type: Y, aggregateId: aggregateId }, completeOn: Z }]
`,
    'inline.yaml',
    { checkModules: false },
  );
  const roles = Object.fromEntries([...topicRoles(topology)].map(([alias, c]) => [alias, `${c.role} (${c.processor.name})`]));
  t.deepEqual(roles, { commands: 'commands (users)', events: 'events (users)', replies: 'replies (users)', view: 'views (v)', log: 'saga-log (s)' });
});

test('a projection whose output is an events topic is refused at its output: its views would go into the event store', (t) => {
  t.deepEqual(problems(`${head}  - { name: v, type: projection, input: events, output: events, on: { X: { delete: true } } }\n`), [
    '12:57 processors[1].output projection "v" writes its views to topic "events", the events topic of aggregate "users": views would be appended to the event store (and `topics --create` would create it compacted, keeping one event per aggregate); declare a topic of its own for the views (cleanup.policy: compact) and set output to it',
  ]);
});

test('an aggregate reading its own events topic is refused as a loop at its input', (t) => {
  const yaml = head.replace('input: commands, output: { events: events', 'input: events, output: { events: events');
  t.deepEqual(problems(yaml), [
    '11:65 processors[0].input aggregate "users" reads its own events topic "events": every event it appends would come back to it as a command, and be dead-lettered; set input to the topic its commands arrive on',
  ]);
});

test('an aggregate reading another aggregate\'s events topic is refused, pointing at a saga', (t) => {
  t.deepEqual(
    problems(`${head}  - { name: accounts, type: aggregate, aggregateType: Account, input: [other, events], output: { events: other }, module: ./a.ts }\n`),
    [
      '12:72 processors[1].input[0] aggregate "accounts" reads its own events topic "other": every event it appends would come back to it as a command, and be dead-lettered; set input to the topic its commands arrive on',
      '12:79 processors[1].input[1] aggregate "accounts" reads topic "events", the events topic of aggregate "users": an aggregate handles commands, not another aggregate\'s events; to act on those events, add a saga (type: saga) that reads "events" and sends commands to the input of "accounts"',
    ],
  );
});

test('a projection or a saga reading a commands topic is refused at its input: every record would be dead-lettered', (t) => {
  t.deepEqual(
    problems(`${head}  - { name: v, type: projection, input: commands, output: view, on: { X: { delete: true } } }
  - name: s
    type: saga
    input: replies
    output: { commands: commands }
    startOn: X
    flow: [{ name: one, send: { type: Y, aggregateId: aggregateId }, completeOn: Z }]
`),
    [
      '12:41 processors[1].input projection "v" reads topic "commands", the commands topic of aggregate "users": a projection folds events, and this topic holds commands; every record would be dead-lettered; read the events topic of the aggregate instead',
      '15:12 processors[2].input saga "s" reads topic "replies", the replies topic of aggregate "users": a saga reacts to events, and this topic holds replies; every record would be dead-lettered; read the events topic of the aggregate instead',
    ],
  );
});

test('a saga sending commands to an events topic, or keeping its log there, is refused', (t) => {
  t.deepEqual(
    problems(`${head}  - name: s
    type: saga
    input: events
    output: { commands: [commands, events], log: events }
    startOn: X
    flow: [{ name: one, send: { type: Y, aggregateId: aggregateId }, completeOn: Z }]
`),
    [
      '15:36 processors[1].output.commands[1] saga "s" sends commands to topic "events", the events topic of aggregate "users": they would be appended to the event store; send them to the input topic of the aggregate that handles them',
      '15:50 processors[1].output.log saga "s" keeps its log on topic "events", the events topic of aggregate "users": it would be appended to the event store; declare a topic of its own for the saga log',
    ],
  );
});

test('a view topic read as commands or as a saga\'s events, and an events topic read as views, are refused', (t) => {
  t.deepEqual(
    problems(`${head}  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
  - { name: w, type: projection, input: events, inputFormat: view, output: other, on: { X: { delete: true } } }
  - { name: orders, type: aggregate, aggregateType: Order, input: view, output: { events: log }, module: ./o.ts }
`),
    [
      '13:41 processors[2].input projection "w" reads topic "events", the events topic of aggregate "users": inputFormat view reads another projection\'s views, and this topic holds events; set inputFormat: envelope, or read a view topic',
      '14:67 processors[3].input aggregate "orders" reads topic "view" as commands, but it is the view topic of projection "v"; set input to the topic its commands arrive on',
    ],
  );
});

test('a custom processor or a route step may not write an events topic, and a route may not forward events to a commands topic', (t) => {
  t.deepEqual(
    problems(`${head}  - { name: c, type: custom, input: other, module: ./c.ts, outputs: [view, events] }
  - name: r
    type: projection
    input: events
    output: view
    on: { X: { delete: true } }
    steps:
      - route: { by: eventType, to: { A: events, B: commands }, default: other }
`),
    [
      '12:76 processors[1].outputs[1] custom processor "c" may forward to topic "events", the events topic of aggregate "users": only that aggregate may append to it (with versions and idempotence); send commands to the aggregate\'s input instead, and remove "events" from outputs',
      '19:42 processors[2].steps[0].route.to.A a route step of projection "r" forwards its input records to topic "events", the events topic of aggregate "users": only that aggregate may append to it; route to a topic of its own, or send commands to the aggregate\'s input',
      '19:53 processors[2].steps[0].route.to.B a route step of projection "r" forwards the events it reads to topic "commands", the commands topic of aggregate "users"; route events to a topic that holds events',
    ],
  );
});

test('a declared topic with the name of a derived repartition topic cannot be read as events (it is refused as a collision)', (t) => {
  const yaml = `${head.replace('  other: { name: a-other, partitions: 3 }', '  other: { name: a-g-repartition, partitions: 3 }')}  - { name: g, type: projection, input: events, output: view, groupBy: status, on: { X: { set: { status: data.status } } } }
  - { name: v, type: projection, input: other, output: log, on: { X: { delete: true } } }
`;
  t.deepEqual(problems(yaml), [
    '9:18 topics.other.name topic "a-g-repartition" collides with the repartition topic foldstream derives for processor "g"; rename the topic or the processor',
  ]);
});

// Regression: a window processor's results topic was given the views role, so `topics --create` and the app's start
// created it compacted, and compaction removed earlier windows of a key (the windows integration test lost 4 hourly
// results). Window results are a stream, several per key.
test('a window processor\'s results topic is not a view: it is planned without compaction, and it may not be an events topic', (t) => {
  const win = (output: string) => `${head}  - name: w
    type: window
    input: events
    output: ${output}
    window: { kind: tumbling, sizeMs: 60000 }
    aggregate: { n: count }
`;
  const { topology } = parseTopology(win('other'), 'inline.yaml', { checkModules: false });
  t.is(topicRoles(topology).get('other'), undefined);
  const planned = planTopics(topology).find((p) => p.name === 'a-other');
  t.not(planned?.config?.['cleanup.policy'], 'compact');
  const refused = problems(win('events'));
  t.true(refused.some((p) => p.includes('window processor "w" writes its results to topic "events"')), refused.join('\n'));
});
