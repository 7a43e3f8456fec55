// The event-sourcing parts of topology.yaml: problems found before anything runs, each at its file:line:col, and
// the names and stages a groupBy projection derives.
import test from 'ava';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.ts';
import { describeTopology } from '../../src/topology/describe.ts';
import { loadTopology, parseTopology } from '../../src/topology/load.ts';
import { internalTopics } from '../../src/topology/names.ts';
import { ROOT } from '../helpers/cli.ts';

const problems = (yaml: string) => {
  try {
    parseTopology(yaml, 'inline.yaml', { checkModules: false });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}${p.suggestion ? `; ${p.suggestion}` : ''}`);
    throw e;
  }
  return [];
};

const head = `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: a-events, partitions: 3 }
  commands: { name: a-commands, partitions: 3 }
  view: { name: a-view, partitions: 3 }
  chained: { name: a-chained, partitions: 3 }
`;

test('a JSONata expression that does not parse is reported at its YAML node, with the parser message', (t) => {
  const yaml = `${head}processors:
  - name: v
    type: projection
    input: events
    output: view
    steps:
      - filter: "eventType = "
    on:
      UserCreated: { set: { email: "data.(email" } }
    groupBy: { key: status, aggregate: { n: { sum: "1 +" } } }
`;
  t.deepEqual(problems(yaml), [
    '14:17 processors[0].steps[0].filter JSONata expression "eventType = " does not parse: Unexpected end of expression (at character 12)',
    '16:36 processors[0].on.UserCreated.set.email JSONata expression "data.(email" does not parse: Expected ")" before end of expression (at character 11)',
    '17:52 processors[0].groupBy.aggregate.n.sum JSONata expression "1 +" does not parse: Unexpected end of expression (at character 3)',
  ]);
});

test('declarative aggregates: expressions are checked, and module-only or rules-only keys are not mixed', (t) => {
  const yaml = `${head}processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events }
    module: ./user.ts
    evolve: { UserCreated: { email: event.data.email } }
    initialState: { exists: false }
  - name: accounts
    type: aggregate
    aggregateType: Account
    input: commands
    output: { events: events }
    commands:
      Open: { reject: [{ if: "state.open and", reason: open }], emit: [{ type: Opened, when: "(" }] }
    evolve: { Opened: { open: "true" } }
`;
  t.deepEqual(problems(yaml), [
    '15:13 processors[0].evolve `evolve:` rules go with declarative `commands:`; a decider module has its own evolve',
    '16:19 processors[0].initialState `initialState:` goes with declarative `commands:`; a decider module exports its own',
    '23:30 processors[1].commands.Open.reject[0].if JSONata expression "state.open and" does not parse: Unexpected end of expression (at character 14)',
    '23:94 processors[1].commands.Open.emit[0].when JSONata expression "(" does not parse: Expected ")" before end of expression (at character 1)',
  ]);
});

test('a projection reading another projection\'s view topic must say inputFormat: view', (t) => {
  const yaml = (format: string) => `${head}processors:
  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
  - { name: w, type: projection, input: view, output: chained, ${format}on: { ViewUpdated: { set: { a: data.a } } } }
`;
  t.deepEqual(problems(yaml('')), [
    '10:41 processors[1].input topic "view" is the view topic of projection "v", which holds views, not events; set inputFormat: view to chain projections',
  ]);
  t.deepEqual(problems(yaml('inputFormat: view, ')), []);
});

test('the group stage takes the name <processor>-group, and `key` is reserved in group views', (t) => {
  const yaml = `${head}processors:
  - { name: stats, type: projection, input: events, output: view, on: { X: { set: { s: data.s } } }, groupBy: { key: s, aggregate: { key: count } } }
  - { name: stats-group, type: projection, input: events, output: chained, on: { X: { delete: true } } }
`;
  t.deepEqual(problems(yaml), [
    '9:139 processors[0].groupBy.aggregate.key `key` is the group key in every group view; name this field differently',
    '10:13 processors[1].name processor name "stats-group" is the name foldstream derives for the group stage of projection "stats"; rename one of them',
  ]);
});

test('upcasters: one per event type and version, either a module or rules, and expressions are checked', (t) => {
  const yaml = `${head}upcasters:
  - { eventType: A, fromVersion: 1, toVersion: 2, rename: { a: b } }
  - { eventType: A, fromVersion: 1, toVersion: 3, defaults: { c: "'x" } }
  - { eventType: B, fromVersion: 1, toVersion: 2, module: ./b.ts, remove: [z] }
processors:
  - { name: v, type: projection, input: events, output: view, on: { A: { delete: true } } }
`;
  t.deepEqual(problems(yaml), [
    '10:34 upcasters[1].fromVersion upcasters[0] already lifts A from version 1; give each event type and version one upcaster',
    '10:66 upcasters[1].defaults.c JSONata expression "\'x" does not parse: String literal must be terminated by a matching quote (at character 2)',
    '11:75 upcasters[2].remove give either `module:` or rules (remove), not both',
  ]);
});

test('a groupBy projection is two runtime processors; describe shows the group stage with its own group, store and DLQ', (t) => {
  const { topology } = loadTopology(join(ROOT, 'topology.yaml'));
  t.deepEqual(
    internalTopics(topology).filter((it) => it.processor === 'users-by-status').map((it) => [it.purpose, it.name, it.stage ?? '']),
    [
      ['changelog', 'user-service-users-by-status-view-changelog', ''],
      ['dlq', 'user-service-users-by-status-dlq', ''],
      ['replay', 'user-service-users-by-status-replay', ''],
      ['repartition', 'user-service-users-by-status-repartition', ''],
      ['changelog', 'user-service-users-by-status-group-groups-changelog', 'group'],
      ['dlq', 'user-service-users-by-status-group-dlq', 'group'],
    ],
  );
  const text = describeTopology(topology);
  const block = text.slice(text.indexOf('processor users-by-status-group'));
  t.regex(block, /^processor users-by-status-group \(group stage of users-by-status, by status\)$/m);
  t.regex(block, /inputs +user-service-users-by-status-repartition \(12 partitions\)/);
  t.regex(block, /stores +groups → changelog user-service-users-by-status-group-groups-changelog/);
  t.regex(block, /consumer group +user-service-users-by-status-group$/m);
  t.regex(block, /dead-letter +user-service-users-by-status-group-dlq/);
});

test('sagas: a flow needs startOn, either a module or a flow, known command topics, unique steps and parsable expressions', (t) => {
  const yaml = `${head}processors:
  - name: s
    type: saga
    input: events
    output: { commands: commands, log: chained }
    flow:
      - { name: a, send: { type: A, aggregateId: "start.(data", to: view }, completeOn: Aed }
      - { name: a, send: { type: B, aggregateId: sagaId }, completeOn: Bed }
  - { name: m, type: saga, input: events, output: { commands: commandz }, module: ./m.ts, startOn: X, onFailure: { type: C, aggregateId: sagaId } }
`;
  t.deepEqual(problems(yaml), [
    '14:7 processors[0].flow a declarative `flow:` needs `startOn:`, the event type(s) that start an instance',
    '14:50 processors[0].flow[0].send.aggregateId JSONata expression "start.(data" does not parse: Expected ")" before end of expression (at character 11)',
    '14:69 processors[0].flow[0].send.to topic "view" is not one of the saga\'s output.commands (commands); add it to output.commands',
    '15:17 processors[0].flow[1].name step name "a" is already used by flow[0]; give each step a unique name',
    '16:63 processors[1].output.commands topic "commandz" is not declared under topics:; did you mean "commands"?',
    '16:100 processors[1].startOn `startOn:` goes with a declarative `flow:`; a saga module decides itself when an instance starts',
    '16:114 processors[1].onFailure `onFailure:` goes with a declarative `flow:`; a saga module sends its own commands',
  ]);
});

test('a saga with correlate runs in two stages, <saga> re-keying through <app>-<saga>-repartition and <saga>-instances', (t) => {
  const yaml = `${head}processors:
  - { name: s, type: saga, input: events, correlate: data.orderId, output: { commands: commands }, startOn: X, flow: [{ name: a, send: { type: A, aggregateId: sagaId }, completeOn: Aed }] }
  - { name: s-instances, type: projection, input: events, output: view, on: { X: { delete: true } } }
`;
  t.deepEqual(problems(yaml), [
    '10:13 processors[1].name processor name "s-instances" is the name foldstream derives for the instances stage of saga "s"; rename one of them',
  ]);
  const ok = parseTopology(yaml.replace('name: s-instances', 'name: other'), 'inline.yaml', { checkModules: false }).topology;
  t.deepEqual(
    internalTopics(ok).filter((it) => it.processor === 's').map((it) => [it.name, it.stage ?? null, it.purpose, it.config['cleanup.policy'] ?? null]),
    [
      ['a-s-dlq', null, 'dlq', null],
      ['a-s-repartition', null, 'repartition', null],
      ['a-s-instances-sagas-changelog', 'instances', 'changelog', 'compact'],
      ['a-s-instances-deadlines-changelog', 'instances', 'changelog', 'compact'],
      ['a-s-instances-dlq', 'instances', 'dlq', null],
    ],
  );
  // without correlate, one stage holds the instances, keyed by the record key
  const single = parseTopology(yaml.replace('correlate: data.orderId, ', '').replace('name: s-instances', 'name: other'), 'inline.yaml', { checkModules: false }).topology;
  t.deepEqual(
    internalTopics(single).filter((it) => it.processor === 's').map((it) => it.name),
    ['a-s-sagas-changelog', 'a-s-deadlines-changelog', 'a-s-dlq'],
  );
});
